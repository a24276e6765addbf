import { Injectable, type PipeTransform } from '@nestjs/common';
import { ErrorCode, type FieldError } from '@imagemart/contracts';
import type { z } from 'zod';
import { DomainException } from './domain.exception.js';

export function zodFieldErrors(error: z.ZodError): FieldError[] {
  return error.issues.map((issue) => ({
    path: issue.path.map(String).join('.') || '(root)',
    message: issue.message,
  }));
}

/**
 * Validates a message payload at the receiving side against its contract schema:
 * `@Payload(new ZodPayloadPipe(schema))`. A payload that does not match is refused with
 * `InvalidParameterValue` and the list of fields that are wrong.
 */
@Injectable()
export class ZodPayloadPipe<S extends z.ZodType> implements PipeTransform<unknown, z.infer<S>> {
  constructor(private readonly schema: S) {}

  transform(value: unknown): z.infer<S> {
    const parsed = this.schema.safeParse(value);
    if (parsed.success) return parsed.data;
    const errors = zodFieldErrors(parsed.error);
    throw new DomainException(
      ErrorCode.InvalidParameterValue,
      `Invalid request: ${errors.map((e) => `${e.path}: ${e.message}`).join('; ')}`,
      errors,
    );
  }
}
