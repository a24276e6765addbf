import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { baseConfigSchema, ConfigError, DEFAULT_DATABASE_URL, DEFAULT_REDIS_URL, loadConfig } from './config.js';

describe('loadConfig', () => {
  it('fills in the local defaults', () => {
    const config = loadConfig(baseConfigSchema, {});
    expect(config).toMatchObject({
      DATABASE_URL: DEFAULT_DATABASE_URL,
      REDIS_URL: DEFAULT_REDIS_URL,
      REDIS_PREFIX: 'imagemart',
      RPC_TIMEOUT_MS: 5000,
    });
  });

  it('treats an empty variable as unset and coerces numbers', () => {
    const config = loadConfig(baseConfigSchema, { DATABASE_URL: '', RPC_TIMEOUT_MS: '250' });
    expect(config.DATABASE_URL).toBe(DEFAULT_DATABASE_URL);
    expect(config.RPC_TIMEOUT_MS).toBe(250);
  });

  it('names every bad variable in one error', () => {
    const bad = () =>
      loadConfig(baseConfigSchema, { DATABASE_URL: 'mysql://x/y', REDIS_PREFIX: 'has space', RPC_TIMEOUT_MS: '-1' });
    expect(bad).toThrow(ConfigError);
    expect(bad).toThrow(/DATABASE_URL.*REDIS_PREFIX.*RPC_TIMEOUT_MS/);
  });

  it('validates an app extension of the base schema', () => {
    const schema = baseConfigSchema.extend({ PORT: z.coerce.number().int().max(65535).default(3000) });
    expect(loadConfig(schema, { PORT: '8080' }).PORT).toBe(8080);
    expect(() => loadConfig(schema, { PORT: '70000' })).toThrow(/PORT/);
  });
});
