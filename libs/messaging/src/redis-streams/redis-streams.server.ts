import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Logger } from '@nestjs/common';
import {
  Server,
  type CustomTransportStrategy,
  type MessageHandler,
  type WritePacket,
} from '@nestjs/microservices';
import type { Redis } from 'ioredis';
import { throwError, type Observable } from 'rxjs';
import { AssertionRefused, allowedSenders, ErrorCode, type ErrorBody, type TrustedKeys } from '@imagemart/contracts';
import {
  requestContext,
  requestIdsFromMetadata,
  rpcCallerRefused,
  rpcReclaimed,
  rpcServerDuration,
} from '@imagemart/observability';
import { CallerVerifier } from '../identity/caller-assertions.js';

import { createRedis, logConnectionErrors, type RedisConnection } from './redis-streams.connection.js';
import { RedisStreamsContext } from './redis-streams.context.js';
import {
  REPLY_TTL_MS,
  decodeRequest,
  malformedRequestError,
  noHandlerError,
  rpcStreamKey,
  toErrorBody,
  type RpcReply,
  type RpcRequest,
} from './redis-streams.protocol.js';

/** Lets `@MessagePattern(pattern, REDIS_STREAMS_TRANSPORT)` bind a handler to this transport only. */
export const REDIS_STREAMS_TRANSPORT = Symbol.for('imagemart.redis-streams');

export interface RedisStreamsServerOptions {
  connection: RedisConnection;
  /** Key prefix shared by every process of one deployment (`REDIS_PREFIX`). */
  prefix: string;
  /** The service this replica serves: its stream is `<prefix>:rpc:<service>`, its group `<service>`. */
  service: string;
  /** This replica's consumer name in the group; unique per process. */
  consumer?: string;
  /** Most entries taken per XREADGROUP. Default 32. */
  batchSize?: number;
  /** How long one XREADGROUP blocks; close() interrupts it. Default 5000. */
  blockMs?: number;
  /** A pending entry idle this long belongs to a dead replica and is taken over. Default 3000. */
  claimIdleMs?: number;
  /** How often to look for such entries. Default min(1000, claimIdleMs). */
  claimIntervalMs?: number;
  /** Most requests handled at once by this replica. Default 64. */
  concurrency?: number;
  /** How long close() waits for requests in flight before leaving them to a sibling. Default 10000. */
  closeTimeoutMs?: number;
  /**
   * The public keys of the processes whose signed requests this service acts on. Set, every
   * request and event needs a valid caller assertion (docs/messaging.md, "Signed callers");
   * unset (tests of the transport alone), none is checked.
   */
  trustedKeys?: TrustedKeys;
}

/** The ioredis connection events that `on()` passes on (from both connections). */
export type RedisStreamsServerEvents = {
  error: (err: Error) => void;
  ready: () => void;
  reconnecting: (delayMs: number) => void;
  close: () => void;
  end: () => void;
};

/** Flat XREADGROUP / XAUTOCLAIM entries: `[entryId, [field, value, ...]]`; fields are null for an entry deleted meanwhile. */
type StreamEntry = [entryId: string, fields: string[] | null];

interface HandlerResult {
  response?: unknown;
  err?: ErrorBody;
}

/**
 * NestJS transport strategy: serves one service's requests from a Redis stream through a
 * consumer group, so each request is handled by exactly one replica, requests sent while no
 * replica runs wait in the stream, and requests left pending by a dead replica are reclaimed.
 * docs/messaging.md describes the wire format and the guarantees.
 */
export class RedisStreamsServer extends Server<RedisStreamsServerEvents> implements CustomTransportStrategy {
  override readonly transportId = REDIS_STREAMS_TRANSPORT;
  protected override readonly logger = new Logger(RedisStreamsServer.name);

  private readonly stream: string;
  private readonly group: string;
  private readonly consumer: string;
  private readonly batchSize: number;
  private readonly blockMs: number;
  private readonly claimIdleMs: number;
  private readonly claimIntervalMs: number;
  private readonly concurrency: number;
  private readonly closeTimeoutMs: number;

  /** Replies, acks, claims. */
  private commands?: Redis;
  /** The blocking XREADGROUP, alone on its connection. */
  private reader?: Redis;
  /** The reader's CLIENT ID, so that close() can interrupt its blocking read. */
  private readerId?: number;
  private readonly inFlight = new Map<string, Promise<void>>();
  private readLoop?: Promise<void>;
  private claimTimer?: NodeJS.Timeout;
  private refreshTimer?: NodeJS.Timeout;
  private claiming = false;
  private stopping = false;
  private closing?: Promise<void>;
  private listeners: Array<[event: string, callback: (...args: unknown[]) => void]> = [];
  private verifier?: CallerVerifier;

