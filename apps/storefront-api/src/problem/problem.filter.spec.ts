import { BadRequestException, NotFoundException } from '@nestjs/common';
import { describe, expect, it } from 'vitest';
import { ERROR_STATUS, ErrorCode } from '@imagemart/contracts';
import { ApiProblem } from './api-problem.js';
import { toErrorBody } from './problem.filter.js';

describe('toErrorBody', () => {
  it('keeps a service error code and gives it its status', () => {
    for (const code of Object.values(ErrorCode)) {
      const result = toErrorBody({ code, detail: 'd' });
      expect(result.status).toBe(ERROR_STATUS[code]);
      expect(result.body).toEqual({ code, detail: 'd' });
    }
  });

  it('maps an ApiProblem with its field errors', () => {
    const problem = new ApiProblem(ErrorCode.InvalidParameterValue, 'bad', [{ path: 'name', message: 'too long' }]);
    expect(toErrorBody(problem)).toEqual({
      status: 400,
      body: { code: 'InvalidParameterValue', detail: 'bad', errors: [{ path: 'name', message: 'too long' }] },
      unexpected: false,
    });
  });

  it('maps what Fastify and Nest raise before a handler runs', () => {
    expect(toErrorBody(Object.assign(new Error('x'), { code: 'FST_ERR_CTP_BODY_TOO_LARGE', statusCode: 413 })).body.code).toBe(
      'PayloadTooLarge',
    );
    expect(toErrorBody(Object.assign(new Error('x'), { code: 'FST_ERR_CTP_INVALID_MEDIA_TYPE', statusCode: 415 })).body.code).toBe(
      'UnsupportedMediaType',
    );
    expect(toErrorBody(new NotFoundException()).body.code).toBe('RouteNotFound');
    expect(toErrorBody(new BadRequestException('Body is not valid JSON')).body.code).toBe('MalformedRequest');
  });

  it('hides the details of anything unexpected', () => {
    const result = toErrorBody(new TypeError('cannot read x of undefined at /srv/secret/path.js:10'));
    expect(result).toEqual({ status: 500, body: { code: 'InternalError', detail: 'An internal error occurred.' }, unexpected: true });
    expect(toErrorBody({ code: 'NotACode', detail: 'x' }).body.code).toBe('InternalError');
  });
});
