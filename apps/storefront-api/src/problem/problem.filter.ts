import { Catch, HttpException, Logger, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ERROR_STATUS, ErrorCode, isErrorBody, type ErrorBody } from '@imagemart/contracts';
import { acceptClientRequestId } from '@imagemart/observability';
import { ApiProblem } from './api-problem.js';

/** The problem+json body (RFC 9457) with the platform's stable `code`. */
export interface ProblemDocument extends ErrorBody {
  type: string;
  title: string;
  status: number;
  /** The path; absent when the request could not be read that far (a client error on the socket). */
  instance?: string;
  /** The platform's id of the request (the `X-Request-Id` answered). */
  requestId: string;
  /** The client's own `X-Request-Id`, when it sent a usable one (the `X-Client-Request-Id` answered). */
  clientRequestId?: string;
}

const TITLES: Partial<Record<number, string>> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  408: 'Request Timeout',
  409: 'Conflict',
  413: 'Content Too Large',
  415: 'Unsupported Media Type',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

/** Codes for errors raised by Fastify or Nest themselves, before a handler ran. */
function codeForStatus(status: number): ErrorCode {
  switch (status) {
    case 400:
      return ErrorCode.MalformedRequest;
    case 401:
      return ErrorCode.AuthFailure;
    case 403:
      return ErrorCode.UnauthorizedOperation;
    case 404:
      return ErrorCode.RouteNotFound;
    case 405:
      return ErrorCode.MethodNotAllowed;
    case 408:
      return ErrorCode.RequestTimeout;
    case 413:
      return ErrorCode.PayloadTooLarge;
    case 415:
      return ErrorCode.UnsupportedMediaType;
    case 429:
      return ErrorCode.RequestLimitExceeded;
    case 431:
      return ErrorCode.RequestHeaderFieldsTooLarge;
    case 503:
      return ErrorCode.ServiceUnavailable;
    case 504:
      return ErrorCode.ServiceTimeout;
    default:
      return ErrorCode.InternalError;
  }
}

const FASTIFY_DETAILS: Record<string, string> = {
  FST_ERR_CTP_INVALID_JSON_BODY: 'The request body is not valid JSON.',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'The request says it has a JSON body but the body is empty.',
  FST_ERR_CTP_BODY_TOO_LARGE: 'The request body is larger than this API accepts.',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'This API accepts request bodies as application/json only.',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'The Content-Length header does not match the body.',
  // Raised by the router itself (through the adapter's frameworkErrors): the path is malformed.
  FST_ERR_BAD_URL: 'The path is not a valid URL.',
  FST_ERR_MAX_PARAM_LENGTH: 'A path parameter is longer than any id this API has.',
};
/** Router errors Fastify gives its own status (414) that are, to a client, a malformed request. */
const FASTIFY_MALFORMED = new Set(['FST_ERR_BAD_URL', 'FST_ERR_MAX_PARAM_LENGTH']);

/** Turns anything thrown while serving a request into an error body, never leaking internals. */
export function toErrorBody(err: unknown): { status: number; body: ErrorBody; unexpected: boolean } {
  if (err instanceof ApiProblem) return { status: err.status, body: err.toBody(), unexpected: false };
  if (isErrorBody(err)) return { status: ERROR_STATUS[err.code], body: err, unexpected: false };
  const fastifyCode = (err as { code?: unknown } | null)?.code;
  if (typeof fastifyCode === 'string' && fastifyCode in FASTIFY_DETAILS) {
    const status = FASTIFY_MALFORMED.has(fastifyCode) ? 400 : ((err as { statusCode?: number }).statusCode ?? 400);
    return { status, body: { code: codeForStatus(status), detail: FASTIFY_DETAILS[fastifyCode] ?? '' }, unexpected: false };
  }
  if (err instanceof HttpException) {
    const status = err.getStatus();
    const code = codeForStatus(status);
    const detail =
      status === 404
        ? 'No route matches this method and path.'
        : status === 415
          ? (FASTIFY_DETAILS['FST_ERR_CTP_INVALID_MEDIA_TYPE'] ?? err.message)
          : err.message;
    // A 5xx says nothing of its cause; the log has it.
    if (status >= 500) return { status, body: { code, detail: 'An internal error occurred.' }, unexpected: true };
    return { status, body: { code, detail }, unexpected: false };
  }
  const statusCode = (err as { statusCode?: unknown } | null)?.statusCode;
  if (typeof statusCode === 'number' && statusCode >= 400 && statusCode < 500) {
    return { status: statusCode, body: { code: codeForStatus(statusCode), detail: (err as Error).message }, unexpected: false };
  }
  return { status: 500, body: { code: ErrorCode.InternalError, detail: 'An internal error occurred.' }, unexpected: true };
}

export function problemDocument(
  status: number,
  body: ErrorBody,
  request: { id: string; url?: string; clientRequestId?: string | undefined },
): ProblemDocument {
  return {
    type: `urn:imagemart:problem:${body.code}`,
    title: TITLES[status] ?? 'Error',
    status,
    ...body,
    ...(request.url !== undefined ? { instance: request.url.split('?')[0] ?? request.url } : {}),
    requestId: request.id,
    ...(request.clientRequestId !== undefined ? { clientRequestId: request.clientRequestId } : {}),
  };
}

export function sendProblem(reply: FastifyReply, request: FastifyRequest, err: unknown, logger: Logger): void {
  const { status, body, unexpected } = toErrorBody(err);
  if (unexpected) logger.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
  if (status === 401 && !reply.hasHeader('www-authenticate')) void reply.header('WWW-Authenticate', 'Bearer realm="imagemart"');
  const clientRequestId = acceptClientRequestId(request.headers['x-request-id']);
  if (clientRequestId !== undefined) void reply.header('x-client-request-id', clientRequestId);
  // An error is never kept by a cache, and names its request, whatever stage raised it (the
  // router's errors do not pass every hook).
  void reply
    .status(status)
    .type('application/problem+json')
    .header('cache-control', 'no-store')
    .header('x-request-id', String(request.id))
    .send(problemDocument(status, body, { id: String(request.id), url: request.url, clientRequestId }));
}

@Catch()
export class ProblemFilter implements ExceptionFilter {
  private readonly logger = new Logger('ProblemFilter');

  catch(exception: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    sendProblem(http.getResponse<FastifyReply>(), http.getRequest<FastifyRequest>(), exception, this.logger);
  }
}
