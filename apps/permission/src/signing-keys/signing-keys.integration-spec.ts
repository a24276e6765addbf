import { generateKeyPairSync } from 'node:crypto';
import type { TestingModule } from '@nestjs/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyFingerprint, loadPublicKey } from '@imagemart/bundle-format';
import { ErrorCode, type Caller } from '@imagemart/contracts';
import { DomainException } from '@imagemart/messaging';
import { requestContext } from '@imagemart/observability';
import {
  createTestDatabase,
  createTestRedisPrefix,
  type TestDatabase,
  type TestRedisPrefix,
} from '@imagemart/testing';
import { AccountsService } from '../accounts/accounts.service.js';
import { AuditService } from '../audit/audit.service.js';
import {
  UpstreamState,
  newAccountId,
  startPermissionInstance,
  startUpstreamStandIns,
} from '../permission.fixture.js';
import { SigningKeysService, auditResourceId } from './signing-keys.service.js';

/** Seller signing keys against a real database: register, list, get, revoke, who may, and the audit trail. */
let db: TestDatabase;
let redis: TestRedisPrefix;
let moduleRef: TestingModule;
let stopUpstream: () => Promise<void>;
let keys: SigningKeysService;
let seller: Caller;
let otherSeller: Caller;
const admin: Caller = { accountId: newAccountId(), roles: ['admin'] };

const ed25519 = () => generateKeyPairSync('ed25519');
const pubPem = (pair: ReturnType<typeof ed25519>) =>
  pair.publicKey.export({ type: 'spki', format: 'pem' }).toString();

async function errorOf(work: Promise<unknown>): Promise<DomainException> {
  const err = await work.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(DomainException);
  return err as DomainException;
}

beforeAll(async () => {
  db = await createTestDatabase('signing_keys');
  redis = createTestRedisPrefix('signing-keys');
  stopUpstream = await startUpstreamStandIns(redis.url, redis.prefix, new UpstreamState());
  moduleRef = await startPermissionInstance({ prisma: db.prisma, redisUrl: redis.url, prefix: redis.prefix });
  keys = moduleRef.get(SigningKeysService);
  const accounts = moduleRef.get(AccountsService);
  const make = async (name: string) => {
    const a = await accounts.create(null, {
      name,
      email: `${newAccountId()}@example.test`,
      roles: ['seller'],
    });
    return { accountId: a.id, roles: ['seller'] } satisfies Caller;
  };
  [seller, otherSeller] = await Promise.all([make('Seller'), make('Other seller')]);
});

afterAll(async () => {
  await moduleRef?.close();
  await stopUpstream?.();
  await db?.drop();
  await redis?.cleanup();
});

