import type { FastifyRequest } from 'fastify';
import { ErrorCode } from '@imagemart/contracts';
import { ApiProblem } from '../problem/api-problem.js';

/**
 * The text of a JSON body, read strictly. JSON is UTF-8 (RFC 8259): a body declared in another
 * charset, or whose bytes are not valid UTF-8 (an overlong form, a UTF-16 surrogate encoded as
 * UTF-8, a sequence cut short, a stray continuation byte), is refused with 400 `MalformedRequest`
 * before it is parsed. A lenient decoder would put U+FFFD in place of the bad bytes, and that,
 * not what the client sent, would be stored. A leading byte order mark is dropped.
 */
const decoder = new TextDecoder('utf-8', { fatal: true });
const CHARSET = /;\s*charset\s*=\s*"?([^";\s]*)"?/i;

export function decodeJsonBody(request: FastifyRequest, body: Buffer | string): string {
  const charset = CHARSET.exec(request.headers['content-type'] ?? '')?.[1]?.toLowerCase();
  if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') {
    throw new ApiProblem(
      ErrorCode.MalformedRequest,
      `A JSON body is UTF-8; this one is declared as charset=${charset.slice(0, 40)}.`,
    );
  }
  // Registered with parseAs: 'buffer'; a string has been decoded already.
  if (typeof body === 'string') return body;
  try {
    return decoder.decode(body);
  } catch {
    throw new ApiProblem(ErrorCode.MalformedRequest, 'The request body is not valid UTF-8.');
  }
}
