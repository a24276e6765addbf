import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '@imagemart/config';
import { storefrontConfigSchema } from './storefront.config.js';

describe('the gateway configuration', () => {
  it('has HTTP timeouts and a /metrics rate limit by default', () => {
    expect(loadConfig(storefrontConfigSchema, {})).toMatchObject({
      HTTP_HEADERS_TIMEOUT_MS: 10_000,
      HTTP_REQUEST_TIMEOUT_MS: 300_000,
      HTTP_IDLE_TIMEOUT_MS: 15_000,
      HTTP_KEEP_ALIVE_TIMEOUT_MS: 5_000,
      RATE_LIMIT_METRICS_PER_MINUTE: 60,
    });
  });

  it('refuses timeouts Node cannot keep: headers after the request, idle shorter than an RPC', () => {
    expect(() =>
      loadConfig(storefrontConfigSchema, {
        HTTP_HEADERS_TIMEOUT_MS: '20000',
        HTTP_REQUEST_TIMEOUT_MS: '10000',
      }),
    ).toThrow(/HTTP_HEADERS_TIMEOUT_MS/);
    expect(() => loadConfig(storefrontConfigSchema, { RPC_TIMEOUT_MS: '20000' })).toThrow(ConfigError);
    expect(() =>
      loadConfig(storefrontConfigSchema, { RPC_TIMEOUT_MS: '20000', HTTP_IDLE_TIMEOUT_MS: '30000' }),
    ).not.toThrow();
  });
});
