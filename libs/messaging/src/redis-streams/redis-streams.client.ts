import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Logger } from '@nestjs/common';
import {
  ClientProxy,
  type MsPattern,
  type PacketMetadata,
  type ReadPacket,
  type WritePacket,
} from '@nestjs/microservices';
import type { Redis } from 'ioredis';
import { firstValueFrom } from 'rxjs';
import { requestContext, rpcClientDuration } from '@imagemart/observability';
import type { AssertionMaker } from '@imagemart/contracts';
import { createRedis, logConnectionErrors, rpcCallerName, type RedisConnection } from './redis-streams.connection.js';
import {
  encodeRequest,
  rpcReplyKey,
  rpcStreamKey,
  timeoutError,
  unavailableError,
  type RpcReply,
} from './redis-streams.protocol.js';

export interface RedisStreamsClientOptions {
  connection: RedisConnection;
  /** Key prefix shared by every process of one deployment (`REDIS_PREFIX`). */
  prefix: string;
  /** The service called: requests go to `<prefix>:rpc:<service>`. */
  service: string;
  /** Every call fails with `ServiceTimeout` after this long. Default 5000. */
  timeoutMs?: number;
  /**
   * Signs each request with this process's identity (docs/messaging.md, "Signed callers"). The
   * services refuse requests without a valid assertion; only tests of the transport leave it out.
   */
  signer?: AssertionMaker;
  /** The calling process, named in the reply list's key; by default the connection's Redis user's. */
  caller?: string;
}

/** Bounds a service's stream should nobody read it for a long while. */
const STREAM_MAX_LENGTH = 100_000;
/** Most replies taken off the reply list in one read. */
const REPLY_BATCH = 100;

type Outcome = 'ok' | 'error' | 'timeout' | 'unavailable';

interface PendingCall {
  settle(outcome: Outcome, packet: WritePacket): void;
  timer: NodeJS.Timeout;
}

/**
 * NestJS client of one service over the Redis Streams transport. `send()` answers with the
 * handler's value, or errors with an `ErrorBody`: the handler's own, `ServiceTimeout` after
 * `timeoutMs`, or `ServiceUnavailable` when Redis cannot take the request.
 */
export class RedisStreamsClient extends ClientProxy {
  private readonly logger = new Logger(RedisStreamsClient.name);
  private readonly service: string;
  private readonly stream: string;
  /** This instance's reply list: every reply to its calls lands there. */
  private readonly replyKey: string;
  private readonly timeoutMs: number;
  private readonly pending = new Map<string, PendingCall>();
  private commands?: Redis;
  private replies?: Redis;
  private connecting?: Promise<void>;

  constructor(private readonly options: RedisStreamsClientOptions) {
    super();
    this.service = options.service;
    this.stream = rpcStreamKey(options.prefix, options.service);
    this.replyKey = rpcReplyKey(
      options.prefix,
      options.caller ?? rpcCallerName(options.connection, options.prefix),
      randomUUID(),
    );
    this.timeoutMs = options.timeoutMs ?? 5000;
  }

  /**
   * Opens the connections. Never rejects: while Redis is unreachable, calls fail at once with
   * `ServiceUnavailable` and the connections keep retrying in the background.
   */
  connect(): Promise<void> {
    return (this.connecting ??= this.open());
  }

  private async open(): Promise<void> {
    // No offline queue and no retries: a call made while Redis is away fails now, not later.
    const commands = createRedis(this.options.connection, {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
    });
    // The blocking reply read waits for Redis to come back.
    const replies = createRedis(this.options.connection, { lazyConnect: true, maxRetriesPerRequest: null });
    logConnectionErrors(commands, this.logger, `${this.service}/commands`);
    logConnectionErrors(replies, this.logger, `${this.service}/replies`);
    this.commands = commands;
    this.replies = replies;
    // A failed first attempt leaves ioredis retrying; calls fail fast until it succeeds.
    await Promise.all([commands.connect(), replies.connect()]).catch(() => undefined);
    void this.readReplies(replies);
  }

  private async readReplies(replies: Redis): Promise<void> {
    // BLMPOP (Redis 7) takes every waiting reply in one round trip; BLPOP one at a time.
    let batched = true;
    while (this.replies === replies) {
      try {
        if (batched) {
          const popped = await replies.blmpop(0, 1, this.replyKey, 'LEFT', 'COUNT', REPLY_BATCH);
          for (const raw of popped?.[1] ?? []) this.onReply(raw);
        } else {
          const popped = await replies.blpop(this.replyKey, 0);
          if (popped) this.onReply(popped[1]);
        }
      } catch (err) {
        if (this.replies !== replies) return; // closed
        if (batched && /unknown command/i.test((err as Error).message)) {
          batched = false;
          continue;
        }
        this.logger.warn(`Reading replies from ${this.replyKey} failed: ${(err as Error).message}`);
        await sleep(500);
      }
    }
  }

