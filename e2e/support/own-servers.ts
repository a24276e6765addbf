import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { waitFor } from '@imagemart/testing';
import { freePort } from './platform.js';

const run = promisify(execFile);

/**
 * PostgreSQL and Redis servers of a test's own, on loopback ports of their own, for the fault
 * tests: they crash and restart these, never the machine's shared servers.
 */

/** A PostgreSQL binary: from PATH, else from Debian's versioned directory. */
function pgBinary(name: string): string {
  for (const dir of (process.env['PATH'] ?? '').split(':')) {
    if (dir && existsSync(join(dir, name))) return join(dir, name);
  }
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).sort().reverse() : [];
  for (const v of versions) {
    const candidate = join(root, v, 'bin', name);
    if (existsSync(candidate)) return candidate;
  }
  throw new Error(`${name} not found: the fault tests need PostgreSQL's server binaries`);
}

/** PostgreSQL refuses to run as root: as root, its commands run as the `postgres` user. */
const asServerUser = (cmd: string, args: string[]): [string, string[]] =>
  process.getuid?.() === 0 ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args];

async function runAsServerUser(cmd: string, args: string[]): Promise<void> {
  const [file, argv] = asServerUser(cmd, args);
  await run(file, argv, { timeout: 60_000 });
}

export class OwnPostgres {
  private constructor(
    readonly dir: string,
    readonly port: number,
  ) {}

  /** A connection string for the server's `postgres` database (scratch databases are made from it). */
  get url(): string {
    return `postgresql://postgres@127.0.0.1:${this.port}/postgres`;
  }

  private get dataDir(): string {
    return join(this.dir, 'data');
  }

  static async start(): Promise<OwnPostgres> {
    const dir = mkdtempSync(join(tmpdir(), 'imagemart-pg-'));
    if (process.getuid?.() === 0) chownSync(dir, uidOf('postgres'), gidOf('postgres'));
    const server = new OwnPostgres(dir, await freePort());
    await runAsServerUser(pgBinary('initdb'), ['-D', server.dataDir, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync']);
    await server.resume();
    return server;
  }

  /** Starts the server (again) on its port and data directory; resolves once it accepts connections. */
  async resume(): Promise<void> {
    const options = `-p ${this.port} -k ${this.dir} -c listen_addresses=127.0.0.1 -c max_connections=200`;
    await runAsServerUser(pgBinary('pg_ctl'), ['-D', this.dataDir, '-o', options, '-l', join(this.dir, 'server.log'), '-w', '-t', '60', 'start']);
  }

  /** Stops it as a power cut would (`immediate`: no shutdown checkpoint, crash recovery at the next start). */
  async crash(): Promise<void> {
    await runAsServerUser(pgBinary('pg_ctl'), ['-D', this.dataDir, '-m', 'immediate', '-w', 'stop']);
  }

  async destroy(): Promise<void> {
    await runAsServerUser(pgBinary('pg_ctl'), ['-D', this.dataDir, '-m', 'immediate', '-w', 'stop']).catch(() => undefined);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A user's numeric id or group id, from coreutils' `id` (once, while a test sets up). */
const idOf = (flag: '-u' | '-g', user: string): number => Number(execFileSync('id', [flag, user], { encoding: 'utf8' }).trim());
const uidOf = (user: string) => idOf('-u', user);
const gidOf = (user: string) => idOf('-g', user);

/**
 * Redis with append-only persistence, as production must run it (`appendfsync always`: an
 * acknowledged write survives a crash), so a crash and restart keeps every queue.
 */
export class OwnRedis {
  private child?: ChildProcess;

  private constructor(
    readonly dir: string,
    readonly port: number,
  ) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  static async start(): Promise<OwnRedis> {
    const server = new OwnRedis(mkdtempSync(join(tmpdir(), 'imagemart-redis-')), await freePort());
    await server.resume();
    return server;
  }

  async resume(): Promise<void> {
    const args = ['--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir, '--appendonly', 'yes'];
    args.push('--appendfsync', 'always', '--save', '', '--maxmemory-policy', 'noeviction', '--daemonize', 'no');
    const child = spawn('redis-server', args, { stdio: 'ignore' });
    this.child = child;
    await waitFor(
      async () => {
        if (child.exitCode !== null) throw new Error(`redis-server exited with ${child.exitCode}`);
        const probe = new Redis(this.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
        try {
          await probe.connect();
          return (await probe.ping()) === 'PONG';
        } catch {
          return false;
        } finally {
          probe.disconnect();
        }
      },
      { timeoutMs: 20_000, intervalMs: 100, what: 'redis-server to answer PING' },
    );
  }

  /** Kills it with SIGKILL: what it had not written to its append-only file is gone. */
  async crash(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGKILL');
    await once(child, 'exit');
  }

  async destroy(): Promise<void> {
    await this.crash();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
