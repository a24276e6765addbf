import type { TestingModule } from '@nestjs/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, type Caller } from '@imagemart/contracts';
import { DomainException } from '@imagemart/messaging';
import { createTestDatabase, createTestRedisPrefix, type TestDatabase, type TestRedisPrefix } from '@imagemart/testing';
import { AccountsService } from './accounts/accounts.service.js';
import { ApiKeysService } from './api-keys/api-keys.service.js';
import { generateApiKey, hashApiKey } from './api-keys/api-key.secret.js';
import { AdminBootstrapService } from './bootstrap/admin-bootstrap.service.js';
import { startPermissionInstance } from './permission.fixture.js';

let db: TestDatabase;
let redis: TestRedisPrefix;
let moduleRef: TestingModule;
let accounts: AccountsService;
let keys: ApiKeysService;

const BOOTSTRAP_KEY = 'imk_bootstrap-key-for-tests-0123456789abcdef';

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'resolved';
  } catch (err) {
    if (err instanceof DomainException) return err.code;
    throw err;
  }
}

beforeAll(async () => {
  db = await createTestDatabase('permission');
  redis = createTestRedisPrefix('permission');
  moduleRef = await startPermissionInstance({ prisma: db.prisma, redisUrl: redis.url, prefix: redis.prefix });
  accounts = moduleRef.get(AccountsService);
  keys = moduleRef.get(ApiKeysService);
});

afterAll(async () => {
  await moduleRef?.close();
  await db?.drop();
  await redis?.cleanup();
});

describe('first admin bootstrap', () => {
  it('creates exactly one admin when several replicas start at once, and none after that', async () => {
    const bootstrap = moduleRef.get(AdminBootstrapService);
    // An email that a non-admin account holds is refused, and nothing is created.
    await db.prisma.account.create({ data: { id: '000000000007', name: 'B', email: 'taken@example.test', roles: ['buyer'] } });
    await expect(bootstrap.bootstrap({ key: BOOTSTRAP_KEY, email: 'taken@example.test', name: 'Admin' })).rejects.toThrow(
      /ADMIN_BOOTSTRAP_EMAIL taken@example.test belongs to an account that is not an admin/,
    );
    expect(await db.prisma.account.count({ where: { roles: { has: 'admin' } } })).toBe(0);

    const outcomes = await Promise.all(
      Array.from({ length: 5 }, () => bootstrap.bootstrap({ key: BOOTSTRAP_KEY, email: 'admin@example.test', name: 'Admin' })),
    );
    expect(outcomes.filter((o) => o === 'created')).toHaveLength(1);
    expect(await db.prisma.account.count({ where: { roles: { has: 'admin' } } })).toBe(1);
    const auth = await keys.authenticate(hashApiKey(BOOTSTRAP_KEY));
    expect(auth.caller?.roles).toEqual(['admin']);
    // The key is stored only as its hash.
    const row = await db.prisma.apiKey.findFirstOrThrow({ where: { accountId: auth.caller!.accountId } });
    expect(row.hash).toBe(hashApiKey(BOOTSTRAP_KEY));
    expect(JSON.stringify(row)).not.toContain(BOOTSTRAP_KEY);
    expect(await bootstrap.bootstrap({ key: 'imk_another-key-that-is-long-enough-000000', email: 'b@example.test', name: 'B' })).toBe(
      'admin-exists',
    );
    await expect(bootstrap.bootstrap({ key: 'short', email: 'c@example.test', name: 'C' })).rejects.toThrow(/at least 32/);
  });
});

/** Issues a key as the gateway does: the key made here, the service given its hash and prefix. */
async function issueKey(caller: Caller, accountId: string, name: string) {
  const secret = generateApiKey();
  const view = await keys.issue(caller, accountId, name, { hash: secret.hash, prefix: secret.prefix });
  return { ...view, ...secret };
}

describe('accounts and keys', () => {
  let admin: Caller;
  beforeAll(async () => {
    const auth = await keys.authenticate(hashApiKey(BOOTSTRAP_KEY));
    admin = auth.caller!;
  });

  it('gives one of two simultaneous creations with the same email the account, the other a conflict', async () => {
    const body = { name: 'Race', email: 'race@example.test', roles: ['buyer' as const] };
    const results = await Promise.all([0, 1, 2].map(() => codeOf(accounts.create(admin, body))));
    expect(results.filter((r) => r === 'resolved')).toHaveLength(1);
    expect(results.filter((r) => r === ErrorCode.AccountAlreadyExists)).toHaveLength(2);
    expect(await db.prisma.account.count({ where: { email: 'race@example.test' } })).toBe(1);
  });

  it('authenticates an issued key until it is revoked or its account is suspended', async () => {
    const seller = await accounts.create(admin, { name: 'S', email: 's@example.test', roles: ['seller'] });
    const sellerCaller: Caller = { accountId: seller.id, roles: ['seller'] };
    const issued = await issueKey(sellerCaller, seller.id, 'laptop');
    expect(await keys.authenticate(issued.hash)).toEqual({ caller: sellerCaller });
    expect(await keys.authenticate(hashApiKey(`${issued.key}x`))).toEqual({ caller: null });

    const second = await issueKey(sellerCaller, seller.id, 'ci');
    await keys.revoke(sellerCaller, seller.id, issued.id);
    expect(await keys.authenticate(issued.hash)).toEqual({ caller: null });
    expect(await keys.authenticate(second.hash)).toEqual({ caller: sellerCaller });

    await db.prisma.account.update({ where: { id: seller.id }, data: { status: 'suspended' } });
    expect(await keys.authenticate(second.hash)).toEqual({ caller: null });

    const listed = await keys.list(admin, seller.id);
    expect(listed.map((k) => [k.name, k.revokedAt !== null])).toEqual([
      ['laptop', true],
      ['ci', false],
    ]);
    expect(listed[1]?.lastUsedAt).not.toBeNull();
  });

  it('refuses a key of another account, even to its own account id', async () => {
    const a = await accounts.create(admin, { name: 'A', email: 'a@example.test', roles: ['buyer'] });
    const b = await accounts.create(admin, { name: 'B', email: 'b2@example.test', roles: ['buyer'] });
    const bKey = await issueKey(admin, b.id, 'k');
    const callerA: Caller = { accountId: a.id, roles: ['buyer'] };
    // B's key id under A's account: not found, nothing revoked.
    expect(await codeOf(keys.revoke(callerA, a.id, bKey.id))).toBe(ErrorCode.InvalidKeyIDNotFound);
    expect((await keys.authenticate(bKey.hash)).caller?.accountId).toBe(b.id);
    expect(await codeOf(keys.list(callerA, b.id))).toBe(ErrorCode.InvalidAccountIDNotFound);
    expect(await codeOf(accounts.get(callerA, b.id))).toBe(ErrorCode.InvalidAccountIDNotFound);
    expect(await codeOf(accounts.list(callerA, 10))).toBe(ErrorCode.UnauthorizedOperation);
  });

  it('records every change in the audit log', async () => {
    const actions = (await db.prisma.auditEvent.findMany({ orderBy: { createdAt: 'asc' } })).map((e) => e.action);
    expect(actions).toEqual(expect.arrayContaining(['account.bootstrap-admin', 'account.create', 'apikey.issue', 'apikey.revoke']));
  });
});
