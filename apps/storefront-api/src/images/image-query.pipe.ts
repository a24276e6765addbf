import { Injectable, type PipeTransform } from '@nestjs/common';
import {
  ErrorCode,
  IMAGE_QUERY_PARAMETERS,
  listImagesQuerySchema,
  type FieldError,
  type ListImagesRequest,
} from '@imagemart/contracts';
import { ApiProblem } from '../problem/api-problem.js';

const KNOWN = new Set<string>(IMAGE_QUERY_PARAMETERS);

/**
 * The query of `GET /v1/images`. An unknown parameter is `InvalidFilter` naming it (a typo in a
 * filter name must not widen the list); a name pattern that is not one is `InvalidFilter` too;
 * any other bad value `InvalidParameterValue`.
 */
@Injectable()
export class ImageQueryPipe implements PipeTransform<unknown, Omit<ListImagesRequest, 'caller'>> {
  transform(value: unknown): Omit<ListImagesRequest, 'caller'> {
    const query = (value ?? {}) as Record<string, unknown>;
    const unknown = Object.keys(query).filter((k) => !KNOWN.has(k));
    if (unknown.length > 0) {
      throw new ApiProblem(
        ErrorCode.InvalidFilter,
        `Unknown filter ${unknown.map((k) => `'${k}'`).join(', ')}. Filters: ${IMAGE_QUERY_PARAMETERS.join(', ')}.`,
        unknown.map((k) => ({ path: k, message: 'unknown filter' })),
      );
    }
    const parsed = listImagesQuerySchema.safeParse({ ...query });
    if (parsed.success) return parsed.data;
    const errors: FieldError[] = parsed.error.issues.map((i) => ({
      path: String(i.path[0] ?? '(query)'),
      message: i.message,
    }));
    const code = errors.every((e) => e.path === 'name') ? ErrorCode.InvalidFilter : ErrorCode.InvalidParameterValue;
    throw new ApiProblem(code, `Invalid request: ${errors.map((e) => `${e.path}: ${e.message}`).join('; ')}`, errors);
  }
}
