import { z } from 'zod';
import { trustCaFile } from './redis-tls.js';

export const DEFAULT_DATABASE_URL = 'postgresql://postgres@127.0.0.1:5432/imagemart';
export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';

const positiveInt = (fallback: number) => z.coerce.number().int().positive().default(fallback);

/** Settings every process reads. Each app extends this with its own. */
export const baseConfigSchema = z.object({
  NODE_ENV: z.enum(['development', 'test', 'production']).default('development'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  DATABASE_URL: z.url({ protocol: /^postgres(ql)?$/ }).default(DEFAULT_DATABASE_URL),
  /**
   * `redis://` or `rediss://` (TLS); `user:password@` signs in as an ACL user (each process its own:
   * docs/operations.md, "Redis as a boundary").
   */
  REDIS_URL: z.url({ protocol: /^rediss?$/ }).default(DEFAULT_REDIS_URL),
  /**
   * A PEM file with the CA certificate(s) of a `rediss://` server whose certificate Node does not
   * trust already (a private CA): added to the process's trusted CAs at boot.
   */
  REDIS_TLS_CA_FILE: z.string().min(1).optional(),
  /** Every Redis key this deployment writes starts with this prefix and a colon. */
  REDIS_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_.:-]{1,64}$/)
    .default('imagemart'),
  /** A port for `GET /metrics` in the processes without an HTTP server of their own; unset: none. */
  METRICS_PORT: z.coerce.number().int().min(0).max(65535).optional(),
  METRICS_HOST: z.string().min(1).default('127.0.0.1'),
  /** How long a caller waits for an RPC answer before it gives up with 504. */
  RPC_TIMEOUT_MS: positiveInt(5000),
  /**
   * How often a service's outbox relay looks for committed events when it has drained them: the
   * most an event waits between its commit and its queue. Shorter spreads the relay's work and
   * the consumers' behind it more evenly, at one small query per interval when idle.
   */
  OUTBOX_RELAY_INTERVAL_MS: z.coerce.number().int().min(10).max(60_000).default(100),
  /**
   * This process's own secret (base64 of 32 random bytes; `new,old` while rotating): the keys the
   * other processes sign with for it are derived from it (docs/messaging.md, "Signed callers").
   * `npm start` makes one per process.
   */
  SERVICE_IDENTITY_KEY: z.string().min(1).optional(),
  /** The keys this process signs with, one per receiver: `receiver=<base64 key>` entries separated by commas. */
  SERVICE_CALLER_KEYS: z.string().min(1).optional(),
  /** How long a caller assertion is valid; longer than any call waits (RPC_TIMEOUT_MS). */
  CALLER_ASSERTION_TTL_MS: z.coerce.number().int().min(1000).max(60_000).default(30_000),
});
export type BaseConfig = z.infer<typeof baseConfigSchema>;

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/**
 * Reads and validates the environment once, at boot. A bad variable stops start-up with one
 * sentence per problem; nothing else in the code reads `process.env`.
 */
export function loadConfig<S extends z.ZodType>(
  schema: S,
  env: Record<string, string | undefined> = process.env,
): z.infer<S> {
  // An empty variable means "not set", so that `FOO= npm start` falls back to the default.
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = schema.safeParse(cleaned);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `${i.path.join('.') || '(environment)'}: ${i.message}`);
    throw new ConfigError(`Invalid configuration: ${lines.join('; ')}`);
  }
  const caFile = (parsed.data as { REDIS_TLS_CA_FILE?: unknown }).REDIS_TLS_CA_FILE;
  if (typeof caFile === 'string') {
    const problem = trustCaFile(caFile);
    if (problem) throw new ConfigError(`Invalid configuration: REDIS_TLS_CA_FILE: ${problem}`);
  }
  return parsed.data;
}

/** Injection token of the process's validated configuration object. */
export const APP_CONFIG = Symbol.for('imagemart.app-config');
