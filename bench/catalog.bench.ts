/**
 * The catalog's browse and search pages under load: 100,000 images over 1,000 sellers (each with
 * a listing) from a product/OS/feature vocabulary, 50 buyers with API keys and shares. A mix of
 * list pages (see `requestPool`) goes through storefront-api, the permission service (each key)
 * and the catalog (the built processes), at a fixed 500 requests/s (an open loop: a request every
 * 2 ms, timed from when it was due) and then at saturation with autocannon, while a seller changes an image every second; then the same without the list
 * cache; beside it a bare Fastify route serving a page from memory, as the ceiling. Every answer
 * is checked: 200 with at least one item.
 *
 * Standalone: `node --import tsx bench/catalog.bench.ts` from the repository root (builds first;
 * `BENCH_NO_BUILD=1` runs the processes already built, from `BENCH_DIST`, default dist/).
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import Fastify from 'fastify';
import pg from 'pg';
import { createHash } from 'node:crypto';
import { CatalogPattern, PermissionPattern, hashApiKey, type SigningProcess } from '@imagemart/contracts';
import { createRpcClient, sendRpc } from '@imagemart/messaging';
import { createTestDatabase, createTestRedisPrefix, TestIdentities, waitFor } from '@imagemart/testing';
import { openLoop, type OpenLoopResult } from './support/open-loop.js';
import { childNodeArgs, runIfMain, stopChild } from './support/process.js';

const IMAGES = 100_000;
const ACCOUNTS = 1_000;
const FIXED_RATE = 500;
const DURATION_S = 15;
const CONNECTIONS = 50;
/** Signed-in buyers the load is spread over, each with an API key. */
const BUYERS = 50;
/** Shares of the mix (see `requestPool`). */
const SIGNED_IN_SHARE = 0.8;
/** A seller changes one of his public images' description this often during the run (each moves the list generations it can alter). */
const WRITE_INTERVAL_MS = 1000;
/** Requests a minute the gateway lets one address or key make during the run (its highest setting). */
const RATE_LIMIT = 10_000_000;
/** How long the processes may take to answer a first list (longer on a machine busy with other work). */
const STARTUP_TIMEOUT_MS = 180_000;
/** Sequential calls per layer when the time is broken down. */
const SAMPLES = 300;

const root = fileURLToPath(new URL('../', import.meta.url));

const buyerId = (b: number) => String(200000000000 + b);
const buyerKey = (b: number) => `imk_bench-buyer-${String(b).padStart(4, '0')}-${'x'.repeat(24)}`;
const SELLER_ID = '100000000001';
const SELLER_KEY = `imk_bench-seller-0001-${'y'.repeat(24)}`;

/** One request of the mix: a list page URL and who asks for it. */
interface PoolEntry {
  path: string;
  key: string | null;
  kind: string;
}