  private onReply(raw: string): void {
    let reply: RpcReply;
    try {
      reply = JSON.parse(raw) as RpcReply;
    } catch {
      this.logger.warn(`Dropped an undecodable reply on ${this.replyKey}`);
      return;
    }
    // No pending call: a late reply to a call that timed out or was unsubscribed.
    const call = this.pending.get(reply.id);
    if (!call) return;
    if (reply.err) call.settle('error', { err: reply.err, isDisposed: true });
    else call.settle('ok', { response: reply.response, isDisposed: true });
  }

  protected publish(packet: ReadPacket, callback: (packet: WritePacket) => void): () => void {
    const id = randomUUID();
    const pattern = this.normalizePattern(packet.pattern as MsPattern);
    // Encoded first: data JSON cannot hold (a BigInt, a cycle) throws here, with nothing to undo.
    const fields = encodeRequest(
      {
        id,
        pattern,
        data: packet.data,
        replyTo: this.replyKey,
        deadline: Date.now() + this.timeoutMs,
        metadata: this.metadata(packet),
      },
      this.assert(id, pattern, packet.data),
    );
    const started = performance.now();
    const settle = (outcome: Outcome, result: WritePacket) => {
      const call = this.pending.get(id);
      if (!call) return;
      this.pending.delete(id);
      clearTimeout(call.timer);
      rpcClientDuration.observe(
        { service: this.service, pattern, outcome },
        (performance.now() - started) / 1000,
      );
      callback(result);
    };
    const timer = setTimeout(
      () => settle('timeout', { err: timeoutError(this.service, pattern, this.timeoutMs), isDisposed: true }),
      this.timeoutMs,
    );
    this.pending.set(id, { settle, timer });

    const unavailable = () =>
      settle('unavailable', {
        err: unavailableError(this.service, 'the message bus is down'),
        isDisposed: true,
      });
    if (!this.commands) {
      unavailable(); // closed
    } else {
      this.commands.xadd(this.stream, 'MAXLEN', '~', STREAM_MAX_LENGTH, '*', ...fields).catch(unavailable);
    }

    // Unsubscribing forgets the call: its reply, if it comes, is dropped.
    return () => {
      const call = this.pending.get(id);
      if (!call) return;
      clearTimeout(call.timer);
      this.pending.delete(id);
    };
  }

  protected async dispatchEvent<T = unknown>(packet: ReadPacket): Promise<T> {
    const id = randomUUID();
    const pattern = this.normalizePattern(packet.pattern as MsPattern);
    const fields = encodeRequest(
      { id, pattern, data: packet.data, metadata: this.metadata(packet) },
      this.assert(id, pattern, packet.data),
    );
    try {
      if (!this.commands) throw new Error('closed');
      await this.commands.xadd(this.stream, 'MAXLEN', '~', STREAM_MAX_LENGTH, '*', ...fields);
    } catch {
      // The same ErrorBody as send() gives, so callers handle both alike.
      // eslint-disable-next-line @typescript-eslint/only-throw-error
      throw unavailableError(this.service, 'the message bus is down');
    }
    return undefined as T;
  }

  /** The assertion maker for one request, when this client signs. */
  private assert(id: string, pattern: string, data: unknown): ((dataJson: string) => string) | undefined {
    const signer = this.options.signer;
    return signer && ((dataJson) => signer.assertion({ service: this.service, id, pattern, data, dataJson }));
  }

  /** What the dispatch hook set, plus the current request's ids so the service logs (and audits) under them. */
  private metadata(packet: ReadPacket): PacketMetadata {
    const requestId = packet.metadata?.requestId ?? requestContext.requestId();
    const clientRequestId = packet.metadata?.clientRequestId ?? requestContext.get()?.clientRequestId;
    return { ...packet.metadata, ...(requestId ? { requestId } : {}), ...(clientRequestId ? { clientRequestId } : {}) };
  }

  /** Fails the calls still waiting, stops reading replies and disconnects. */
  async close(): Promise<void> {
    const { commands, replies } = this;
    this.commands = this.replies = this.connecting = undefined;
    for (const call of [...this.pending.values()]) {
      call.settle('unavailable', {
        err: unavailableError(this.service, 'the client was closed'),
        isDisposed: true,
      });
    }
    // Ends the reply loop: its BLPOP fails (or, never connected, stays unanswered for good).
    replies?.disconnect();
    if (commands) {
      await commands.unlink(this.replyKey).catch(() => undefined);
      await commands.quit().catch(() => commands.disconnect());
    }
  }

  /** The command connection and the blocking reply connection. */
  unwrap<T>(): T {
    if (!this.commands || !this.replies) throw new Error('Not connected yet: call connect() first');
    return [this.commands, this.replies] as T;
  }
}

/** A client of `service`; the same options as `RedisStreamsClient` but the service. */
export function createRpcClient(
  service: string,
  options: Omit<RedisStreamsClientOptions, 'service'>,
): RedisStreamsClient {
  return new RedisStreamsClient({ ...options, service });
}

/**
 * One call as a promise. The client enforces its own timeout, so no `timeout()` here. A
 * handler that returns nothing resolves to undefined.
 */
export function sendRpc<T, I = unknown>(client: ClientProxy, pattern: string, data: I): Promise<T> {
  return firstValueFrom(client.send<T, I>(pattern, data), { defaultValue: undefined as T });
}
