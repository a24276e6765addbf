import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { expect } from 'vitest';
import { createTestDatabase, createTestRedisPrefix, TestIdentities, waitFor } from '@imagemart/testing';
import { allowedSenders, callerAccount, type SigningProcess } from '@imagemart/contracts';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export const PROCESS_NAMES = ['permission', 'catalog', 'billing', 'bundler-worker', 'storefront-api'] as const;
export type ProcessName = (typeof PROCESS_NAMES)[number];

export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  server.close();
  if (!address || typeof address === 'string') throw new Error('no port');
  return address.port;
}

/** A running process of the platform, with everything it printed. */
export class RunningProcess {
  output = '';
  constructor(
    readonly name: string,
    readonly child: ChildProcess,
  ) {
    child.stdout?.on('data', (b: Buffer) => (this.output += b.toString()));
    child.stderr?.on('data', (b: Buffer) => (this.output += b.toString()));
  }

  get exited(): boolean {
    return this.child.exitCode !== null || this.child.signalCode !== null;
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    if (this.exited) return this.child.exitCode;
    this.child.kill(signal);
    const [code] = (await once(this.child, 'exit')) as [number | null];
    return code;
  }
}

export function spawnNode(name: string, script: string, env: Record<string, string>): RunningProcess {
  const child = spawn(process.execPath, [script], {
    cwd: ROOT,
    env: { PATH: process.env['PATH'] ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new RunningProcess(name, child);
}

/**
 * The five processes from the build, on a database and Redis prefix of their own, with a
 * bootstrap admin key. `stop()` ends them and removes the database and the keys.
 */
export class Platform {
  readonly processes = new Map<ProcessName, RunningProcess>();
  readonly adminKey = `imk_${randomBytes(32).toString('base64url')}`;
  baseUrl = '';
  env: Record<string, string> = {};
  private cleanups: (() => Promise<void>)[] = [];
  private redis?: Redis;

  /** Settings of one process only (a port of its own, say). */
  readonly processEnv: Partial<Record<ProcessName, Record<string, string>>> = {};

  static async start(
    name: string,
    extraEnv: Record<string, string> = {},
    processEnv: Partial<Record<ProcessName, Record<string, string>>> = {},
    /** Servers of the test's own (the fault tests crash them); else the machine's shared ones. */
    servers?: { databaseUrl: string; redisUrl: string },
  ): Promise<Platform> {
    const platform = new Platform();
    Object.assign(platform.processEnv, processEnv);
    const db = await createTestDatabase(name, servers?.databaseUrl);
    const redis = createTestRedisPrefix(name, servers?.redisUrl);
    platform.cleanups.push(() => db.drop(), () => redis.cleanup());
    const port = await freePort();
    platform.baseUrl = `http://127.0.0.1:${port}`;
    platform.env = {
      DATABASE_URL: db.url,
      REDIS_URL: redis.url,
      REDIS_PREFIX: redis.prefix,
      PORT: String(port),
      LOG_LEVEL: 'info',
      ADMIN_BOOTSTRAP_KEY: platform.adminKey,
      HEALTH_TIMEOUT_MS: '1000',
      RPC_TIMEOUT_MS: '2000',
      // The suites register many image records that never get a bundle; the limit has its own test.
      SELLER_PENDING_IMAGE_LIMIT: '10000',
      ...extraEnv,
    };
    for (const p of PROCESS_NAMES) platform.startProcess(p);
    try {
      await platform.waitHealthy(60_000); // two shared cores: five processes may take a while to start
    } catch (err) {
      await platform.stop(); // no orphaned processes, database or keys when start-up fails
      throw err;
    }
    return platform;
  }

  startProcess(name: ProcessName): RunningProcess {
    const identity = TestIdentities.shared().env(name);
    const proc = spawnNode(name, `dist/apps/${name}/src/main.js`, { ...this.env, ...identity, ...this.processEnv[name] });
    this.processes.set(name, proc);
    return proc;
  }

  process(name: ProcessName): RunningProcess {
    const proc = this.processes.get(name);
    if (!proc) throw new Error(`${name} is not running`);
    return proc;
  }

  async waitHealthy(timeoutMs = 30_000): Promise<void> {
    await waitFor(
      async () => {
        for (const p of this.processes.values()) {
          if (p.exited) throw new Error(`${p.name} exited:\n${p.output}`);
        }
        const res = await fetch(`${this.baseUrl}/health`).catch(() => undefined);
        return res?.status === 200;
      },
      { timeoutMs, intervalMs: 200, what: 'an all-green /health' },
    );
  }

  /** A new account with these roles and an API key for it, made by the bootstrap admin. */
  async createAccount(roles: string[], name = `Test ${roles.join(' ')}`): Promise<TestAccount> {
    const email = `${roles.join('-')}-${randomUUID()}@example.test`;
    const created = await http(this.baseUrl, 'POST', '/v1/accounts', { key: this.adminKey, body: { name, email, roles } });
    if (created.status !== 201) throw new Error(`creating an account answered ${created.status}: ${JSON.stringify(created.body)}`);
    const key = await http(this.baseUrl, 'POST', `/v1/accounts/${created.body.id}/keys`, { key: this.adminKey, body: { name: 'test' } });
    if (key.status !== 201) throw new Error(`issuing a key answered ${key.status}: ${JSON.stringify(key.body)}`);
    return { id: created.body.id as string, key: key.body.key as string, keyId: key.body.id as string };
  }

  /**
   * One call of a service's pattern on its Redis stream, as another service makes it (the
   * transport's wire format: docs/messaging.md), signed as `as` (default: the first process
   * allowed to send the pattern, an operator's tool for the operators' patterns). Rejects with the
   * error code of an error reply.
   */
  async rpc<T>(
    service: string,
    pattern: string,
    data: unknown,
    timeoutS = 5,
    as: SigningProcess = allowedSenders(pattern)[0] ?? 'operator',
  ): Promise<T> {
    const redis = (this.redis ??= new Redis(this.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379'));
    const prefix = this.env['REDIS_PREFIX'];
    const replyTo = `${prefix}:rpc:reply:${randomUUID()}`;
    const id = randomUUID();
    const dataJson = JSON.stringify(data);
    // Signed on the processes' clock, which a test may have set behind the machine's (clock.ts).
    const now = Date.now() + this.clockOffsetMs();
    const caller = callerAccount(data);
    const assertion = TestIdentities.shared().signClaims(as, {
      aud: service,
      rid: id,
      pat: pattern,
      dataJson,
      ...(caller ? { sub: caller } : {}),
      iat: now,
      exp: now + 30_000,
    });
    await redis.xadd(
      `${prefix}:rpc:${service}`,
      '*',
      ...['id', id, 'pattern', pattern, 'data', dataJson, 'replyTo', replyTo],
      ...['deadline', String(Date.now() + timeoutS * 1000), 'metadata', '{}', 'assertion', assertion],
    );
    const reply = await redis.blpop(replyTo, timeoutS);
    if (!reply) throw new Error(`no reply to ${pattern} within ${timeoutS} s`);
    const parsed = JSON.parse(reply[1]) as { response?: T; err?: { code: string } };
    if (parsed.err) throw new Error(`${pattern}: ${parsed.err.code}`);
    return parsed.response as T;
  }

  /** How far the processes' clock is from the machine's (a PlatformClock's offset file), in ms. */
  private clockOffsetMs(): number {
    const file = this.env['CLOCK_OFFSET_FILE'];
    return file ? Number(readFileSync(file, 'utf8')) || 0 : 0;
  }

  /** Every line any process logged. */
  logs(): string {
    return [...this.processes.values()].map((p) => p.output).join('\n');
  }

  async stop(): Promise<void> {
    this.redis?.disconnect();
    await Promise.all([...this.processes.values()].map((p) => p.stop()));
    for (const cleanup of this.cleanups.reverse()) await cleanup();
  }
}

export interface TestAccount {
  id: string;
  key: string;
  keyId: string;
}

export interface Problem {
  type: string;
  title: string;
  status: number;
  code: string;
  detail: string;
  instance: string;
  requestId: string;
  errors?: { path: string; message: string }[];
}

/**
 * Asserts that a response is a problem+json error with this status and code, with a type URN,
 * a detail for a person, the request id of its header, and no stack trace. Returns the body.
 */
export function expectProblem(res: { status: number; headers: Headers; body: unknown }, status: number, code: string): Problem {
  expect(res.status, JSON.stringify(res.body)).toBe(status);
  expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  const problem = res.body as Problem;
  expect(problem).toMatchObject({ status, code, type: `urn:imagemart:problem:${code}` });
  expect(problem.detail).toEqual(expect.any(String));
  expect(problem.requestId).toEqual(res.headers.get('x-request-id'));
  expect(JSON.stringify(problem)).not.toMatch(/\bat .+\.(js|ts):\d+/); // no stack trace
  return problem;
}

/** A small HTTP client for the tests: JSON in, status, headers and parsed body out. */
export async function http(
  baseUrl: string,
  method: string,
  path: string,
  options: { key?: string; body?: unknown; rawBody?: string; contentType?: string; headers?: Record<string, string> } = {},
  // The tests read whatever shape each route answers with.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
): Promise<{ status: number; headers: Headers; body: any }> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.key) headers['authorization'] = `Bearer ${options.key}`;
  let body: string | undefined;
  if (options.rawBody !== undefined) body = options.rawBody;
  else if (options.body !== undefined) body = JSON.stringify(options.body);
  if (body !== undefined) headers['content-type'] = options.contentType ?? 'application/json';
  const res = await fetch(`${baseUrl}${path}`, { method, headers, ...(body !== undefined ? { body } : {}) });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    /* not JSON: keep the text */
  }
  return { status: res.status, headers: res.headers, body: parsed };
}

/**
 * Sends a request whose body the gateway refuses from its headers alone (too large, say): the
 * headers first, and the body only if no answer has come within a second. A gateway that answers
 * early may close the connection while a client still writes its body, which fetch reports as a
 * failure (EPIPE) instead of the answer; a careful client (or `Expect: 100-continue`) waits.
 */
export function httpRefusedBeforeBody(
  baseUrl: string,
  method: string,
  path: string,
  options: { key?: string; rawBody: string; contentType?: string },
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
): Promise<{ status: number; headers: Headers; body: any }> {
  const url = new URL(`${baseUrl}${path}`);
  const data = Buffer.from(options.rawBody);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        method,
        host: url.hostname,
        port: url.port,
        path: `${url.pathname}${url.search}`,
        headers: {
          ...(options.key ? { authorization: `Bearer ${options.key}` } : {}),
          'content-type': options.contentType ?? 'application/json',
          'content-length': String(data.length),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const headers = new Headers();
          for (const [name, value] of Object.entries(res.headers)) {
            if (value !== undefined) headers.set(name, Array.isArray(value) ? value.join(', ') : value);
          }
          let parsed: unknown = text;
          try {
            parsed = text ? JSON.parse(text) : undefined;
          } catch {
            /* not JSON: keep the text */
          }
          resolve({ status: res.statusCode ?? 0, headers, body: parsed });
          req.destroy();
        });
      },
    );
    let answered = false;
    req.on('response', () => (answered = true));
    req.on('error', (err) => (answered ? undefined : reject(err)));
    req.flushHeaders();
    setTimeout(() => (answered ? undefined : req.end(data)), 1000);
  });
}
