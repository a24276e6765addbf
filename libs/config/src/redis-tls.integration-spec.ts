import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect as connectTcp, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type Server } from 'node:tls';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { baseConfigSchema, ConfigError, loadConfig } from './config.js';

/**
 * A `rediss://` server signed by a private CA: a TLS front (certificate for localhost, from a CA
 * made here with openssl) to the test Redis.
 */
const redisUrl = new URL(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
let dir: string;
let server: Server;
let tlsUrl: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'imagemart-redis-tls-'));
  const at = (name: string) => join(dir, name);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'ignore' });
  openssl(
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '1',
    '-subj',
    '/CN=ImageMart test CA',
    '-keyout',
    at('ca.key'),
    '-out',
    at('ca.pem'),
  );
  openssl(
    'req',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-subj',
    '/CN=localhost',
    '-keyout',
    at('server.key'),
    '-out',
    at('server.csr'),
  );
  writeFileSync(at('ext.cnf'), 'subjectAltName=DNS:localhost\n');
  openssl(
    'x509',
    '-req',
    '-in',
    at('server.csr'),
    '-CA',
    at('ca.pem'),
    '-CAkey',
    at('ca.key'),
    '-CAcreateserial',
    '-days',
    '1',
    '-extfile',
    at('ext.cnf'),
    '-out',
    at('server.pem'),
  );

  server = createServer(
    { key: readFileSync(at('server.key')), cert: readFileSync(at('server.pem')) },
    (socket) => {
      const upstream = connectTcp(Number(redisUrl.port || 6379), redisUrl.hostname);
      socket.pipe(upstream).pipe(socket);
      const close = () => {
        socket.destroy();
        upstream.destroy();
      };
      socket.on('error', close);
      upstream.on('error', close);
    },
  );
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  tlsUrl = `rediss://localhost:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((done) => server.close(done));
  rmSync(dir, { recursive: true, force: true });
});

async function ping(url: string): Promise<string> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  let socketError: Error | undefined;
  redis.on('error', (err: Error) => (socketError ??= err));
  try {
    await redis.connect();
    return await redis.ping();
  } catch (err) {
    throw socketError ?? err;
  } finally {
    redis.disconnect();
  }
}

describe('REDIS_TLS_CA_FILE', () => {
  it('makes a rediss:// server signed by a private CA trusted, which it is not without it', async () => {
    await expect(ping(tlsUrl)).rejects.toThrow(/self-signed|unable to verify|certificate/i);

    const config = loadConfig(baseConfigSchema, {
      REDIS_URL: tlsUrl,
      REDIS_TLS_CA_FILE: join(dir, 'ca.pem'),
    });
    expect(config.REDIS_TLS_CA_FILE).toBe(join(dir, 'ca.pem'));
    await expect(ping(config.REDIS_URL)).resolves.toBe('PONG');
  });

  it('stops start-up on a file it cannot use', () => {
    expect(() => loadConfig(baseConfigSchema, { REDIS_TLS_CA_FILE: join(dir, 'missing.pem') })).toThrow(
      new ConfigError(
        `Invalid configuration: REDIS_TLS_CA_FILE: cannot read ${join(dir, 'missing.pem')} (ENOENT)`,
      ),
    );
    expect(() => loadConfig(baseConfigSchema, { REDIS_TLS_CA_FILE: join(dir, 'ext.cnf') })).toThrow(
      /holds no PEM certificate/,
    );
  });
});
