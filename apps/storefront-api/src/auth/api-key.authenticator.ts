import { Inject, Injectable } from '@nestjs/common';
import { Redis } from 'ioredis';
import { APP_CONFIG } from '@imagemart/config';
import {
  ErrorCode,
  PermissionPattern,
  apiKeyGenerationKey,
  hashApiKey,
  type AuthenticateResponse,
  type Caller,
} from '@imagemart/contracts';
import { requestContext } from '@imagemart/observability';
import { ApiProblem } from '../problem/api-problem.js';
import { ServiceClients } from '../rpc/service-clients.js';
import type { StorefrontConfig } from '../storefront.config.js';

const BEARER = /^Bearer ([\x21-\x7e]{1,256})$/;
const BASIC = /^Basic ([A-Za-z0-9+/=]{1,400})$/;
const MAX_CACHED_KEYS = 10_000;

interface CachedCaller {
  caller: Caller;
  /** The API-key generation when the permission service vouched for the key. */
  generation: string;
  expiresAt: number;
}

/**
 * Reads the API key from an Authorization header and asks the permission service whose it is.
 * `Bearer <key>` is the API's scheme; `Basic` (any user name, the key as password) is accepted
 * where a browser must sign in, as on the queue dashboard.
 *
 * The key itself never leaves the gateway: the permission service is asked by the key's SHA-256.
 * A valid key's caller is remembered (by that hash, never the key) together with the
 * API-key generation, a Redis counter the permission service increments before it answers a
 * revoke. Each request reads the counter (one Redis GET instead of a call to the permission
 * service) and uses a remembered caller only while the counter is unchanged, so a revoked key
 * fails on the first request after its revoke has answered. Without Redis, every request asks.
 */
@Injectable()
export class ApiKeyAuthenticator {
  private readonly cache = new Map<string, CachedCaller>();
  /** Generation reads started as requests arrived, by request. */
  private readonly early = new WeakMap<object, Promise<string | undefined>>();
  private readonly generationKey: string;
  private readonly ttlMs: number;
  /** Hashes of keys the permission service did not know, until when they are answered 401 unasked. */
  private readonly unknown = new Map<string, number>();
  private readonly unknownTtlMs: number;

  constructor(
    private readonly services: ServiceClients,
    @Inject(Redis) private readonly redis: Redis,
    @Inject(APP_CONFIG) config: StorefrontConfig,
  ) {
    this.generationKey = apiKeyGenerationKey(config.REDIS_PREFIX);
    this.ttlMs = config.AUTH_CACHE_TTL_MS;
    this.unknownTtlMs = config.AUTH_UNKNOWN_KEY_TTL_MS;
  }

  /**
   * Starts reading the API-key generation as a request arrives (before its rate limits and
   * routing), so that its Redis round trip overlaps theirs instead of following them; the
   * request's `authenticate` uses it. The read still comes after the request arrived, so a revoke
   * answered before then is seen.
   */
  prefetch(request: object, header: string | undefined): void {
    if (this.ttlMs > 0 && header !== undefined) this.early.set(request, this.currentGeneration());
  }

  async authenticate(header: string | undefined, { allowBasic = false, request }: { allowBasic?: boolean; request?: object } = {}): Promise<Caller> {
    if (!header) throw new ApiProblem(ErrorCode.AuthFailure, 'This request needs an API key: Authorization: Bearer <key>.');
    const key = BEARER.exec(header)?.[1] ?? (allowBasic ? basicPassword(header) : undefined);
    if (!key) throw new ApiProblem(ErrorCode.AuthFailure, 'The Authorization header must be "Bearer <key>".');

    const early = request === undefined ? undefined : this.early.get(request);
    if (request !== undefined) this.early.delete(request);
    const caller = await this.callerOf(key, early);
    if (!caller) throw new ApiProblem(ErrorCode.AuthFailure, 'The API key is not valid, or it has been revoked.');
    const ctx = requestContext.get();
    if (ctx) ctx.accountId = caller.accountId;
    return caller;
  }

  private async callerOf(key: string, early: Promise<string | undefined> | undefined): Promise<Caller | null> {
    // The key never leaves the gateway: the permission service finds it by its hash.
    const keyHash = hashApiKey(key);
    const unknownUntil = this.unknown.get(keyHash);
    if (unknownUntil !== undefined) {
      if (unknownUntil > Date.now()) return null;
      this.unknown.delete(keyHash);
    }
    const generation = this.ttlMs > 0 ? await (early ?? this.currentGeneration()) : undefined;
    if (generation !== undefined) {
      const hit = this.cache.get(keyHash);
      if (hit && hit.generation === generation && hit.expiresAt > Date.now()) return hit.caller;
      this.cache.delete(keyHash);
    }
    const { caller } = await this.services.call<AuthenticateResponse>('permission', PermissionPattern.apiKeyAuthenticate, { keyHash });
    if (!caller) {
      if (this.unknownTtlMs > 0) {
        if (this.unknown.size >= MAX_CACHED_KEYS) this.unknown.delete(this.unknown.keys().next().value as string);
        this.unknown.set(keyHash, Date.now() + this.unknownTtlMs);
      }
      return null;
    }
    // Remembered under the generation read before asking: a revoke that raced this request has
    // moved the counter on, so the entry is never used.
    if (generation !== undefined) {
      if (this.cache.size >= MAX_CACHED_KEYS) this.cache.delete(this.cache.keys().next().value as string);
      this.cache.set(keyHash, { caller, generation, expiresAt: Date.now() + this.ttlMs });
    }
    return caller;
  }

  /** The counter as a string ('0' before the first revoke), or undefined when Redis does not answer. */
  private async currentGeneration(): Promise<string | undefined> {
    try {
      return (await this.redis.get(this.generationKey)) ?? '0';
    } catch {
      return undefined;
    }
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
