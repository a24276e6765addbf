import { RpcException } from '@nestjs/microservices';
import type { ErrorBody, ErrorCode, FieldError } from '@imagemart/contracts';

/**
 * The one exception services throw for an expected failure. It travels over the transport as an
 * `ErrorBody`; the gateway maps its code to an HTTP status and a problem+json body.
 */
export class DomainException extends RpcException {
  constructor(
    readonly code: ErrorCode,
    readonly detail: string,
    readonly errors?: FieldError[],
  ) {
    const body: ErrorBody = errors ? { code, detail, errors } : { code, detail };
    super(body);
  }

  get body(): ErrorBody {
    return this.getError() as ErrorBody;
  }
}
