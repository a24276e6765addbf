import { Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { FastifyRequest } from 'fastify';
import {
  ErrorCode,
  PermissionPattern,
  type AuthenticateResponse,
  type Caller,
} from '@imagemart/contracts';
import { requestContext } from '@imagemart/observability';
import { ApiProblem } from '../problem/api-problem.js';
import { ServiceClients } from '../rpc/service-clients.js';
import { IS_PUBLIC } from './public.decorator.js';

export interface AuthenticatedRequest extends FastifyRequest {
  caller?: Caller;
}

const BEARER = /^Bearer ([\x21-\x7e]{1,256})$/;

/**
 * The global guard: every route needs `Authorization: Bearer <key>` unless it is marked
 * @Public(). The permission service says whose key it is; a missing, malformed, unknown or
 * revoked key gets 401 AuthFailure.
 */
@Injectable()
export class AuthGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly services: ServiceClients,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const isPublic = this.reflector.getAllAndOverride<boolean>(IS_PUBLIC, [context.getHandler(), context.getClass()]);
    if (isPublic) return true;

    const request = context.switchToHttp().getRequest<AuthenticatedRequest>();
    const header = request.headers.authorization;
    if (!header) throw new ApiProblem(ErrorCode.AuthFailure, 'This request needs an API key: Authorization: Bearer <key>.');
    const match = BEARER.exec(header);
    if (!match?.[1]) throw new ApiProblem(ErrorCode.AuthFailure, 'The Authorization header must be "Bearer <key>".');

    const { caller } = await this.services.call<AuthenticateResponse>('permission', PermissionPattern.apiKeyAuthenticate, {
      key: match[1],
    });
    if (!caller) throw new ApiProblem(ErrorCode.AuthFailure, 'The API key is not valid, or it has been revoked.');
    request.caller = caller;
    const ctx = requestContext.get();
    if (ctx) ctx.accountId = caller.accountId;
    return true;
  }
}
