import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  EventQueue,
  PATTERN_SENDERS,
  SIGNING_PROCESSES,
  USER_CALLER_ISSUERS,
  allowedSenders,
  hashApiKey,
  type SigningProcess,
} from '@imagemart/contracts';
import { createProcessRedisUser, TestIdentities, waitFor } from '@imagemart/testing';
import { http, Platform, type TestAccount } from '../support/platform.js';
import { ReliabilityRecorder } from './reliability-report.js';

/**
 * The red team inside the platform: someone who can write to Redis (a stolen connection string, a
 * compromised neighbour) puts messages straight onto the services' request streams, with a caller
 * assertion that is missing, signed by a key nobody trusts, expired, replayed, bound to another
 * payload, another pattern or another service, or signed by a real process that may not send the
 * pattern (or may not speak for a person). Every service must refuse every one of them with
 * InvalidCallerAssertion, and nothing may change: the tables that a forged admin would write
 * read back as they were.
 */
const report = new ReliabilityRecorder('red-team');
const ids = TestIdentities.shared();

let platform: Platform;
let redis: Redis;
/** Every command Redis ran while this file's platform was up (MONITOR), as text. */
const monitored: string[] = [];
let monitor: Redis | undefined;
let admin: TestAccount;
let victim: TestAccount;

/** The service a pattern belongs to: its first word. */
const serviceOf = (pattern: string) => pattern.split('.')[0];

/** A plausible payload for a pattern: what a forger would want to send (an admin caller where one fits). */
function payloadFor(pattern: string): Record<string, unknown> {
  const caller = { accountId: admin.id, roles: ['admin', 'seller', 'buyer'] };
  return {
    caller,
    accountId: victim.id,
    name: 'forged',
    keyHash: 'f'.repeat(64),
    prefix: 'imk_forgedxx',
    imageId: 'ami-00000000000000001',
    ...(pattern.endsWith('set-state') ? { caller: undefined, state: 'available', imageSize: 1 } : {}),
  };
}

interface Forgery {
  name: string;
  pattern: string;
  /** The stream it goes to (the pattern's own service, unless the forgery is about the audience). */
  service: string;
  data: unknown;
  /** The assertion to send, from the request id and the data as encoded; undefined: none. */
  assertion: (id: string, dataJson: string) => string | undefined;
}

/** An assertion signed with a key no service trusts, claiming to be `iss`. */
function foreignAssertion(
  iss: SigningProcess,
  service: string,
  pattern: string,
  id: string,
  dataJson: string,
  data: unknown,
): string {
  const honest = ids.signer(iss).assertion({ service, id, pattern, data, dataJson });
  const [version, kid, body] = honest.split('.') as [string, string, string];
  const signed = `${version}.${kid}.${body}`;
  return `${signed}.${createHmac('sha256', randomBytes(32)).update(signed).digest('base64url')}`;
}

