import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import type { Caller } from '@imagemart/contracts';
import type { AuthenticatedRequest } from './auth.guard.js';

/** The authenticated caller of the request (the guard has put it there). */
export const CurrentCaller = createParamDecorator((_: unknown, ctx: ExecutionContext): Caller => {
  const caller = ctx.switchToHttp().getRequest<AuthenticatedRequest>().caller;
  if (!caller) throw new Error('CurrentCaller used on a route without authentication');
  return caller;
});

/** On an @OptionalAuth() route: the caller, or null when the request carried no API key. */
export const OptionalCaller = createParamDecorator(
  (_: unknown, ctx: ExecutionContext): Caller | null => ctx.switchToHttp().getRequest<AuthenticatedRequest>().caller ?? null,
);
