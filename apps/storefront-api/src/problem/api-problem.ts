import { ERROR_STATUS, ErrorCode, type ErrorBody, type FieldError } from '@imagemart/contracts';

/** An error the gateway answers with as problem+json: a stable code, a human detail. */
export class ApiProblem extends Error {
  override readonly name = 'ApiProblem';
  readonly status: number;

  constructor(
    readonly code: ErrorCode,
    readonly detail: string,
    readonly errors?: FieldError[],
  ) {
    super(detail);
    this.status = ERROR_STATUS[code];
  }

  static from(body: ErrorBody): ApiProblem {
    return new ApiProblem(body.code, body.detail, body.errors);
  }

  toBody(): ErrorBody {
    return this.errors ? { code: this.code, detail: this.detail, errors: this.errors } : { code: this.code, detail: this.detail };
  }
}

export const invalidParameter = (detail: string, errors?: FieldError[]) =>
  new ApiProblem(ErrorCode.InvalidParameterValue, detail, errors);