describe('seller signing keys', () => {
  it('registers an Ed25519 and an RSA key under their fingerprints, lists and gets them', async () => {
    const ed = ed25519();
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const edView = await keys.register(seller, seller.accountId, {
      publicKeyPem: pubPem(ed),
      name: 'laptop',
    });
    const rsaPem = rsa.publicKey.export({ type: 'pkcs1', format: 'pem' }).toString(); // PKCS#1 is read too
    const rsaView = await keys.register(seller, seller.accountId, {
      publicKeyPem: rsaPem,
      name: 'build server',
    });

    expect(edView).toMatchObject({
      keyId: keyFingerprint(ed.publicKey),
      accountId: seller.accountId,
      name: 'laptop',
      algorithm: 'Ed25519',
      keyType: 'ed25519',
      keyBits: null,
      revokedAt: null,
    });
    expect(rsaView).toMatchObject({
      keyId: keyFingerprint(rsa.publicKey),
      algorithm: 'RSA-PSS-SHA256',
      keyType: 'rsa',
      keyBits: 2048,
    });
    // Stored as SPKI, the same key as registered.
    expect(keyFingerprint(loadPublicKey(rsaView.publicKeyPem))).toBe(rsaView.keyId);
    expect(rsaView.publicKeyPem).toContain('BEGIN PUBLIC KEY');

    const listed = await keys.list(seller, seller.accountId);
    expect(listed.map((k) => k.keyId)).toEqual([edView.keyId, rsaView.keyId]);
    expect(await keys.get(seller, seller.accountId, edView.keyId)).toEqual(edView);
    // An admin sees them too.
    expect((await keys.list(admin, seller.accountId)).length).toBe(2);
  });

  it('answers a key registered again as it is (a retried request), once per account', async () => {
    const pem = pubPem(ed25519());
    const [a, b] = await Promise.all([
      keys.register(seller, seller.accountId, { publicKeyPem: pem, name: 'twice' }),
      keys.register(seller, seller.accountId, { publicKeyPem: pem, name: 'twice' }),
    ]);
    expect(a).toEqual(b);
    const again = await keys.register(seller, seller.accountId, { publicKeyPem: pem, name: 'twice' });
    expect(again).toEqual(a);
    expect((await keys.list(seller, seller.accountId)).filter((k) => k.keyId === a.keyId)).toHaveLength(1);
  });

  it('refuses private keys, small RSA keys, other key types and text that is not a key', async () => {
    const ed = ed25519();
    const privatePem = ed.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const both = `${privatePem}${pubPem(ed)}`;
    const smallRsa = generateKeyPairSync('rsa', { modulusLength: 1024 })
      .publicKey.export({ type: 'spki', format: 'pem' })
      .toString();
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' })
      .publicKey.export({ type: 'spki', format: 'pem' })
      .toString();
    const garbage =
      '-----BEGIN PUBLIC KEY-----\nbm90IGEga2V5IGF0IGFsbCwganVzdCBzb21lIHRleHQ=\n-----END PUBLIC KEY-----\n';
    for (const pem of [both, smallRsa, ec, garbage]) {
      const err = await errorOf(keys.register(seller, seller.accountId, { publicKeyPem: pem, name: 'bad' }));
      expect(err.code).toBe(ErrorCode.InvalidKeyPairFormat);
    }
    expect(
      (await errorOf(keys.register(seller, seller.accountId, { publicKeyPem: both, name: 'x' }))).detail,
    ).toMatch(/private key/);
  });

  it("treats another account's keys as missing: a seller neither lists, reads, registers nor revokes them", async () => {
    const view = await keys.register(seller, seller.accountId, {
      publicKeyPem: pubPem(ed25519()),
      name: 'mine',
    });
    expect((await errorOf(keys.list(otherSeller, seller.accountId))).code).toBe(
      ErrorCode.InvalidAccountIDNotFound,
    );
    expect((await errorOf(keys.get(otherSeller, seller.accountId, view.keyId))).code).toBe(
      ErrorCode.InvalidAccountIDNotFound,
    );
    expect((await errorOf(keys.revoke(otherSeller, seller.accountId, view.keyId))).code).toBe(
      ErrorCode.InvalidAccountIDNotFound,
    );
    expect(
      (
        await errorOf(
          keys.register(otherSeller, seller.accountId, { publicKeyPem: pubPem(ed25519()), name: 'x' }),
        )
      ).code,
    ).toBe(ErrorCode.InvalidAccountIDNotFound);
    // Under his own account id, the other seller has no such key.
    expect((await errorOf(keys.get(otherSeller, otherSeller.accountId, view.keyId))).code).toBe(
      ErrorCode.InvalidKeyPairNotFound,
    );
    expect((await errorOf(keys.list(admin, '999999999999'))).code).toBe(ErrorCode.InvalidAccountIDNotFound);
  });

  it('revokes once, keeps the key for the record, and never takes it back', async () => {
    const pem = pubPem(ed25519());
    const view = await keys.register(seller, seller.accountId, { publicKeyPem: pem, name: 'to revoke' });
    const revoked = await keys.revoke(seller, seller.accountId, view.keyId);
    expect(revoked.revokedAt).not.toBeNull();
    expect(await keys.revoke(admin, seller.accountId, view.keyId)).toEqual(revoked);
    expect((await keys.get(seller, seller.accountId, view.keyId)).revokedAt).toBe(revoked.revokedAt);
    const err = await errorOf(keys.register(seller, seller.accountId, { publicKeyPem: pem, name: 'back' }));
    expect(err.code).toBe(ErrorCode.InvalidKeyPairDuplicate);
    expect((await errorOf(keys.revoke(seller, seller.accountId, `sha256:${'0'.repeat(64)}`))).code).toBe(
      ErrorCode.InvalidKeyPairNotFound,
    );
  });

  it('answers services (internal get) a key with its revocation, and only under its own account', async () => {
    const view = await keys.register(seller, seller.accountId, { publicKeyPem: pubPem(ed25519()), name: 'internal' });
    expect(await keys.internalGet(seller.accountId, view.keyId)).toMatchObject({ keyId: view.keyId, revokedAt: null });
    const revoked = await keys.revoke(seller, seller.accountId, view.keyId);
    expect((await keys.internalGet(seller.accountId, view.keyId)).revokedAt).toBe(revoked.revokedAt);
    expect((await errorOf(keys.internalGet(otherSeller.accountId, view.keyId))).code).toBe(ErrorCode.InvalidKeyPairNotFound);
  });

  it('audits registering and revoking, with who, which key and the request', async () => {
    const view = await requestContext.run({ requestId: 'req-sk-register' }, () =>
      keys.register(otherSeller, otherSeller.accountId, { publicKeyPem: pubPem(ed25519()), name: 'audited' }),
    );
    await requestContext.run({ requestId: 'req-sk-revoke' }, () =>
      keys.revoke(admin, otherSeller.accountId, view.keyId),
    );
    const page = await moduleRef
      .get(AuditService)
      .list({
        caller: admin,
        limit: 50,
        resourceType: 'signingkey',
        resourceId: auditResourceId(view.keyId),
      });
    expect(page.items.reverse().map((e) => [e.action, e.actorId, e.requestId, e.details])).toEqual([
      [
        'signingkey.register',
        otherSeller.accountId,
        'req-sk-register',
        { accountId: otherSeller.accountId, keyId: view.keyId, name: 'audited', algorithm: 'Ed25519' },
      ],
      [
        'signingkey.revoke',
        admin.accountId,
        'req-sk-revoke',
        { accountId: otherSeller.accountId, keyId: view.keyId },
      ],
    ]);
  });
});