  constructor(private readonly options: RedisStreamsServerOptions) {
    super();
    this.stream = rpcStreamKey(options.prefix, options.service);
    this.group = options.service;
    this.consumer =
      options.consumer ?? `${options.service}-${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
    this.batchSize = options.batchSize ?? 32;
    this.blockMs = options.blockMs ?? 5000;
    this.claimIdleMs = options.claimIdleMs ?? 3000;
    this.claimIntervalMs = options.claimIntervalMs ?? Math.min(1000, this.claimIdleMs);
    this.concurrency = options.concurrency ?? 64;
    this.closeTimeoutMs = options.closeTimeoutMs ?? 10_000;
  }

  listen(callback: (err?: unknown) => void): void {
    this.start().then(
      () => callback(),
      (err: unknown) => callback(err),
    );
  }

  private async start(): Promise<void> {
    if (this.options.trustedKeys) {
      // Deciding who may send a pattern is part of adding it: a handler nobody may call is a mistake.
      const unguarded = [...this.messageHandlers.keys()].filter(
        (pattern) => allowedSenders(pattern).length === 0,
      );
      if (unguarded.length > 0) {
        throw new Error(
          `${this.options.service} has handlers for patterns no process may send (add them to PATTERN_SENDERS in libs/contracts): ${unguarded.join(', ')}`,
        );
      }
    }
    const commands = createRedis(this.options.connection, { lazyConnect: true });
    // A blocking read must wait for Redis to come back rather than fail and spin.
    const reader = createRedis(this.options.connection, { lazyConnect: true, maxRetriesPerRequest: null });
    this.commands = commands;
    this.reader = reader;
    logConnectionErrors(commands, this.logger, `${this.group}/commands`);
    logConnectionErrors(reader, this.logger, `${this.group}/reader`);
    for (const [event, callback] of this.listeners) {
      commands.on(event, callback);
      reader.on(event, callback);
    }

    try {
      await Promise.all([commands.connect(), reader.connect()]);
      this.readerId = Number(await reader.client('ID'));
      await this.ensureGroup();
      if (this.options.trustedKeys) {
        this.verifier = new CallerVerifier({
          service: this.options.service,
          trusted: this.options.trustedKeys,
          redis: commands,
          prefix: this.options.prefix,
        });
      }
    } catch (err) {
      commands.disconnect();
      reader.disconnect();
      this.commands = this.reader = undefined;
      throw err;
    }
    reader.on('ready', () => {
      // A new connection has a new id.
      void reader.client('ID').then(
        (id) => (this.readerId = Number(id)),
        () => undefined,
      );
      this._status$.next('connected');
    });
    reader.on('reconnecting', () => this._status$.next('reconnecting'));

    this.readLoop = this.read();
    this.claimTimer = setInterval(() => void this.reclaim(), this.claimIntervalMs);
    // Refresh well within claimIdleMs, so a live replica's work is never taken over.
    this.refreshTimer = setInterval(
      () => void this.refresh(),
      Math.max(50, Math.floor(this.claimIdleMs / 3)),
    );
    this._status$.next('connected');
    this.logger.log(`Serving ${this.stream} as ${this.consumer}`);
  }

  /** Creates the group from id 0, so requests written before any replica started are served. */
  private async ensureGroup(): Promise<void> {
    try {
      await this.commands!.xgroup('CREATE', this.stream, this.group, '0', 'MKSTREAM');
    } catch (err) {
      if (!errorMessage(err).startsWith('BUSYGROUP')) throw err;
    }
  }

  private async read(): Promise<void> {
    const reader = this.reader!;
    while (!this.stopping) {
      const free = this.concurrency - this.inFlight.size;
      if (free <= 0) {
        await Promise.race(this.inFlight.values());
        continue;
      }
      try {
        const result = (await reader.xreadgroup(
          'GROUP',
          this.group,
          this.consumer,
          'COUNT',
          Math.min(this.batchSize, free),
          'BLOCK',
          this.blockMs,
          'STREAMS',
          this.stream,
          '>',
        )) as Array<[stream: string, entries: StreamEntry[]]> | null;
        // Even when stopping: these entries are ours now, and close() waits for them.
        for (const [entryId, fields] of result?.[0]?.[1] ?? []) this.begin(entryId, fields, false);
      } catch (err) {
        if (this.stopping) break;
        if (errorMessage(err).startsWith('NOGROUP')) {
          // The stream was deleted (FLUSHDB, a test cleaning up): set it up again.
          await this.ensureGroup().catch(() => undefined);
          continue;
        }
        this.logger.error(`XREADGROUP on ${this.stream} failed: ${errorMessage(err)}`);
        await sleep(1000);
      }
    }
  }

  private begin(entryId: string, fields: string[] | null, reclaimed: boolean): void {
    if (this.inFlight.has(entryId)) return;
    const work = this.handleEntry(entryId, fields, reclaimed)
      .catch((err: unknown) => {
        // Left pending: it is retried once it has been idle for claimIdleMs.
        this.logger.error(`Entry ${entryId} of ${this.stream} failed: ${errorMessage(err)}`);
      })
      .finally(() => this.inFlight.delete(entryId));
    this.inFlight.set(entryId, work);
  }

  private async handleEntry(entryId: string, fields: string[] | null, reclaimed: boolean): Promise<void> {
    if (!fields) return this.finish(entryId); // deleted while pending: nothing left to do
    const decoded = decodeRequest(fields);
    if (!decoded.ok) {
      this.logger.warn(`Dropped undecodable entry ${entryId} of ${this.stream}`);
      const { id, replyTo } = decoded;
      return this.finish(
        entryId,
        id && replyTo ? { replyTo, reply: { id, err: malformedRequestError() } } : undefined,
      );
    }
    const { request } = decoded;
    const context = new RedisStreamsContext([
      request.pattern,
      request.metadata,
      { entryId, stream: this.stream, consumer: this.consumer, reclaimed, deadline: request.deadline },
    ]);
    const ids = requestIdsFromMetadata(request.metadata);
    const { requestId } = ids;

    if (this.verifier) {
      const refusal = await this.verifier.verify({ entryId, ...request }).then(
        () => undefined,
        (err: unknown) => err,
      );
      if (refusal !== undefined) {
        if (!(refusal instanceof AssertionRefused)) {
          throw refusal instanceof Error
            ? refusal
            : new Error('verifying the caller failed', { cause: refusal }); // Redis failed: left pending, retried
        }
        rpcCallerRefused.inc({ service: this.options.service, reason: refusal.reason });
        this.logger.warn({
          msg: 'refused a message whose caller assertion does not hold',
          reason: refusal.reason,
          issuer: refusal.issuer,
          pattern: request.pattern,
          requestId,
          entryId,
        });
        const answer = request.replyTo
          ? { replyTo: request.replyTo, reply: { id: request.id, err: callerRefusedError(refusal) } }
          : undefined;
        return this.finish(entryId, answer);
      }
    }

    if (!request.replyTo) {
      // An event is acked even when its handler fails: work that must not be lost goes
      // through BullMQ, and retrying here would loop on a poison event for ever.
      try {
        await requestContext.run({ ...ids }, () => this.handleEvent(request.pattern, request, context));
      } catch (err) {
        this.logger.error(`Event ${request.pattern} failed: ${errorMessage(err)}`);
      }
      return this.finish(entryId);
    }
    if (request.deadline !== undefined && request.deadline <= Date.now()) {
      // The caller has given up: an answer would only fill a list nobody reads.
      return this.finish(entryId);
    }

    const handler = this.getHandlerByPattern(request.pattern);
    const started = performance.now();
    const result = handler
      ? await requestContext.run({ ...ids }, () => this.execute(handler, request, context))
      : { err: noHandlerError(this.options.service, request.pattern) };
    const outcome = !result ? 'timeout' : result.err ? 'error' : 'ok';
    const ms = performance.now() - started;
    rpcServerDuration.observe({ pattern: handler ? request.pattern : 'unknown', outcome }, ms / 1000);
    // One line per request, as the gateway's access log: the request id ties the two together.
    this.logger.log({
      msg: 'rpc',
      requestId,
      pattern: request.pattern,
      outcome,
      ...(result?.err ? { code: result.err.code } : {}),
      ms: Math.round(ms * 10) / 10,
    });
    // No result: still running at the caller's deadline; the caller has its ServiceTimeout already.
    await this.finish(
      entryId,
      result ? { replyTo: request.replyTo, reply: { id: request.id, ...result } } : undefined,
    );
  }

  /**
   * The handler of a pattern. Nest's own lookup first tries `JSON.parse` on the pattern, and for a
   * plain string pattern (all of ours) that throws: an exception per request, a visible share of
   * a service's CPU under load. Plain strings are looked up as they are; anything else as Nest does.
   */
  override getHandlerByPattern(pattern: string): MessageHandler | null {
    return this.messageHandlers.get(pattern) ?? super.getHandlerByPattern(pattern);
  }

  /**
   * Runs the handler through Nest's pipeline (guards, pipes, interceptors, exception filters,
   * processing hooks) and resolves with its last value or its error. Stops waiting (resolves
   * undefined) at the caller's deadline, so a handler that never settles does not hold a slot.
   */
  private execute(
    handler: MessageHandler,
    request: RpcRequest,
    context: RedisStreamsContext,
  ): Promise<HandlerResult | undefined> {
    return new Promise<HandlerResult | undefined>((resolve) => {
      const timer =
        request.deadline === undefined
          ? undefined
          : setTimeout(
              () => {
                this.logger.warn(
                  `${request.pattern} (request ${request.id}) still running at its caller's deadline`,
                );
                resolve(undefined);
              },
              Math.max(0, request.deadline - Date.now()),
            );
      const settle = (result: HandlerResult) => {
        clearTimeout(timer);
        resolve(result);
      };

      let last: unknown;
      const produce = async (): Promise<Observable<unknown>> => {
        try {
          return this.transformToObservable(await handler(request.data, context)) as Observable<unknown>;
        } catch (err) {
          return throwError(() => err);
        }
      };
      // Nest's send() calls this with each value, then once disposed; an error ends it.
      const respond = (packet: WritePacket): void => {
        if ('err' in packet) return settle({ err: this.toReplyError(request.pattern, packet.err) });
        if ('response' in packet) last = packet.response;
        if (packet.isDisposed) settle({ response: last });
      };
      this.handleRequest(context, produce, respond);
    });
  }

  private toReplyError(pattern: string, err: unknown): ErrorBody {
    const body = toErrorBody(err);
    if (body !== err) {
      // Nest's exception filter has logged unknown exceptions with their stack; a raw Error
      // (a handler outside Nest's pipeline) has not been.
      if (err instanceof Error) this.logger.error(`${pattern} failed: ${err.stack ?? err.message}`);
      else
        this.logger.warn(`${pattern} failed with an error that is not an ErrorBody; answered InternalError`);
    }
    return body;
  }

  /** Replies (if asked), acks and deletes the entry, in one transaction: the stream stays small. */
  private async finish(entryId: string, answer?: { replyTo: string; reply: RpcReply }): Promise<void> {
    const tx = this.commands!.multi();
    if (answer) {
      tx.rpush(answer.replyTo, serializeReply(answer.reply)).pexpire(answer.replyTo, REPLY_TTL_MS);
    }
    tx.xack(this.stream, this.group, entryId).xdel(this.stream, entryId);
    let results: Awaited<ReturnType<typeof tx.exec>>;
    try {
      results = await tx.exec();
    } catch (err) {
      // A reply list this service may not write (its Redis user's ACL refuses the push, and with
      // it the whole transaction): the entry is finished without an answer rather than left
      // pending, where it would be reclaimed and handled again and again.
      if (answer && /NOPERM|EXECABORT/.test(errorMessage(err))) {
        this.logger.warn(`Entry ${entryId} of ${this.stream} names a reply list this service may not write; finished unanswered`);
        return this.finish(entryId);
      }
      throw err;
    }
    const failed = results?.find(([err]) => err);
    if (failed)
      this.logger.error(`Finishing entry ${entryId} of ${this.stream} failed: ${errorMessage(failed[0])}`);
  }

  /** Takes over requests that a dead replica left pending for claimIdleMs. */
  private async reclaim(): Promise<void> {
    if (this.stopping || this.claiming || !this.commands) return;
    this.claiming = true;
    try {
      let cursor = '0-0';
      do {
        const free = this.concurrency - this.inFlight.size;
        if (free <= 0) break;
        const [next, entries] = (await this.commands.xautoclaim(
          this.stream,
          this.group,
          this.consumer,
          this.claimIdleMs,
          cursor,
          'COUNT',
          free,
        )) as [next: string, entries: StreamEntry[]];
        // Our own entries still in flight come back when the refresh ran late: not a takeover.
        const taken = entries.filter(([entryId]) => !this.inFlight.has(entryId));
        if (taken.length > 0) {
          rpcReclaimed.inc({ service: this.options.service }, taken.length);
          this.logger.warn(`Reclaimed ${taken.length} request(s) left pending in ${this.stream}`);
        }
        for (const [entryId, fields] of taken) this.begin(entryId, fields, true);
        cursor = next;
      } while (cursor !== '0-0' && !this.stopping);
    } catch (err) {
      if (!errorMessage(err).startsWith('NOGROUP'))
        this.logger.error(`XAUTOCLAIM on ${this.stream} failed: ${errorMessage(err)}`);
    } finally {
      this.claiming = false;
    }
  }

  /** Resets the idle time of the entries in flight here, so that live siblings leave them alone. */
  private async refresh(): Promise<void> {
    const ids = [...this.inFlight.keys()];
    if (ids.length === 0 || !this.commands) return;
    try {
      await this.commands.call('XCLAIM', this.stream, this.group, this.consumer, 0, ...ids, 'JUSTID');
    } catch (err) {
      this.logger.warn(`XCLAIM refresh on ${this.stream} failed: ${errorMessage(err)}`);
    }
  }

  /** Stops reading, waits (bounded) for the requests in flight, then disconnects. */
  close(): Promise<void> {
    return (this.closing ??= this.shutdown());
  }

  private async shutdown(): Promise<void> {
    this.stopping = true;
    clearInterval(this.claimTimer);
    await this.stopReading();

    const drained = await settlesWithin(Promise.allSettled(this.inFlight.values()), this.closeTimeoutMs);
    clearInterval(this.refreshTimer);
    if (drained) {
      await this.forgetConsumer();
    } else {
      this.logger.warn(
        `Closing with ${this.inFlight.size} request(s) in flight; a sibling will reclaim them`,
      );
    }
    for (const redis of [this.commands, this.reader]) {
      if (redis) await redis.quit().catch(() => redis.disconnect());
    }
    this._status$.next('disconnected');
  }

  /** Interrupts the blocking read (CLIENT UNBLOCK) until the read loop has ended. */
  private async stopReading(): Promise<void> {
    if (!this.readLoop) return;
    const deadline = Date.now() + this.blockMs + 1000;
    while (!(await settlesWithin(this.readLoop, 100)) && Date.now() < deadline) {
      // The read may not have reached Redis yet when unblocked: try again until the loop ends.
      if (this.readerId !== undefined) {
        await this.commands?.client('UNBLOCK', this.readerId).catch(() => undefined);
      }
    }
  }

  /** A replica that stopped cleanly leaves no consumer behind in the group. */
  private async forgetConsumer(): Promise<void> {
    const commands = this.commands;
    if (!commands) return;
    try {
      const pending = await commands.xpending(this.stream, this.group, '-', '+', 1, this.consumer);
      if (pending.length === 0) await commands.xgroup('DELCONSUMER', this.stream, this.group, this.consumer);
    } catch {
      // Not worth failing a shutdown over: a stale consumer with nothing pending is harmless.
    }
  }

  /** Listens to both Redis connections' events. */
  on<
    EventKey extends keyof RedisStreamsServerEvents,
    EventCallback extends RedisStreamsServerEvents[EventKey],
  >(event: EventKey, callback: EventCallback): void {
    const listener = callback as (...args: unknown[]) => void;
    this.listeners.push([event, listener]);
    this.commands?.on(event, listener);
    this.reader?.on(event, listener);
  }

  /** The command connection and the blocking reader connection. */
  unwrap<T>(): T {
    if (!this.commands || !this.reader) throw new Error('Not listening yet: call listen() first');
    return [this.commands, this.reader] as T;
  }
}

function callerRefusedError(refusal: AssertionRefused): ErrorBody {
  return {
    code: ErrorCode.InvalidCallerAssertion,
    detail: `The message's caller assertion was refused (${refusal.reason}).`,
  };
}

/** A reply that cannot be serialised (a BigInt, a cycle) becomes an InternalError. */
function serializeReply(reply: RpcReply): string {
  try {
    return JSON.stringify(reply);
  } catch {
    return JSON.stringify({ id: reply.id, err: toErrorBody(undefined) });
  }
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Whether `promise` settles within `ms`. */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([
      promise.then(
        () => true,
        () => true,
      ),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
  }
}
