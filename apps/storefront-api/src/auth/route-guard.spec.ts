import { RequestMethod } from '@nestjs/common';
import { METHOD_METADATA, PATH_METADATA } from '@nestjs/common/constants.js';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '@imagemart/config';
import { StorefrontModule } from '../storefront.module.js';
import { storefrontConfigSchema } from '../storefront.config.js';
import { IS_PUBLIC } from './public.decorator.js';

/**
 * Every route needs an API key (the global AuthGuard) unless it is marked @Public(). This test
 * lists the public ones: a new route marked public by mistake, or a public route that lost its
 * mark, fails here.
 */
const PUBLIC_ROUTES = ['GET /health', 'GET /metrics'];

describe('routes', () => {
  it('are public only where listed; every other one goes through the auth guard', () => {
    const module = StorefrontModule.forRoot(loadConfig(storefrontConfigSchema, {}));
    const routes: { route: string; isPublic: boolean }[] = [];
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
        const isPublic =
          Reflect.getMetadata(IS_PUBLIC, handler) === true || Reflect.getMetadata(IS_PUBLIC, controller) === true;
        routes.push({ route, isPublic });
      }
    }
    expect(routes.length).toBeGreaterThan(PUBLIC_ROUTES.length);
    expect(routes.filter((r) => r.isPublic).map((r) => r.route).sort()).toEqual(PUBLIC_ROUTES);
  });
});
