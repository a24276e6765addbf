import type { PacketMetadata } from '@nestjs/microservices';
import { ErrorCode, isErrorBody, type ErrorBody } from '@imagemart/contracts';

/**
 * The wire format of the Redis Streams transport: what a request entry holds and what a reply
 * list receives. Client and server of every version must agree on it, so change it only by adding
 * optional fields.
 */

/** The request stream of a service; its consumer group has the service's name. */
export const rpcStreamKey = (prefix: string, service: string) => `${prefix}:rpc:${service}`;

/**
 * The list one client instance reads its replies from. It carries the calling process's name
 * (`<prefix>:rpc:reply:<caller>:<clientId>`), so that Redis ACLs can keep each process's replies
 * to itself and to the services it calls (docs/operations.md, "Redis as a boundary"); a client
 * with no name (the default user) keeps `<prefix>:rpc:reply:<clientId>`.
 */
export const rpcReplyKey = (prefix: string, caller: string | undefined, clientId: string) =>
  caller ? `${prefix}:rpc:reply:${caller}:${clientId}` : `${prefix}:rpc:reply:${clientId}`;

/** How long an unread reply list lives: its client died or gave up, nobody will read it. */
export const REPLY_TTL_MS = 30_000;

/** One request (or event, when `replyTo` is absent) as it sits in a service's stream. */
export interface RpcRequest {
  id: string;
  pattern: string;
  data: unknown;
  /** The reply list of the calling client; absent for an event (emit). */
  replyTo?: string;
  /** Epoch ms after which the caller has given up; absent for an event. */
  deadline?: number;
  metadata: PacketMetadata;
  /** The sender's signed caller assertion (docs/messaging.md, "Signed callers"). */
  assertion?: string;
}

/** A request as read off the stream: also its `data` field exactly as it was sent. */
export interface ReceivedRpcRequest extends RpcRequest {
  dataJson: string;
}

/** One reply, pushed as JSON onto the caller's reply list. */
export interface RpcReply {
  id: string;
  response?: unknown;
  err?: ErrorBody;
}

/**
 * Field/value pairs for XADD. `assert`, when given, makes the request's caller assertion from its
 * `data` field exactly as encoded (the assertion is bound to those bytes).
 */
export function encodeRequest(request: RpcRequest, assert?: (dataJson: string) => string): string[] {
  const dataJson = JSON.stringify(request.data) ?? 'null';
  const fields = ['id', request.id, 'pattern', request.pattern, 'data', dataJson];
  if (request.replyTo) fields.push('replyTo', request.replyTo);
  if (request.deadline !== undefined) fields.push('deadline', String(request.deadline));
  fields.push('metadata', JSON.stringify(request.metadata));
  const assertion = request.assertion ?? assert?.(dataJson);
  if (assertion) fields.push('assertion', assertion);
  return fields;
}

export type DecodedRequest =
  | { ok: true; request: ReceivedRpcRequest }
  /** What could be read of a broken entry, so that its caller can still be told. */
  | { ok: false; id?: string; replyTo?: string };

/** Reads an entry's flat field/value list (as XREADGROUP returns it). */
export function decodeRequest(flat: string[] | null | undefined): DecodedRequest {
  if (!flat) return { ok: false };
  const fields = new Map<string, string>();
  for (let i = 0; i + 1 < flat.length; i += 2) fields.set(flat[i], flat[i + 1]);
  const id = fields.get('id');
  const pattern = fields.get('pattern');
  const replyTo = fields.get('replyTo') || undefined;
  const deadline = fields.has('deadline') ? Number(fields.get('deadline')) : undefined;
  const dataJson = fields.get('data') ?? 'null';
  const assertion = fields.get('assertion') || undefined;
  try {
    const data: unknown = JSON.parse(dataJson);
    const metadata: unknown = JSON.parse(fields.get('metadata') ?? '{}');
    if (
      !id ||
      !pattern ||
      (deadline !== undefined && !Number.isFinite(deadline)) ||
      !isStringRecord(metadata)
    ) {
      return { ok: false, id, replyTo };
    }
    return { ok: true, request: { id, pattern, data, dataJson, replyTo, deadline, metadata, assertion } };
  } catch {
    return { ok: false, id, replyTo };
  }
}

function isStringRecord(value: unknown): value is PacketMetadata {
  return (
    typeof value === 'object' &&
    value !== null &&
    !Array.isArray(value) &&
    Object.values(value).every((v) => typeof v === 'string')
  );
}

/**
 * What a caller sees of a handler's failure. An `ErrorBody` (a `DomainException`, or an
 * `RpcException` given one) passes as it is; anything else becomes `InternalError`, so that no
 * message, stack trace or internal detail leaves the service.
 */
export function toErrorBody(err: unknown): ErrorBody {
  if (isErrorBody(err)) return err;
  return { code: ErrorCode.InternalError, detail: 'Internal error' };
}

/**
 * The answer to a pattern the service has no handler for: usually a gateway newer than the
 * service it calls (a deployment in progress), so a 503 rather than a 500.
 */
export function noHandlerError(service: string, pattern: string): ErrorBody {
  return { code: ErrorCode.ServiceUnavailable, detail: `${service} has no handler for ${pattern}` };
}

export function malformedRequestError(): ErrorBody {
  return { code: ErrorCode.MalformedRequest, detail: 'The request could not be decoded' };
}

export function timeoutError(service: string, pattern: string, timeoutMs: number): ErrorBody {
  return {
    code: ErrorCode.ServiceTimeout,
    detail: `${service} did not answer ${pattern} within ${timeoutMs} ms`,
  };
}

export function unavailableError(service: string, reason: string): ErrorBody {
  return { code: ErrorCode.ServiceUnavailable, detail: `${service} is unreachable: ${reason}` };
}
