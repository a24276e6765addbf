import { Injectable } from '@nestjs/common';
import { ErrorCode, PermissionPattern, type AuthenticateResponse, type Caller } from '@imagemart/contracts';
import { requestContext } from '@imagemart/observability';
import { ApiProblem } from '../problem/api-problem.js';
import { ServiceClients } from '../rpc/service-clients.js';

const BEARER = /^Bearer ([\x21-\x7e]{1,256})$/;
const BASIC = /^Basic ([A-Za-z0-9+/=]{1,400})$/;

/**
 * Reads the API key from an Authorization header and asks the permission service whose it is.
 * `Bearer <key>` is the API's scheme; `Basic` (any user name, the key as password) is accepted
 * where a browser must sign in, as on the queue dashboard.
 */
@Injectable()
export class ApiKeyAuthenticator {
  constructor(private readonly services: ServiceClients) {}

  async authenticate(header: string | undefined, { allowBasic = false } = {}): Promise<Caller> {
    if (!header) throw new ApiProblem(ErrorCode.AuthFailure, 'This request needs an API key: Authorization: Bearer <key>.');
    const key = BEARER.exec(header)?.[1] ?? (allowBasic ? basicPassword(header) : undefined);
    if (!key) throw new ApiProblem(ErrorCode.AuthFailure, 'The Authorization header must be "Bearer <key>".');

    const { caller } = await this.services.call<AuthenticateResponse>('permission', PermissionPattern.apiKeyAuthenticate, {
      key,
    });
    if (!caller) throw new ApiProblem(ErrorCode.AuthFailure, 'The API key is not valid, or it has been revoked.');
    const ctx = requestContext.get();
    if (ctx) ctx.accountId = caller.accountId;
    return caller;
  }
}

function basicPassword(header: string): string | undefined {
  const encoded = BASIC.exec(header)?.[1];
  if (!encoded) return undefined;
  const decoded = Buffer.from(encoded, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  const password = colon >= 0 ? decoded.slice(colon + 1) : '';
  return /^[\x21-\x7e]{1,256}$/.test(password) ? password : undefined;
}