function forgeriesOf(pattern: string): Forgery[] {
  const service = serviceOf(pattern);
  const data = payloadFor(pattern);
  const allowed = allowedSenders(pattern);
  const sender = allowed[0] ?? 'operator';
  const notAllowed = SIGNING_PROCESSES.find((p) => !allowed.includes(p))!;
  const honest = (as: SigningProcess, ttlMs?: number) => (id: string, dataJson: string) =>
    ids.signer(as, ttlMs).assertion({ service, id, pattern, data, dataJson });
  const forgeries: Forgery[] = [
    { name: 'no assertion', pattern, service, data, assertion: () => undefined },
    { name: 'garbage', pattern, service, data, assertion: () => 'v1.0000.e30.AAAA' },
    {
      name: 'signed by an untrusted key',
      pattern,
      service,
      data,
      assertion: (id, dataJson) => foreignAssertion(sender, service, pattern, id, dataJson, data),
    },
    {
      name: 'payload swapped after signing',
      pattern,
      service,
      data: { ...data, accountId: admin.id, name: 'swapped' },
      assertion: (id) =>
        ids.signer(sender).assertion({ service, id, pattern, data, dataJson: JSON.stringify(data) }),
    },
    {
      name: 'for another pattern',
      pattern,
      service,
      data,
      assertion: (id, dataJson) =>
        ids.signer(sender).assertion({ service, id, pattern: `${pattern}.other`, data, dataJson }),
    },
    {
      name: 'for another service',
      pattern,
      service,
      data,
      assertion: (id, dataJson) =>
        ids
          .signer(sender)
          .assertion({ service: service === 'catalog' ? 'billing' : 'catalog', id, pattern, data, dataJson }),
    },
    {
      name: 'for another request id',
      pattern,
      service,
      data,
      assertion: (_id, dataJson) =>
        ids.signer(sender).assertion({ service, id: randomUUID(), pattern, data, dataJson }),
    },
    {
      name: `signed by ${notAllowed}, which may not send it`,
      pattern,
      service,
      data,
      assertion: honest(notAllowed),
    },
  ];
  // A process allowed to send the pattern, but not to speak for a person.
  const nonUser = allowed.find((p) => !USER_CALLER_ISSUERS.includes(p));
  if (nonUser && (data as { caller?: unknown }).caller) {
    forgeries.push({
      name: `${nonUser} speaking for a person`,
      pattern,
      service,
      data,
      assertion: honest(nonUser),
    });
  }
  return forgeries;
}

function countBy(names: string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const n of names) counts[n] = (counts[n] ?? 0) + 1;
  return counts;
}

/** Sends one message as a forger would; the reply's error code, or 'accepted'. */
async function send(
  f: Forgery,
  fixedId?: string,
  fixedAssertion?: string,
): Promise<{ outcome: string; id: string; assertion?: string }> {
  const prefix = platform.env['REDIS_PREFIX'];
  const id = fixedId ?? randomUUID();
  const dataJson = JSON.stringify(f.data);
  const assertion = fixedAssertion ?? f.assertion(id, dataJson);
  const replyTo = `${prefix}:rpc:reply:red-team-${randomUUID()}`;
  await redis.xadd(
    `${prefix}:rpc:${f.service}`,
    '*',
    ...[
      'id',
      id,
      'pattern',
      f.pattern,
      'data',
      dataJson,
      'replyTo',
      replyTo,
      'deadline',
      String(Date.now() + 5000),
      'metadata',
      '{}',
    ],
    ...(assertion ? ['assertion', assertion] : []),
  );
  const reply = await redis.blpop(replyTo, 5);
  if (!reply) return { outcome: 'no reply', id, assertion };
  const parsed = JSON.parse(reply[1]) as { err?: { code: string } };
  return { outcome: parsed.err?.code ?? 'accepted', id, assertion };
}

/** What a forged admin would change: accounts, keys, images, launch grants, subscriptions. */
async function protectedState(): Promise<string> {
  const db = new pg.Client({ connectionString: platform.env['DATABASE_URL'] });
  await db.connect();
  try {
    const counts = await db.query<{ t: string; n: string }>(`
      SELECT 'accounts' AS t, count(*)::text AS n FROM permission.account
      UNION ALL SELECT 'keys', count(*)::text FROM permission.api_key
      UNION ALL SELECT 'grants', count(*)::text FROM permission.launch_grant
      UNION ALL SELECT 'images', count(*)::text FROM catalog.image
      UNION ALL SELECT 'available', count(*)::text FROM catalog.image WHERE state = 'available'
      UNION ALL SELECT 'subscriptions', count(*)::text FROM billing.subscription
      UNION ALL SELECT 'signing keys', count(*)::text FROM permission.signing_key`);
    return JSON.stringify(counts.rows);
  } finally {
    await db.end();
  }
}