export async function run(): Promise<Record<string, unknown>> {
  if (process.env['BENCH_NO_BUILD'] !== '1') execFileSync('npm', ['run', 'build', '--silent'], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
  const db = await createTestDatabase('bench_catalog');
  const redis = createTestRedisPrefix('bench-catalog');
  const running = new Map<string, ChildProcess>();
  try {
    const seedSeconds = await seed(db.url);
    await seedAccounts(db.url);
    const port = await freePort();
    const env = {
      PATH: process.env['PATH'] ?? '',
      DATABASE_URL: db.url,
      REDIS_URL: redis.url,
      REDIS_PREFIX: redis.prefix,
      PORT: String(port),
      LOG_LEVEL: 'warn',
      RPC_TIMEOUT_MS: '5000',
      // The gateway's rate limits stay on (their Redis work is part of every request) but out of
      // reach: the whole load comes from one address and 50 keys.
      RATE_LIMIT_PER_ADDRESS_PER_MINUTE: String(RATE_LIMIT),
      RATE_LIMIT_PER_KEY_PER_MINUTE: String(RATE_LIMIT),
    };
    const start = (name: string, extra: Record<string, string> = {}) =>
      running.set(name, spawn(process.execPath, [...childNodeArgs(), `${process.env['BENCH_DIST'] ?? 'dist'}/apps/${name}/src/main.js`], { cwd: root, env: { ...env, ...TestIdentities.shared().env(name as SigningProcess), ...extra }, stdio: ['ignore', 'ignore', 'inherit'] }));
    for (const name of ['permission', 'catalog', 'storefront-api']) start(name);
    const base = `http://127.0.0.1:${port}`;
    const pool = requestPool();
    const get = async (e: PoolEntry) => fetch(base + e.path, e.key ? { headers: { authorization: `Bearer ${e.key}` } } : {});
    await waitFor(async () => ((await get(pool[0]).catch(() => undefined))?.status === 200 ? true : undefined), {
      timeoutMs: STARTUP_TIMEOUT_MS,
      intervalMs: 250,
      what: 'storefront-api',
    });
    // Every request of the pool answers 200 with items before the load starts.
    let bytes = 0;
    for (const e of pool) {
      const res = await get(e);
      const text = await res.text();
      const items = res.status === 200 ? (JSON.parse(text) as { items: unknown[] }).items.length : 0;
      if (items === 0) throw new Error(`${e.path} (${e.kind}) answered ${res.status} with no items: the mix must only hold non-empty pages`);
      bytes += Buffer.byteLength(text);
    }
    const sample = await (await get(pool[0])).text();

    const writer = startWriter(base);
    const checks = { bad: 0 };
    await load(base, pool, checks, { duration: 3 }); // warm-up: connections, plans, JIT
    const fixed = await fixedRate(base, pool, checks, FIXED_RATE);
    const saturated = await load(base, pool, checks, {});
    const layers = await breakdown(base, env, pool);
    writer.stop();
    const writes = await writer.done;

    // The same at the fixed rate without the list cache: every page from SQL.
    await stopChild(running.get('catalog')!);
    start('catalog', { CATALOG_LIST_CACHE_TTL_MS: '0' });
    await waitFor(async () => ((await get(pool[0]).catch(() => undefined))?.status === 200 ? true : undefined), {
      timeoutMs: STARTUP_TIMEOUT_MS,
      intervalMs: 250,
      what: 'catalog without cache',
    });
    const uncachedChecks = { bad: 0 };
    await load(base, pool, uncachedChecks, { duration: 3 });
    const uncached = await fixedRate(base, pool, uncachedChecks, FIXED_RATE);
    const uncachedSaturated = await load(base, pool, uncachedChecks, {});
    const uncachedLayers = await breakdown(base, env, pool, ['catalog_rpc_list_ms']);

    const baseline = Fastify({ logger: false });
    baseline.get('/v1/images', (_req, reply) => reply.header('content-type', 'application/json').send(sample));
    await baseline.listen({ port: 0, host: '127.0.0.1' });
    const address = baseline.server.address();
    const baselinePort = typeof address === 'object' && address ? address.port : 0;
    const bare = await autocannon({ url: `http://127.0.0.1:${baselinePort}/v1/images`, connections: CONNECTIONS, duration: DURATION_S });
    await baseline.close();

    const kinds = new Map<string, number>();
    for (const e of pool) kinds.set(e.kind, (kinds.get(e.kind) ?? 0) + 1);
    return {
      images: IMAGES,
      accounts: ACCOUNTS,
      buyers: BUYERS,
      mix: {
        distinct_requests: pool.length,
        signed_in_share: Math.round((pool.filter((e) => e.key).length / pool.length) * 100) / 100,
        kinds: Object.fromEntries(kinds),
        examples: pool.slice(0, 6).map((e) => `${e.key ? 'buyer' : 'anonymous'} GET ${e.path}`),
        mean_page_bytes: Math.round(bytes / pool.length),
        picked: 'uniformly at random per request',
        background_writes: `one public image's description changed every ${WRITE_INTERVAL_MS} ms (each moves the browse generation and those of the words its search document held or holds)`,
      },
      seed_s: Math.round(seedSeconds * 10) / 10,
      fixed_rate: FIXED_RATE,
      p50_ms: fixed.p50_ms,
      p99_ms: fixed.p99_ms,
      fixed_rps: fixed.rps,
      fixed_errors: fixed.errors,
      rps: Math.round(saturated.requests.average),
      p50_ms_saturated: saturated.latency.p50,
      p99_ms_saturated: saturated.latency.p99,
      saturated_errors: saturated.errors + saturated.non2xx,
      empty_or_bad_answers: checks.bad,
      writes_during_load: writes.writes,
      writes_failed: writes.failed,
      baseline_rps: Math.round(bare.requests.average),
      ratio: Math.round((saturated.requests.average / bare.requests.average) * 1000) / 1000,
      without_list_cache: {
        p50_ms: uncached.p50_ms,
        p99_ms: uncached.p99_ms,
        fixed_rps: uncached.rps,
        rps: Math.round(uncachedSaturated.requests.average),
        p99_ms_saturated: uncachedSaturated.latency.p99,
        errors: uncached.errors + uncachedSaturated.errors + uncachedSaturated.non2xx,
        empty_or_bad_answers: uncachedChecks.bad,
      },
      time_per_layer_ms: { ...layers, uncached: uncachedLayers },
      rate_limits_per_minute: RATE_LIMIT,
      connections: CONNECTIONS,
      duration_s: DURATION_S,
    };
  } finally {
    await Promise.all([...running.values()].map(stopChild));
    await db.drop();
    await redis.cleanup();
  }
}

/**
 * The mix: what a storefront's search box and browse pages ask. Texts are product names, image
 * features, a product with an OS, and a few broad words (an OS family); with and without
 * filters (architecture, pricing type, the product's category), in relevance, newest and
 * popularity order, and plain browsing without text; 80 % signed in (one of 50 buyers, each
 * with his own visibility: his accepted shares), 20 % anonymous.
 */
export function requestPool(): PoolEntry[] {
  const pool: PoolEntry[] = [];
  const products = PRODUCTS.filter((_, i) => i % 3 === 0); // 27 products
  const features = ['cuda', 'tls termination', 'pgvector', 'cis benchmark', 'wireguard tunnel', 'opentelemetry', 'fail2ban', 'saml'];
  const withOs = ['nginx ubuntu', 'postgresql debian', 'redis rocky', 'jenkins windows', 'kafka amazon linux', 'grafana alpine'];
  const broad = ['ubuntu', 'windows server', 'hardened'];
  let n = 0;
  const caller = () => {
    n++;
    return (n * 37) % 100 < SIGNED_IN_SHARE * 100 ? buyerKey((n * 13) % BUYERS) : null;
  };
  const add = (kind: string, params: Record<string, string>) => {
    pool.push({ kind, path: `/v1/images?${new URLSearchParams(params).toString()}`, key: caller() });
  };
  products.forEach((p, i) => {
    const category = CATEGORY_OF_PRODUCT(PRODUCTS.indexOf(p));
    add('product', { q: p, limit: '25' });
    add('product+filters', { q: p, architecture: i % 2 ? 'arm64' : 'x86_64', 'pricing-type': i % 3 ? 'free' : 'paid', sort: 'relevance', limit: '25' });
    add('product+category', { q: p, category, sort: i % 2 ? 'newest' : 'popularity', limit: '25' });
  });
  features.forEach((f, i) => {
    add('feature', { q: f, limit: '25' });
    add('feature+filters', { q: f, architecture: 'x86_64', sort: i % 2 ? 'relevance' : 'newest', limit: '25' });
  });
  withOs.forEach((q) => {
    add('product+os', { q, limit: '25' });
    add('product+os', { q, 'pricing-type': 'free', limit: '25' });
  });
  broad.forEach((q) => add('broad', { q, limit: '25' }));
  for (const sort of ['newest', 'popularity', 'name']) {
    add('browse', { sort, limit: '25' });
    add('browse+filters', { sort, architecture: 'arm64', 'pricing-type': 'paid', limit: '25' });
  }
  ['databases', 'security', 'machine-learning', 'web-servers'].forEach((category) => add('browse+category', { category, limit: '25' }));
  return pool;
}

/**
 * The fixed-rate run (an open loop, see bench/support/open-loop.ts) over the pool, each request
 * picked at random and checked as in {@link load}; up to 256 connections.
 */
async function fixedRate(base: string, pool: PoolEntry[], checks: { bad: number }, rate: number): Promise<OpenLoopResult> {
  const result = await openLoop({
    base,
    rate,
    durationS: DURATION_S,
    connections: 256,
    next: () => {
      const e = pool[Math.floor(Math.random() * pool.length)];
      const headers: Record<string, string> = e.key ? { authorization: `Bearer ${e.key}` } : {};
      return { method: 'GET', path: e.path, headers };
    },
    check: (status, body) => status === 200 && body.includes('"items":[{'),
  });
  checks.bad += result.errors;
  return result;
}

/** Load from the pool, each request picked at random, each answer checked (200 with items). */
function load(base: string, pool: PoolEntry[], checks: { bad: number }, options: { overallRate?: number; duration?: number }): Promise<autocannon.Result> {
  const requests = [
    {
      method: 'GET',
      setupRequest: (req: Record<string, unknown>) => {
        const e = pool[Math.floor(Math.random() * pool.length)];
        return { ...req, path: e.path, headers: e.key ? { authorization: `Bearer ${e.key}` } : {} };
      },
      onResponse: (status: number, body: string) => {
        if (status !== 200 || !body.includes('"items":[{')) checks.bad++;
      },
    },
  ];
  const opts = {
    url: base,
    connections: CONNECTIONS,
    duration: options.duration ?? DURATION_S,
    requests,
    ...(options.overallRate ? { overallRate: options.overallRate } : {}),
  };
  return autocannon(opts);
}

/**
 * Where a request's time goes, one call at a time (no queueing): the whole HTTP request signed
 * in and anonymous, the gateway's authentication RPC alone, and the catalog's list RPC alone
 * (its SQL, view building and JSON included). Means in milliseconds.
 */
async function breakdown(base: string, env: Record<string, string>, pool: PoolEntry[], only?: string[]): Promise<Record<string, number>> {
  const opts = {
    connection: env['REDIS_URL'],
    prefix: env['REDIS_PREFIX'],
    timeoutMs: 5000,
    signer: TestIdentities.shared().asAllowedSender(),
  };
  const permission = createRpcClient('permission', opts);
  const catalog = createRpcClient('catalog', opts);
  await Promise.all([permission.connect(), catalog.connect()]);
  const mean = async (f: (i: number) => Promise<unknown>) => {
    const started = performance.now();
    for (let i = 0; i < SAMPLES; i++) await f(i);
    return Math.round(((performance.now() - started) / SAMPLES) * 100) / 100;
  };
  const listRequest = (e: PoolEntry) => {
    const params = new URL(base + e.path).searchParams;
    return {
      caller: e.key ? { accountId: buyerId(Number(/buyer-(\d+)/.exec(e.key)![1])), roles: ['buyer'] } : null,
      filters: {
        ...(params.get('architecture') ? { architecture: [params.get('architecture')] } : {}),
        ...(params.get('pricing-type') ? { pricingType: params.get('pricing-type') } : {}),
        ...(params.get('category') ? { category: [params.get('category')] } : {}),
      },
      ...(params.get('q') ? { q: params.get('q') } : {}),
      ...(params.get('sort') ? { sort: params.get('sort') } : {}),
      limit: Number(params.get('limit') ?? 25),
    };
  };
  const out: Record<string, number> = {};
  try {
    const want = (name: string) => !only || only.includes(name);
    if (want('http_signed_in_ms')) out['http_signed_in_ms'] = await mean(async (i) => (await fetch(base + pool[i % pool.length].path, { headers: { authorization: `Bearer ${buyerKey(i % BUYERS)}` } })).text());
    if (want('http_anonymous_ms')) out['http_anonymous_ms'] = await mean(async (i) => (await fetch(base + pool[i % pool.length].path)).text());
    if (want('permission_rpc_authenticate_ms')) out['permission_rpc_authenticate_ms'] = await mean((i) => sendRpc(permission, PermissionPattern.apiKeyAuthenticate, { keyHash: hashApiKey(buyerKey(i % BUYERS)) }));
    if (want('catalog_rpc_list_ms')) out['catalog_rpc_list_ms'] = await mean((i) => sendRpc(catalog, CatalogPattern.imageList, listRequest(pool[i % pool.length])));
  } finally {
    await Promise.all([permission.close(), catalog.close()]);
  }
  return out;
}

/**
 * A seller changing his images' descriptions through the API while the load runs. A change that
 * does not answer 200 (a timeout on a machine busy with other work) is counted, not fatal.
 */
function startWriter(base: string): { stop(): void; done: Promise<{ writes: number; failed: number }> } {
  let stopped = false;
  let writes = 0;
  let failed = 0;
  const done = (async () => {
    for (let n = 0; !stopped; n++) {
      const imageId = `ami-${(ACCOUNTS * (n % 100) + 1).toString(16).padStart(17, '0')}`;
      const res = await fetch(`${base}/v1/images/${imageId}`, {
        method: 'PATCH',
        headers: { authorization: `Bearer ${SELLER_KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify({ description: `Revised build ${n}` }),
      });
      await res.arrayBuffer();
      if (res.status === 200) writes++;
      else failed++;
      await new Promise((r) => setTimeout(r, WRITE_INTERVAL_MS));
    }
    return { writes, failed };
  })();
  return { stop: () => (stopped = true), done };
}

/** The buyers and one seller in the permission service's tables, each with a known API key. */
export async function seedAccounts(databaseUrl: string): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  const sha = (key: string) => createHash('sha256').update(key, 'utf8').digest('hex');
  try {
    const accounts = [
      ...Array.from({ length: BUYERS }, (_, b) => ({ id: buyerId(b), key: buyerKey(b), role: 'buyer' })),
      { id: SELLER_ID, key: SELLER_KEY, role: 'seller' },
    ];
    for (const a of accounts) {
      await client.query(
        `INSERT INTO permission.account (id, name, email, roles, status, updated_at) VALUES ($1, $2, $3, ARRAY[$4]::permission."Role"[], 'active', now())`,
        [a.id, `Bench ${a.role} ${a.id}`, `${a.id}@bench.example`, a.role],
      );
      await client.query(
        `INSERT INTO permission.api_key (id, account_id, name, prefix, hash, updated_at) VALUES ($1, $2, 'bench', $3, $4, now())`,
        [`key-${a.id.slice(-12).padStart(16, '0')}`, a.id, a.key.slice(0, 12), sha(a.key)],
      );
    }
  } finally {
    await client.end();
  }
}

/**
 * The seeded vocabulary. A listing sells one product on one family of operating systems; its
 * images are builds of it (versions, OS releases, architectures), each with one extra feature.
 * So a product name matches about 1.25 % of images (1,000 listings over 80 products), an image
 * feature about 0.7 %, a listing highlight about 2 %, an OS family 6–20 %: the shares such words
 * have in a real marketplace.
 */
export const PRODUCTS = [
  'nginx', 'apache', 'haproxy', 'traefik', 'caddy', 'envoy', 'varnish', 'squid', 'tomcat', 'jetty',
  'postgresql', 'mysql', 'mariadb', 'mongodb', 'cassandra', 'couchdb', 'redis', 'memcached', 'elasticsearch', 'opensearch',
  'kafka', 'rabbitmq', 'activemq', 'nats', 'pulsar', 'zookeeper', 'etcd', 'consul', 'vault', 'keycloak',
  'jenkins', 'gitlab', 'gitea', 'sonarqube', 'nexus', 'artifactory', 'teamcity', 'drone', 'harbor', 'rancher',
  'kubernetes', 'docker', 'podman', 'nomad', 'openshift', 'prometheus', 'grafana', 'zabbix', 'nagios', 'graylog',
  'wordpress', 'drupal', 'joomla', 'magento', 'ghost', 'odoo', 'nextcloud', 'mattermost', 'rocketchat', 'jitsi',
  'jupyter', 'tensorflow', 'pytorch', 'spark', 'hadoop', 'airflow', 'superset', 'metabase', 'clickhouse', 'druid',
  'openvpn', 'wireguard', 'pfsense', 'suricata', 'snort', 'wazuh', 'splunk', 'asterisk', 'minio', 'ceph',
];
const OS = [
  'Ubuntu 20.04', 'Ubuntu 22.04', 'Ubuntu 24.04', 'Debian 11', 'Debian 12', 'Rocky Linux 9', 'AlmaLinux 9', 'CentOS Stream 9',
  'Amazon Linux 2023', 'Fedora 40', 'openSUSE Leap 15', 'Alpine 3.20', 'FreeBSD 14', 'Oracle Linux 9', 'Windows Server 2022', 'Windows Server 2019',
];
const EDITIONS = ['Community', 'Enterprise', 'Hardened', 'Certified', 'Cluster', 'Starter', 'Professional', 'Developer'];
/** One per image. */
const FEATURES = [
  'CUDA drivers', 'ROCm drivers', 'TLS termination', 'Lets Encrypt certificates', 'CIS benchmark hardening', 'STIG hardening', 'FIPS mode',
  'SELinux enforcing', 'AppArmor profiles', 'auditd rules', 'fail2ban', 'ModSecurity firewall', 'Brotli compression', 'HTTP3 QUIC',
  'IPv6 dual stack', 'ARM Graviton tuning', 'NVMe tuning', 'huge pages', 'kernel live patching', 'cloud-init', 'SSM agent',
  'CloudWatch agent', 'Datadog agent', 'New Relic agent', 'OpenTelemetry collector', 'Fluent Bit', 'Filebeat', 'Telegraf',
  'node exporter', 'Ansible', 'Terraform', 'Packer', 'Helm', 'kubectl', 'Python 3.12', 'Node.js 20', 'OpenJDK 21', 'Go 1.22',
  'Rust toolchain', 'PHP 8.3', 'Ruby 3.3', 'dotnet 8', 'Perl', 'Lua', 'Erlang', 'Elixir', 'R language', 'Julia', 'Conda',
  'pgBouncer', 'pgvector', 'PostGIS', 'TimescaleDB', 'Patroni failover', 'point-in-time recovery', 'WAL archiving', 'logical replication',
  'Sentinel failover', 'snapshot backups', 'Restic backups', 'Borg backups', 'rsync mirrors', 'LDAP login', 'SAML single sign-on',
  'OAuth2 proxy', 'Kerberos', 'two-factor login', 'YubiKey support', 'WireGuard tunnel', 'IPsec tunnel', 'BGP routing',
  'keepalived', 'Pacemaker', 'DRBD', 'GlusterFS', 'ZFS', 'Btrfs snapshots', 'LVM thin pools', 'XFS quotas', 'EFS mount',
  'S3 gateway', 'Samba shares', 'NFS exports', 'iSCSI target', 'Postfix mail', 'Dovecot', 'SpamAssassin', 'ClamAV scanning',
  'Redis cache', 'Memcached cache', 'Varnish cache', 'CDN origin shield', 'rate limiting', 'JWT validation', 'GeoIP blocking',
  'WAF rules', 'bot detection', 'DDoS protection', 'log rotation', 'NTP chrony', 'systemd hardening', 'minimal packages',
  'GUI desktop', 'XFCE desktop', 'GNOME desktop', 'VNC access', 'RDP access', 'Jupyter kernels', 'MLflow', 'Kubeflow', 'Ray cluster',
  'Dask workers', 'Horovod', 'ONNX runtime', 'TensorRT', 'OpenVINO', 'Triton server', 'vLLM serving', 'Llama weights loader',
  'Stable Diffusion UI', 'Whisper transcription', 'FFmpeg', 'GStreamer', 'ImageMagick', 'LibreOffice', 'Tesseract OCR',
  'Chromium headless', 'Selenium grid', 'Playwright', 'k6 load testing', 'Locust', 'JMeter', 'Gatling', 'Wireshark', 'tcpdump',
  'Zeek', 'osquery', 'Falco', 'Trivy scanner', 'Grype scanner', 'Cosign', 'Notary', 'SBOM', 'Nix', 'Flatpak', 'Snap disabled',
  'swap disabled', 'time zone UTC', 'Graviton3', 'AVX-512 builds', 'jemalloc', 'tcmalloc', 'io_uring', 'eBPF tools',
];
/** Two per listing. */
const HIGHLIGHTS = [
  '24x7 support', 'business hours support', 'community forum', 'migration service', 'onboarding call', 'SLA 99.9',
  'SLA 99.99', 'monthly patches', 'weekly patches', 'nightly builds', 'long term support', 'extended support',
  'compliance reports', 'SOC2 evidence', 'HIPAA eligible', 'PCI DSS ready', 'GDPR tooling', 'ISO 27001 controls',
  'one-click deploy', 'auto scaling', 'blue-green upgrades', 'zero downtime upgrades', 'multi-region', 'multi-AZ',
  'air-gapped install', 'offline licence', 'bring your own licence', 'usage-based licence', 'free trial', 'volume discounts',
  'training videos', 'runbooks', 'architecture review', 'cost optimisation', 'performance tuning', 'security audit',
  'penetration tested', 'bug bounty', 'signed packages', 'reproducible builds', 'open source', 'source available',
  'vendor certified', 'partner validated', 'reference architecture', 'quick start guide', 'CloudFormation template',
  'Terraform module', 'Helm chart', 'Ansible role', 'Chef cookbook', 'Puppet module', 'SaltStack formula', 'API access',
  'CLI tooling', 'web console', 'dashboards included', 'alerting included', 'backups included', 'disaster recovery',
  'failover testing', 'chaos testing', 'capacity planning', 'health checks', 'status page', 'changelog', 'roadmap',
  'accessibility', 'localisation', 'right-to-left languages', 'dark mode', 'mobile app', 'desktop client', 'browser extension',
  'marketplace metering', 'hourly billing', 'annual contract', 'private offer', 'reseller programme', 'education pricing',
  'nonprofit pricing', 'startup credits', 'government cloud', 'sovereign cloud', 'edge locations', 'GPU instances',
  'ARM instances', 'spot friendly', 'burstable instances', 'memory optimised', 'storage optimised', 'network optimised',
  'low latency', 'high throughput', 'energy efficient', 'carbon aware', 'small footprint', 'batteries included',
];
const CATEGORY_OF = ['web-servers', 'databases', 'networking', 'devops', 'containers', 'business-applications', 'machine-learning', 'security'];
/** A product's listings' category (products come in tens of one kind). */
const CATEGORY_OF_PRODUCT = (product: number) => CATEGORY_OF[Math.floor(product / 10)];

/**
 * 1,000 sellers with a listing each and 100 images each (100,000 images) from the vocabulary
 * above, with INSERT … SELECT in the database. Of the images 95 % are available, 80 % public, a
 * third paid; each has a few launches. `seed` also gives the first accounts launch grants on
 * private images (accepted shares), so signed-in lists go through every visibility branch.
 */
export async function seed(databaseUrl: string): Promise<number> {
  const started = performance.now();
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    await client.query(
      `
      INSERT INTO catalog.listing (id, seller_id, title, summary, description, categories, pricing_type, product_code, created_at, updated_at)
      SELECT 'lst-' || lpad(to_hex(a), 17, '0'),
             (100000000000 + a)::text,
             initcap(($1::text[])[1 + a % 80]) || ' ' || ($3::text[])[1 + (a / 80) % 8] || ' on ' || ($2::text[])[1 + (a * 7 + (a / 80) * 5) % 16],
             initcap(($1::text[])[1 + a % 80]) || ', packaged and kept up to date by seller ' || a || ', with '
               || ($5::text[])[1 + (a * 13) % cardinality($5::text[])],
             'A ready-to-run ' || ($1::text[])[1 + a % 80] || ' image. It comes with '
               || ($5::text[])[1 + (a * 13) % cardinality($5::text[])] || ' and '
               || ($5::text[])[1 + (a * 31 + 7) % cardinality($5::text[])] || '. Built from official packages.',
             ARRAY[($4::text[])[1 + (a % 80) / 10]]::varchar(32)[],
             CASE WHEN a % 3 = 0 THEN 'paid' ELSE 'free' END,
             CASE WHEN a % 3 = 0 THEN 'prod-' || lpad(to_hex(a), 20, '0') END,
             now() - a * interval '1 hour', now()
        FROM generate_series(0, ${ACCOUNTS - 1}) a`,
      [PRODUCTS, OS, EDITIONS, CATEGORY_OF, HIGHLIGHTS],
    );
    await client.query(
      `
      INSERT INTO catalog.image (id, owner_id, name, description, version, architecture, virtualization_type, root_device_type,
                                 platform, platform_details, product_codes, listing_id, state, is_public, lp_revision,
                                 launch_count, created_at, updated_at)
      SELECT 'ami-' || lpad(to_hex(n), 17, '0'),
             (100000000000 + a)::text,
             ($1::text[])[1 + a % 80] || '-' || lower(replace(($2::text[])[1 + os], ' ', '-')) || '-' || arch || '-' || (n / ${ACCOUNTS}),
             initcap(($1::text[])[1 + a % 80]) || ' ' || (n / ${ACCOUNTS}) || ' on ' || ($2::text[])[1 + os] || ' with '
               || ($3::text[])[1 + (n * 7919) % cardinality($3::text[])],
             '1.' || (n / ${ACCOUNTS}),
             arch, 'hvm', 'ebs',
             CASE WHEN os >= 14 THEN 'windows' ELSE 'linux' END,
             CASE WHEN os >= 14 THEN 'Windows' ELSE 'Linux/UNIX' END,
             CASE WHEN a % 3 = 0 THEN ARRAY['prod-' || lpad(to_hex(a), 20, '0')]::varchar(25)[] ELSE ARRAY[]::varchar(25)[] END,
             'lst-' || lpad(to_hex(a), 17, '0'),
             CASE WHEN (h / 5) % 20 = 0 THEN 'pending' ELSE 'available' END,
             h % 5 <> 0, 1,
             (n * 7919) % 1000,
             now() - n * interval '1 second', now()
        FROM generate_series(1, ${IMAGES}) n,
             LATERAL (SELECT n % ${ACCOUNTS} AS a, ((n % ${ACCOUNTS}) * 7 + ((n % ${ACCOUNTS}) / 80) * 5 + (n / ${ACCOUNTS}) % 3) % 16 AS os,
                             (ARRAY['x86_64', 'arm64', 'x86_64', 'i386'])[1 + (n / ${ACCOUNTS}) % 4] AS arch,
                             abs(hashint4(n)::bigint) AS h) v`,
      [PRODUCTS, OS, FEATURES],
    );
    // Accepted shares: two in five private images are shared with one of the buyers (accounts 2000000000nn), 160 each.
    await client.query(`
      INSERT INTO catalog.launch_grant (id, image_id, account_id, share_state, updated_at)
      SELECT gen_random_uuid(), 'ami-' || lpad(to_hex(n), 17, '0'), (200000000000 + n % ${BUYERS})::text, 'accepted', now()
        FROM generate_series(1, ${IMAGES}) n
       WHERE abs(hashint4(n)::bigint) % 5 = 0 AND (abs(hashint4(n)::bigint) / 100) % 5 < 2`);
    // As autovacuum leaves a table at rest: statistics and the visibility map.
    for (const table of ['catalog.image', 'catalog.listing', 'catalog.launch_grant']) await client.query(`VACUUM ANALYZE ${table}`);
  } finally {
    await client.end();
  }
  return (performance.now() - started) / 1000;
}

async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  server.close();
  if (!address || typeof address === 'string') throw new Error('no port');
  return address.port;
}


runIfMain(import.meta.url, run);
