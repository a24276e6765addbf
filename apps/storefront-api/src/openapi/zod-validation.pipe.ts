import { Injectable, type PipeTransform } from '@nestjs/common';
import { z } from 'zod';
import { ErrorCode, type FieldError } from '@imagemart/contracts';
import { ApiProblem } from '../problem/api-problem.js';

/**
 * Validates a body, query or path parameter at the edge against a zod schema. Unknown fields are
 * refused (strict schemas), strings are trimmed where the schema says so.
 */
@Injectable()
export class ZodValidationPipe<S extends z.ZodType> implements PipeTransform<unknown, z.infer<S>> {
  constructor(
    private readonly schema: S,
    private readonly code: ErrorCode = ErrorCode.InvalidParameterValue,
    /** What the value is, for errors about the value as a whole: a path parameter's name. */
    private readonly field = '(body)',
  ) {}

  transform(value: unknown): z.infer<S> {
    const parsed = this.schema.safeParse(value);
    if (parsed.success) return parsed.data;
    const errors: FieldError[] = parsed.error.issues.map((i) => ({
      path: i.path.map(String).join('.') || this.field,
      message: i.message,
    }));
    throw new ApiProblem(this.code, `Invalid request: ${errors.map((e) => `${e.path}: ${e.message}`).join('; ')}`, errors);
  }
}

/** A zod schema as an OpenAPI schema object, for @ApiBody and friends. */
export function openApiSchema(schema: z.ZodType): Record<string, unknown> {
  const { $schema: _drop, ...json } = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Record<
    string,
    unknown
  >;
  return json;
}
