import { RequestMethod } from '@nestjs/common';
import { METHOD_METADATA, PATH_METADATA } from '@nestjs/common/constants.js';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '@imagemart/config';
import { StorefrontModule } from '../storefront.module.js';
import { storefrontConfigSchema } from '../storefront.config.js';
import { TestIdentities } from '@imagemart/testing';
import { IS_OPTIONAL_AUTH, IS_PUBLIC } from './public.decorator.js';

/**
 * Every route needs an API key (the global AuthGuard) unless it is marked @Public() (no key) or
 * @OptionalAuth() (anonymous callers allowed, a key used when given). This test lists both kinds:
 * a new route opened by mistake, or an open route that lost its mark, fails here.
 */
// Stripe's webhook proves itself with its signature on the raw body (webhooks/stripe-webhook.controller.ts).
// The platform's public keys: what a seller wraps his bundles' data keys for, before he has any key.
const PUBLIC_ROUTES = ['GET /health', 'GET /v1/platform/keys', 'POST /v1/webhooks/stripe'];
const OPTIONAL_AUTH_ROUTES: string[] = [
  // Browsing the catalog: anyone sees public images; a key shows an account its own and its shares too.
  'GET /v1/images',
  'GET /v1/images/:imageId',
  'GET /v1/listings',
  'GET /v1/listings/:listingId',
  'GET /v1/sellers/:accountId',
  // Prices are public: base rates, and what a product costs.
  'GET /v1/pricing/instance-types',
  'GET /v1/products/:code/pricing',
];

describe('routes', () => {
  it('are public only where listed; every other one goes through the auth guard', () => {
    const module = StorefrontModule.forRoot(loadConfig(storefrontConfigSchema, TestIdentities.shared().env('storefront-api')));
    const routes: { route: string; isPublic: boolean; isOptional: boolean }[] = [];
    for (const controller of module.controllers ?? []) {
      const base = String(Reflect.getMetadata(PATH_METADATA, controller) ?? '');
      const proto = (controller as { prototype: Record<string, unknown> }).prototype;
      for (const name of Object.getOwnPropertyNames(proto)) {
        const handler = proto[name];
        if (typeof handler !== 'function' || name === 'constructor') continue;
        const method = Reflect.getMetadata(METHOD_METADATA, handler) as RequestMethod | undefined;
        if (method === undefined) continue;
        const path = String(Reflect.getMetadata(PATH_METADATA, handler) ?? '');
        const route = `${RequestMethod[method]} /${[base, path].filter((p) => p && p !== '/').join('/')}`;
        const marked = (key: string) =>
          Reflect.getMetadata(key, handler) === true || Reflect.getMetadata(key, controller) === true;
        routes.push({ route, isPublic: marked(IS_PUBLIC), isOptional: marked(IS_OPTIONAL_AUTH) });
      }
    }
    expect(routes.length).toBeGreaterThan(PUBLIC_ROUTES.length);
    expect(routes.filter((r) => r.isPublic).map((r) => r.route).sort()).toEqual(PUBLIC_ROUTES);
    expect(routes.filter((r) => r.isOptional).map((r) => r.route).sort()).toEqual(OPTIONAL_AUTH_ROUTES.sort());
  });
});
