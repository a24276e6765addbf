import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import { ErrorCode, type ErrorBody } from '@imagemart/contracts';
import { createRequestId } from '@imagemart/observability';
import { problemDocument } from '../problem/problem.filter.js';

/**
 * Requests Node's HTTP parser refuses before Fastify sees them: a malformed request line or header,
 * a bad `Content-Length`, headers larger than the parser reads (16 KiB, request line included), or
 * a request that did not arrive within the gateway's timeouts. Node (and Fastify's default handler)
 * would answer these with a body of their own; the gateway answers every error as problem+json with
 * a stable code, here written on the raw socket, which is then closed (its state is unknown).
 */
const PARSER_DETAILS: Record<string, string> = {
  HPE_INVALID_CONTENT_LENGTH: 'The Content-Length header is not a valid length.',
  HPE_UNEXPECTED_CONTENT_LENGTH:
    'The request has more than one Content-Length, or both Content-Length and Transfer-Encoding.',
  HPE_INVALID_TRANSFER_ENCODING: 'The Transfer-Encoding header is not valid.',
  HPE_INVALID_CHUNK_SIZE: 'A chunk size of the chunked body is not valid.',
  HPE_INVALID_METHOD: 'The request method is not valid.',
  HPE_INVALID_URL: 'The request target is not a valid URL.',
  HPE_INVALID_HEADER_TOKEN: 'A header name or value holds a character HTTP does not allow.',
  HPE_INVALID_VERSION: 'The HTTP version is not valid.',
};

export function clientErrorProblem(err: { code?: string }): { status: number; body: ErrorBody } {
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    return {
      status: 408,
      body: {
        code: ErrorCode.RequestTimeout,
        detail: 'The request did not arrive in time; the connection is closed.',
      },
    };
  }
  if (err.code === 'HPE_HEADER_OVERFLOW') {
    return {
      status: 431,
      body: {
        code: ErrorCode.RequestHeaderFieldsTooLarge,
        detail:
          'The request line and headers are larger than this API reads (16 KiB): a shorter query string, or fewer headers.',
      },
    };
  }
  const detail = (err.code && PARSER_DETAILS[err.code]) ?? 'The request is not valid HTTP/1.1.';
  return { status: 400, body: { code: ErrorCode.MalformedRequest, detail } };
}

/** Fastify's `clientErrorHandler`: a problem+json answer on the socket, then the socket closed. */
export function clientErrorHandler(err: Error & { code?: string }, socket: Socket): void {
  // A reset connection has nobody to answer.
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  if (socket.writable) {
    const { status, body } = clientErrorProblem(err);
    const requestId = createRequestId();
    const json = JSON.stringify(problemDocument(status, body, { id: requestId }));
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\n` +
        'Content-Type: application/problem+json\r\n' +
        `Content-Length: ${Buffer.byteLength(json)}\r\n` +
        'Cache-Control: no-store\r\n' +
        'X-Content-Type-Options: nosniff\r\n' +
        `X-Request-Id: ${requestId}\r\n` +
        'Connection: close\r\n\r\n' +
        json,
    );
  }
  socket.destroy(err);
}