beforeAll(async () => {
  // Watching from before the first process starts: the bootstrap key must not cross Redis either.
  monitor = await new Redis(process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379').monitor();
  monitor.on('monitor', (_time: string, args: string[]) => monitored.push(args.join(' ')));
  platform = await Platform.start('red-team');
  redis = new Redis(platform.env['REDIS_URL']);
  admin = { id: '', key: platform.adminKey, keyId: '' };
  const me = await http(platform.baseUrl, 'GET', '/v1/me', { key: platform.adminKey });
  admin.id = me.body.id as string;
  victim = await platform.createAccount(['seller', 'buyer'], 'Victim');
}, 90_000);

afterAll(async () => {
  monitor?.disconnect();
  redis?.disconnect();
  await platform?.stop();
});

describe('forged messages on the services’ streams', () => {
  it('are refused by every service for every pattern, and change nothing', async () => {
    const before = await protectedState();
    const tried: { pattern: string; name: string; outcome: string }[] = [];
    for (const pattern of Object.keys(PATTERN_SENDERS)) {
      for (const forgery of forgeriesOf(pattern)) {
        const { outcome } = await send(forgery);
        tried.push({ pattern, name: forgery.name, outcome });
      }
    }
    const accepted = tried.filter((t) => t.outcome !== 'InvalidCallerAssertion');
    report.add(
      { internal_forgeries_tried: tried.length, internal_forgeries_accepted: accepted.length },
      {
        name: 'forgeries_by_kind',
        value: countBy(
          tried.map((t) => t.name.replace(/^signed by \S+, which/, 'signed by a process which')),
        ),
      },
    );
    expect(accepted).toEqual([]);
    expect(tried.length).toBeGreaterThanOrEqual(200);
    expect(await protectedState()).toBe(before);
    expect(platform.logs()).toContain('refused a message whose caller assertion does not hold');
  }, 240_000);

  it('refuses an expired assertion and a replay of an accepted one', async () => {
    const pattern = 'permission.account.list';
    const data = { caller: { accountId: admin.id, roles: ['admin'] }, limit: 10 };
    const fresh: Forgery = {
      name: 'honest',
      pattern,
      service: 'permission',
      data,
      assertion: (id, dataJson) =>
        ids.signer('storefront-api').assertion({ service: 'permission', id, pattern, data, dataJson }),
    };
    // The genuine message is served once...
    const first = await send(fresh);
    expect(first.outcome).toBe('accepted');
    // ... and the very same entry put on the stream again (a replay within its validity) is not.
    const replay = await send(fresh, first.id, first.assertion);
    const expired: Forgery = {
      ...fresh,
      name: 'expired',
      // Signed a minute ago with the gateway's real key, valid for a second.
      assertion: (id, dataJson) =>
        ids.signClaims('storefront-api', {
          aud: 'permission',
          rid: id,
          pat: pattern,
          dataJson,
          sub: admin.id,
          iat: Date.now() - 60_000,
          exp: Date.now() - 59_000,
        }),
    };
    const old = await send(expired);
    report.add({
      internal_forgeries_tried: 2,
      internal_forgeries_accepted: [replay, old].filter((r) => r.outcome !== 'InvalidCallerAssertion').length,
    });
    expect(replay.outcome).toBe('InvalidCallerAssertion');
    expect(old.outcome).toBe('InvalidCallerAssertion');
  });
});

describe('Redis clients without the right credentials', () => {
  it('cannot connect without a password, and with another process’s user cannot touch what that process may not', async () => {
    const prefix = platform.env['REDIS_PREFIX'];
    const url = platform.env['REDIS_URL'];
    const redisAt = { url, prefix };
    const users = {
      billing: await createProcessRedisUser(redisAt, 'billing'),
      catalog: await createProcessRedisUser(redisAt, 'catalog'),
      gateway: await createProcessRedisUser(redisAt, 'storefront-api'),
    };
    const stream = (s: string) => `${prefix}:rpc:${s}`;
    const replyList = `${prefix}:rpc:reply:storefront-api:${randomUUID()}`;
    const forged = ['id', randomUUID(), 'pattern', 'permission.apikey.issue', 'data', '{}', 'metadata', '{}'];
    const attempts: { name: string; run: (r: Redis) => Promise<unknown>; as: string | null }[] = [
      // Billing's credentials: billing never calls permission nor reads the gateway's replies.
      {
        name: "billing's user writes permission's stream",
        as: users.billing.url,
        run: (r) => r.xadd(stream('permission'), '*', ...forged),
      },
      {
        name: "billing's user reads the gateway's replies",
        as: users.billing.url,
        run: (r) => r.lrange(replyList, 0, -1),
      },
      { name: "billing's user lists every key", as: users.billing.url, run: (r) => r.keys(`${prefix}:*`) },
      // The catalog's: it answers the gateway, but may not read or delete its replies, nor read another's requests.
      {
        name: "catalog's user pops the gateway's replies",
        as: users.catalog.url,
        run: (r) => r.lpop(replyList),
      },
      {
        name: "catalog's user deletes the gateway's replies",
        as: users.catalog.url,
        run: (r) => r.del(replyList),
      },
      {
        name: "catalog's user reads permission's stream",
        as: users.catalog.url,
        run: (r) => r.xrange(stream('permission'), '-', '+'),
      },
      // The gateway's: it sends requests, it does not serve them.
      {
        name: "the gateway's user joins catalog's consumer group",
        as: users.gateway.url,
        run: (r) => r.xreadgroup('GROUP', 'catalog', 'x', 'COUNT', 1, 'STREAMS', stream('catalog'), '>'),
      },
      { name: "the gateway's user flushes", as: users.gateway.url, run: (r) => r.flushdb() },
    ];
    let refused = 0;
    const outcomes: string[] = [];
    for (const attempt of attempts) {
      const r = new Redis(attempt.as!, { maxRetriesPerRequest: 0 });
      try {
        await attempt.run(r);
        outcomes.push(`${attempt.name}: ACCEPTED`);
      } catch (err) {
        if (/NOPERM/.test((err as Error).message)) refused++;
        outcomes.push(`${attempt.name}: ${(err as Error).message.slice(0, 40)}`);
      } finally {
        r.disconnect();
      }
    }
    // A wrong password. (A client with no credentials at all is refused where the default user is
    // off, as docker-compose runs Redis: the ACL integration spec starts such a server.)
    const stranger = new Redis(url, { maxRetriesPerRequest: 0 });
    const wrongPassword = await stranger.call('AUTH', users.billing.user, 'not-the-password').then(
      () => 'signed in',
      (err: unknown) => (err as Error).message,
    );
    stranger.disconnect();
    report.add({
      internal_forgeries_tried: attempts.length + 1,
      internal_forgeries_accepted: attempts.length - refused + (wrongPassword === 'signed in' ? 1 : 0),
    });
    expect(outcomes.filter((o) => o.endsWith('ACCEPTED'))).toEqual([]);
    expect(refused).toBe(attempts.length);
    expect(wrongPassword).toMatch(/WRONGPASS/);
  });
});

describe('forged events on the services’ queues', () => {
  it('a "bundle verified" event not signed by the bundler for this queue leaves the image pending, as a dead letter', async () => {
    const seller = await platform.createAccount(['seller'], 'Event victim');
    const image = await http(platform.baseUrl, 'POST', '/v1/images', {
      key: seller.key,
      body: { name: 'pending-image', architecture: 'x86_64' },
    });
    expect(image.status).toBe(201);
    const imageId = image.body.imageId as string;
    const queue = new Queue(EventQueue.catalog, {
      connection: { url: platform.env['REDIS_URL'] },
      prefix: platform.env['REDIS_PREFIX'],
    });
    const type = 'bundling.bundle.verified';
    const payload = {
      imageId,
      manifestLocation: `images/${imageId}/manifest.xml`,
      imageSize: 1024,
      bundledSize: 1100,
      imageDigest: 'a'.repeat(64),
      manifestDigest: 'b'.repeat(64),
      signerKeyId: `sha256:${'c'.repeat(64)}`,
    };
    const job = (id: string) => ({ id, type, payload, occurredAt: new Date().toISOString() });
    const forged: Record<string, unknown>[] = [
      job(randomUUID()),
      // The permission service may write this queue (its launch-permission events), not bundling's events.
      ids.signedEvent('permission', job(randomUUID()), EventQueue.catalog),
      // The bundler's real key, but for another queue.
      ids.signedEvent('bundler-worker', job(randomUUID()), EventQueue.bundling),
      // The bundler's real key for this queue, over another image.
      {
        ...ids.signedEvent(
          'bundler-worker',
          { ...job(randomUUID()), payload: { ...payload, imageId: 'ami-00000000000000009' } },
          EventQueue.catalog,
        ),
        payload,
      },
    ];
    try {
      for (const data of forged) await queue.add(type, data, { jobId: data['id'] as string });
      await waitFor(async () => ((await queue.getFailedCount()) >= forged.length ? true : undefined), {
        timeoutMs: 20_000,
        what: 'the forged events to be refused',
      });
      const states = await Promise.all(forged.map((f) => queue.getJobState(f['id'] as string)));
      const read = await http(platform.baseUrl, 'GET', `/v1/images/${imageId}`, { key: seller.key });
      report.add({
        internal_forgeries_tried: forged.length,
        internal_forgeries_accepted:
          states.filter((st) => st !== 'failed').length + (read.body.state === 'pending' ? 0 : 1),
      });
      expect(states).toEqual(forged.map(() => 'failed'));
      expect(read.body.state).toBe('pending');
      expect(platform.logs()).toContain('refused an event whose assertion does not hold');
    } finally {
      await queue.close();
    }
  }, 60_000);
});

describe('secrets on Redis', () => {
  it('a whole journey puts no API key on Redis: keys are made at the gateway and travel as hashes', async () => {
    const base = platform.baseUrl;
    const seller = await platform.createAccount(['seller'], 'Seller');
    const buyer = await platform.createAccount(['buyer'], 'Buyer');
    const image = await http(base, 'POST', '/v1/images', {
      key: seller.key,
      body: { name: 'journey-image', architecture: 'x86_64' },
    });
    expect(image.status).toBe(201);
    const imageId = image.body.imageId as string;
    await platform.rpc('catalog', 'catalog.image.set-state', {
      imageId,
      state: 'available',
      imageSize: 1 << 20,
    });
    const shared = await http(base, 'PATCH', `/v1/images/${imageId}/launch-permission`, {
      key: seller.key,
      body: { add: [{ userId: buyer.id }] },
    });
    expect(shared.status, JSON.stringify(shared.body)).toBeLessThan(300);
    expect((await http(base, 'GET', '/v1/images', { key: buyer.key })).status).toBe(200);
    const launch = await http(base, 'POST', '/v1/instances', {
      key: buyer.key,
      body: { imageId, instanceType: 't3.micro' },
    });
    expect(launch.status, JSON.stringify(launch.body)).toBe(201);
    const spare = await http(base, 'POST', `/v1/accounts/${buyer.id}/keys`, {
      key: buyer.key,
      body: { name: 'spare' },
    });
    expect(spare.status).toBe(201);
    const spareKey = spare.body.key as string;
    expect((await http(base, 'GET', '/v1/me', { key: spareKey })).status).toBe(200);
    expect(
      (
        await http(base, 'DELETE', `/v1/accounts/${buyer.id}/keys/${spare.body.id as string}`, {
          key: buyer.key,
        })
      ).status,
    ).toBeLessThan(300);
    expect((await http(base, 'GET', '/v1/me', { key: spareKey })).status).toBe(401);
    await new Promise((r) => setTimeout(r, 500)); // the last commands reach the monitor

    const secrets = [platform.adminKey, seller.key, buyer.key, spareKey];
    // The secret part of each key (after `imk_`), in case something re-encoded the prefix.
    const seen = secrets.flatMap((key) =>
      monitored
        .filter((line) => line.includes(key.slice(4)))
        .map((line) => `${key.slice(0, 12)}…: ${line.slice(0, 120)}`),
    );
    report.add(
      { secrets_seen_on_redis: seen.length },
      { name: 'redis_commands_watched', value: monitored.length },
    );
    expect(seen).toEqual([]);
    // The monitor did see the journey: the keys' hashes went to the permission service.
    expect(monitored.some((line) => line.includes(hashApiKey(buyer.key)))).toBe(true);
    expect(monitored.length).toBeGreaterThan(100);
  }, 120_000);
});
