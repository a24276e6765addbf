/**
 * Turns the error of a failed connection into one sentence an operator can act on, for the
 * messages a process prints when it cannot start. Works on errors from `pg`, Prisma (through the
 * driver adapter) and ioredis/BullMQ. The URL's password never appears in the sentence.
 */
export type ConnectionTarget = 'PostgreSQL' | 'Redis';

type Problem = 'refused' | 'unreachable' | 'host-not-found' | 'timeout' | 'auth' | 'no-database' | 'unknown';

const ENV_VAR: Record<ConnectionTarget, string> = { PostgreSQL: 'DATABASE_URL', Redis: 'REDIS_URL' };
const DEFAULT_PORT: Record<ConnectionTarget, string> = { PostgreSQL: '5432', Redis: '6379' };

export function describeConnectionError(err: unknown, what: ConnectionTarget, url: string): string {
  const env = ENV_VAR[what];
  const where = describeUrl(url, what);
  switch (classify(err)) {
    case 'refused':
      return `Cannot reach ${what} at ${where.address} (connection refused): start it or set ${env}.`;
    case 'unreachable':
      return `Cannot reach ${what} at ${where.address}: start it, or check the address in ${env}.`;
    case 'host-not-found':
      return `Cannot reach ${what} at ${where.address} (host not found): check the host name in ${env}.`;
    case 'timeout':
      return `Cannot reach ${what} at ${where.address} (connection timed out): check that it is running and reachable, or set ${env}.`;
    case 'auth':
      return `${what} at ${where.address} rejected the credentials${where.user ? ` of user "${where.user}"` : ''}: check the user name and password in ${env}.`;
    case 'no-database':
      return `${what} at ${where.address} has no database "${where.database ?? ''}": create it (npm run db:migrate does) or set ${env}.`;
    case 'unknown':
      return `Cannot connect to ${what} at ${where.address}: ${scrub(messageOf(err), url)}. Check ${env}.`;
  }
}

/** Every error in the chain: causes, the members of an AggregateError (Node's happy eyeballs), the adapter's cause. */
function* chain(err: unknown, depth = 0): Generator<Record<string, unknown>> {
  if (depth > 5 || typeof err !== 'object' || err === null) return;
  const e = err as Record<string, unknown>;
  yield e;
  yield* chain(e['cause'], depth + 1);
  if (Array.isArray(e['errors'])) for (const inner of e['errors']) yield* chain(inner, depth + 1);
  // Prisma: `meta.code` is the SQLSTATE of a raw query, `meta.driverAdapterError.cause` the adapter's view.
  const meta = e['meta'] as Record<string, unknown> | undefined;
  yield* chain(meta, depth + 1);
  yield* chain(meta?.['driverAdapterError'], depth + 1);
}

function classify(err: unknown): Problem {
  for (const e of chain(err)) {
    // The driver adapter keeps the SQLSTATE as `originalCode`.
    const raw = e['code'] ?? e['originalCode'];
    const code = typeof raw === 'string' ? raw : '';
    const kind = typeof e['kind'] === 'string' ? e['kind'] : '';
    const message = typeof e['message'] === 'string' ? e['message'] : '';
    if (code === 'ECONNREFUSED') return 'refused';
    if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'host-not-found';
    if (
      code === 'ETIMEDOUT' ||
      code === 'P1002' ||
      kind === 'SocketTimeout' ||
      /timeout|timed out/i.test(message)
    ) {
      return 'timeout';
    }
    // PostgreSQL 28P01 invalid_password, 28000 invalid_authorization_specification (unknown role);
    // Prisma P1000; Redis WRONGPASS / NOAUTH / AUTH without a configured password.
    if (
      ['28P01', '28000', 'P1000'].includes(code) ||
      ['AuthenticationFailed', 'DatabaseAccessDenied'].includes(kind)
    ) {
      return 'auth';
    }
    if (/^(WRONGPASS|NOAUTH)|AUTH.*without any password/i.test(message)) return 'auth';
    // 3D000 invalid_catalog_name; Prisma P1003.
    if (code === '3D000' || code === 'P1003' || kind === 'DatabaseDoesNotExist') return 'no-database';
  }
  // Prisma reports a refused or unresolvable server alike (P1001), without the socket error.
  for (const e of chain(err))
    if (e['code'] === 'P1001' || e['kind'] === 'DatabaseNotReachable') return 'unreachable';
  return 'unknown';
}

function describeUrl(
  url: string,
  what: ConnectionTarget,
): { address: string; user?: string; database?: string } {
  try {
    const u = new URL(url);
    const address = `${u.hostname || '127.0.0.1'}:${u.port || DEFAULT_PORT[what]}`;
    const user = decodeURIComponent(u.username) || undefined;
    const database = decodeURIComponent(u.pathname.replace(/^\//, '')) || undefined;
    return { address, ...(user ? { user } : {}), ...(database ? { database } : {}) };
  } catch {
    return { address: `the address in ${ENV_VAR[what]}` };
  }
}

function messageOf(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  // Prisma's messages start with a code frame; the last line is the reason.
  return (message.trim().split('\n').at(-1) ?? '').trim().replace(/\.$/, '') || 'unknown error';
}

/** Removes the URL's password and any `user:password@` from a message before it is printed. */
function scrub(message: string, url: string): string {
  let out = message.replace(/(\w+:\/\/[^:/@\s]*):[^@\s]*@/g, '$1:***@');
  try {
    const password = new URL(url).password;
    for (const secret of [password, decodeURIComponent(password)]) {
      if (secret) out = out.replaceAll(secret, '***');
    }
  } catch {
    // An unparsable URL has no password we could find; the pattern above still applies.
  }
  return out;
}
