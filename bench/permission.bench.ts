/**
 * The launch decision under load: 10,000 accounts, 10,000 images (the permission service's
 * projection) and 120,000 launch permissions seeded straight into a scratch database; the built
 * permission service in a child process; `permission.launch.decide` asked through the Redis
 * Streams transport from a RedisStreamsClient, as the gateway asks, with CONCURRENCY calls in
 * flight for DURATION_S seconds. Before that, one decision per image fills the service's cache as a
 * replica's would be after a while in service; those are reported apart as the cold numbers.
 *
 * The workload mixes what a launch flow sends: accounts named in a launch permission (allowed),
 * owners, and random accounts (mostly denied; allowed on public images). One image in ten is paid;
 * those are private and every account named on one holds a subscription in the projection, so no
 * decision needs billing (no billing replica runs here). Every image is available: a decision on
 * a pending image asks the catalog (which does not run here) whether it has just become available.
 *
 * Needs the build (`npm run build`; run here when dist/ is missing). Standalone:
 * `node --import tsx bench/permission.bench.ts` from the repository root.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { PermissionPattern, type LaunchDecision } from '@imagemart/contracts';
import { createRpcClient, sendRpc } from '@imagemart/messaging';
import { createTestDatabase, createTestRedisPrefix, TestIdentities, waitFor } from '@imagemart/testing';
import { runIfMain, stopChild } from './support/process.js';

const ACCOUNTS = 10_000;
const IMAGES = 10_000;
const GRANTS_PER_IMAGE = 12;
const CONCURRENCY = Number(process.env['BENCH_PERMISSION_CONCURRENCY'] ?? 8);
const WARMUP_S = 5;
const DURATION_S = 20;

const repoRoot = fileURLToPath(new URL('../', import.meta.url));
const mainJs = `${repoRoot}dist/apps/permission/src/main.js`;

const accountId = (n: number) => String(n).padStart(12, '0');
const imageId = (n: number) => `ami-${n.toString(16).padStart(17, '0')}`;

export async function run(): Promise<Record<string, number | string>> {
  if (!existsSync(mainJs)) execFileSync('npm', ['run', 'build', '--silent'], { cwd: repoRoot, stdio: 'inherit' });
  const db = await createTestDatabase('bench-permission');
  const keys = createTestRedisPrefix('bench-permission');
  let service: ChildProcess | undefined;
  const client = createRpcClient('permission', {
    connection: keys.url,
    prefix: keys.prefix,
    timeoutMs: 10_000,
    signer: TestIdentities.shared().asAllowedSender(),
  });
  try {
    const permissions = await seed(db.prisma);
    const grants = await db.prisma.$queryRaw<{ image_id: string; account_id: string }[]>`
      SELECT image_id, account_id FROM "permission"."launch_grant" ORDER BY random() LIMIT 50000`;
    const owners = await db.prisma.$queryRaw<{ id: string; owner_id: string }[]>`SELECT id, owner_id FROM "permission"."image"`;

    service = spawn(process.execPath, [mainJs], {
      cwd: repoRoot,
      env: { PATH: process.env['PATH'] ?? '', DATABASE_URL: db.url, REDIS_URL: keys.url, REDIS_PREFIX: keys.prefix, LOG_LEVEL: 'warn', ...TestIdentities.shared().env('permission') },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    await client.connect();
    const decide = (account: string, image: string) =>
      sendRpc<LaunchDecision>(client, PermissionPattern.launchDecide, { accountId: account, imageId: image });
    await waitFor(() => decide(accountId(1), imageId(1)).then(() => true), { timeoutMs: 30_000, intervalMs: 200, what: 'the permission service' });

    const random = (n: number) => Math.floor(Math.random() * n);
    const nextPair = (): [string, string] => {
      const roll = Math.random();
      if (roll < 0.5) {
        const g = grants[random(grants.length)];
        return [g.account_id, g.image_id];
      }
      if (roll < 0.6) {
        const o = owners[random(owners.length)];
        return [o.owner_id, o.id];
      }
      return [accountId(1 + random(ACCOUNTS)), imageId(1 + random(IMAGES))];
    };

    // A replica that has been serving for a while: every image asked about once (timed apart as the
    // cold numbers), then the mix for a few seconds, then the measured run.
    let nextImage = 0;
    const cold = await load(600, () => (nextImage < owners.length ? [accountId(1 + random(ACCOUNTS)), owners[nextImage++].id] : undefined), decide);
    await load(WARMUP_S, nextPair, decide);
    const { latencies, reasons, seconds } = await load(DURATION_S, nextPair, decide);
    const allowed = ['owner', 'public', 'launch-permission', 'subscription'].reduce((n, r) => n + (reasons[r] ?? 0), 0);
    return {
      permissions,
      decisions_per_s: Math.round(latencies.length / seconds),
      decision_p50_ms: round(percentile(latencies, 50)),
      decision_p99_ms: round(percentile(latencies, 99)),
      decision_max_ms: round(percentile(latencies, 100)),
      cold_decisions_per_s: Math.round(cold.latencies.length / cold.seconds),
      cold_decision_p50_ms: round(percentile(cold.latencies, 50)),
      cold_decision_p99_ms: round(percentile(cold.latencies, 99)),
      decisions: latencies.length,
      allowed_share: round(allowed / latencies.length),
      reasons: JSON.stringify(reasons),
      accounts: ACCOUNTS,
      images: IMAGES,
      concurrency: CONCURRENCY,
      duration_s: DURATION_S,
      warmup_s: WARMUP_S,
    };
  } finally {
    await client.close();
    if (service) await stopChild(service);
    await db.drop();
    await keys.cleanup();
  }
}

type Prisma = Awaited<ReturnType<typeof createTestDatabase>>['prisma'];

/** Seeds accounts, the image projection, launch settings, grants and subscriptions; returns the number of grants. */
async function seed(prisma: Prisma): Promise<number> {
  await prisma.$executeRaw`
    INSERT INTO "permission"."account" (id, name, email, roles, status, created_at, updated_at)
    SELECT lpad(g::text, 12, '0'), 'Bench ' || g, 'bench' || g || '@example.test',
           ARRAY['buyer']::"permission"."Role"[], 'active', now(), now()
      FROM generate_series(1, ${ACCOUNTS}::int) g`;
  // One image in ten is paid (and private), one in five of the others public.
  await prisma.$executeRaw`
    INSERT INTO "permission"."image" (id, owner_id, state, product_codes, revision, created_at, updated_at)
    SELECT 'ami-' || lpad(to_hex(g), 17, '0'), lpad((((g * 7919) % ${ACCOUNTS}::int) + 1)::text, 12, '0'),
           'available',
           CASE WHEN g % 10 = 0 THEN ARRAY['prod-' || lpad(g::text, 20, '0')]::varchar[] ELSE '{}'::varchar[] END,
           1, now(), now()
      FROM generate_series(1, ${IMAGES}::int) g`;
  await prisma.$executeRaw`
    INSERT INTO "permission"."launch_setting" (id, is_public, revision, created_at, updated_at)
    SELECT 'ami-' || lpad(to_hex(g), 17, '0'), g % 10 <> 0 AND g % 5 = 1, 1, now(), now()
      FROM generate_series(1, ${IMAGES}::int) g`;
  await prisma.$executeRaw`
    INSERT INTO "permission"."launch_grant" (id, image_id, account_id, share_state, created_at, updated_at)
    SELECT gen_random_uuid(), 'ami-' || lpad(to_hex(i), 17, '0'),
           lpad((((i * 31 + k * 977) % ${ACCOUNTS}::int) + 1)::text, 12, '0'),
           (ARRAY['pending', 'accepted', 'rejected'])[1 + (i + k) % 3]::"permission"."PermissionShareState", now(), now()
      FROM generate_series(1, ${IMAGES}::int) i, generate_series(1, ${GRANTS_PER_IMAGE}::int) k
    ON CONFLICT DO NOTHING`;
  await prisma.$executeRaw`
    INSERT INTO "permission"."subscription" (id, account_id, product_code, status, entitled, revision, created_at, updated_at)
    SELECT DISTINCT 'sub-' || md5(g.account_id || i.product_codes[1]), g.account_id, i.product_codes[1], 'active', true, 1, now(), now()
      FROM "permission"."launch_grant" g JOIN "permission"."image" i ON i.id = g.image_id
     WHERE cardinality(i.product_codes) > 0`;
  await prisma.$executeRaw`ANALYZE "permission"."launch_grant"`;
  return prisma.permissionLaunchGrant.count();
}

/** Keeps CONCURRENCY calls in flight for `seconds` or until `nextPair` has no more; latencies in ms and a count per reason. */
async function load(
  seconds: number,
  nextPair: () => [string, string] | undefined,
  decide: (account: string, image: string) => Promise<LaunchDecision>,
): Promise<{ latencies: number[]; reasons: Record<string, number>; seconds: number }> {
  const latencies: number[] = [];
  const reasons: Record<string, number> = {};
  const started = performance.now();
  const until = started + seconds * 1000;
  const worker = async () => {
    while (performance.now() < until) {
      const pair = nextPair();
      if (!pair) return;
      const [account, image] = pair;
      const t = performance.now();
      const decision = await decide(account, image);
      latencies.push(performance.now() - t);
      reasons[decision.reason] = (reasons[decision.reason] ?? 0) + 1;
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return { latencies, reasons, seconds: (performance.now() - started) / 1000 };
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)] ?? 0;
}

const round = (n: number) => Math.round(n * 1000) / 1000;


runIfMain(import.meta.url, run);
