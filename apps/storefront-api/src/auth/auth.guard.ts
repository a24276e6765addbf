import { Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { FastifyRequest } from 'fastify';
import type { Caller } from '@imagemart/contracts';
import { ApiKeyAuthenticator } from './api-key.authenticator.js';
import { IS_OPTIONAL_AUTH, IS_PUBLIC } from './public.decorator.js';

export interface AuthenticatedRequest extends FastifyRequest {
  caller?: Caller;
}

/**
 * The global guard: every route needs `Authorization: Bearer <key>` unless it is marked
 * @Public(). The permission service says whose key it is; a missing, malformed, unknown or
 * revoked key gets 401 AuthFailure. On an @OptionalAuth() route a request without the header is
 * anonymous, and one with it is authenticated as on any other route.
 */
@Injectable()
export class AuthGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly authenticator: ApiKeyAuthenticator,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const isPublic = this.reflector.getAllAndOverride<boolean>(IS_PUBLIC, [context.getHandler(), context.getClass()]);
    if (isPublic) return true;
    const request = context.switchToHttp().getRequest<AuthenticatedRequest>();
    const optional = this.reflector.getAllAndOverride<boolean>(IS_OPTIONAL_AUTH, [context.getHandler(), context.getClass()]);
    if (optional && request.headers.authorization === undefined) return true;
    request.caller = await this.authenticator.authenticate(request.headers.authorization, { request: request.raw });
    return true;
  }
}
