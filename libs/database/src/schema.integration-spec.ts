import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { $Enums, Prisma, type PrismaClient } from './generated/prisma/client.js';
import { createScratchDatabase } from './scratch-database.js';
import { OUTBOX_SCHEMAS } from './outbox.js';

/**
 * Proves that the database the migrations build is the one prisma/schema.prisma describes: every
 * model round-trips a row with every field set, and no table, column or enum exists on one side
 * only. A model added to the schema without a migration (or without a fixture here) fails this file.
 */

type CreateData<M extends Prisma.ModelName> =
  Prisma.TypeMap['model'][M]['operations']['create']['args']['data'];

const at = (iso: string) => new Date(iso);

/** One row per model with every scalar field set, optional ones and defaults included; parents first. */
const FIXTURES: { [M in Prisma.ModelName]: CreateData<M> } = {
  Account: {
    id: '123456789012',
    name: 'Ada Seller',
    email: 'ada@example.com',
    roles: ['seller', 'buyer', 'admin'],
    status: 'suspended',
    createdAt: at('2026-01-02T03:04:05.678Z'),
    updatedAt: at('2026-01-03T03:04:05.679Z'),
  },
  ApiKey: {
    id: 'key-0123456789abcdef',
    accountId: '123456789012',
    name: 'ci',
    prefix: 'imk_abcdef',
    hash: 'a'.repeat(64),
    createdAt: at('2026-01-02T03:04:05.001Z'),
    updatedAt: at('2026-01-02T03:04:05.002Z'),
    lastUsedAt: at('2026-01-04T00:00:00.003Z'),
    revokedAt: at('2026-01-05T00:00:00.004Z'),
  },
  PermissionSigningKey: {
    id: '00000000-0000-4000-8000-0000000000a1',
    accountId: '123456789012',
    fingerprint: `sha256:${'d'.repeat(64)}`,
    name: 'laptop',
    algorithm: 'RSA-PSS-SHA256',
    keyType: 'rsa',
    keyBits: 3072,
    publicKeyPem: '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n',
    createdAt: at('2026-01-02T03:04:05.111Z'),
    updatedAt: at('2026-01-02T03:04:05.112Z'),
    revokedAt: at('2026-01-06T00:00:00.113Z'),
  },
  AuditEvent: {
    id: '00000000-0000-4000-8000-000000000001',
    actorId: '123456789012',
    action: 'image.launch-permission.added',
    resourceType: 'image',
    resourceId: 'ami-0123456789abcdef0',
    requestId: 'req-1',
    clientRequestId: 'client-req-1',
    details: { added: ['210987654321'], nested: { ok: true, n: 1.5, none: null } },
    createdAt: at('2026-01-02T03:04:05.005Z'),
    updatedAt: at('2026-01-02T03:04:05.006Z'),
  },
  PermissionImage: {
    id: 'ami-0123456789abcdef0',
    ownerId: '123456789012',
    state: 'available',
    productCodes: ['prod-abcdefghij0123456789'],
    revision: 3,
    createdAt: at('2026-01-02T03:04:05.010Z'),
    updatedAt: at('2026-01-02T03:04:05.011Z'),
  },
  PermissionSubscription: {
    id: 'sub-0001',
    accountId: '210987654321',
    productCode: 'prod-abcdefghij0123456789',
    status: 'active',
    entitled: true,
    revision: 2,
    createdAt: at('2026-01-02T03:04:05.012Z'),
    updatedAt: at('2026-01-02T03:04:05.013Z'),
  },
  PermissionLaunchSetting: {
    id: 'ami-0123456789abcdef0',
    isPublic: true,
    revision: 4,
    createdAt: at('2026-01-02T03:04:05.014Z'),
    updatedAt: at('2026-01-02T03:04:05.015Z'),
  },
  PermissionLaunchGrant: {
    id: '00000000-0000-4000-8000-000000000021',
    imageId: 'ami-0123456789abcdef0',
    accountId: '210987654321',
    shareState: 'accepted',
    createdAt: at('2026-01-02T03:04:05.016Z'),
    updatedAt: at('2026-01-02T03:04:05.017Z'),
  },
  CatalogImage: {
    id: 'ami-0123456789abcdef0',
    ownerId: '123456789012',
    name: 'ubuntu-24.04 (server) [x86]',
    description: 'Ubuntu server',
    version: '24.04.1',
    architecture: 'arm64',
    virtualizationType: 'paravirtual',
    rootDeviceType: 'instance-store',
    rootDeviceName: '/dev/sda1',
    blockDeviceMappings: [{ deviceName: '/dev/sda1', ebs: { volumeSize: 8, volumeType: 'gp3', deleteOnTermination: true } }],
    kernelId: 'aki-0123abcd',
    ramdiskId: 'ari-0123abcd',
    platform: 'windows',
    platformDetails: 'Windows',
    productCodes: ['prod-abcdefghij0123456789'],
    listingId: 'lst-0123456789abcdef0',
    sourceImageId: 'ami-00000000000000001',
    state: 'failed',
    stateReasonCode: 'Client.BundleVerificationFailed',
    stateReasonMessage: 'part 3 digest mismatch',
    manifestLocation: 'bundles/ami-0123456789abcdef0/manifest.xml',
    manifestDigest: 'f'.repeat(64),
    signerKeyId: `sha256:${'e'.repeat(64)}`,
    imageSize: 8_589_934_592n,
    revision: 4,
    isPublic: true,
    lpRevision: 2,
    launchCount: 12n,
    createdAt: at('2026-01-02T03:04:05.123Z'),
    updatedAt: at('2026-01-02T03:04:05.124Z'),
    deregisteredAt: at('2026-01-02T03:04:05.125Z'),
  },
  CatalogImageLaunchTally: {
    id: 7n,
    imageId: 'ami-0123456789abcdef0',
    launches: 3,
    createdAt: at('2026-01-02T03:04:05.126Z'),
  },
  CatalogLaunchGrant: {
    id: '00000000-0000-4000-8000-000000000021',
    imageId: 'ami-0123456789abcdef0',
    accountId: '210987654321',
    shareState: 'accepted',
    createdAt: at('2026-01-02T03:04:05.007Z'),
    updatedAt: at('2026-01-02T03:04:05.008Z'),
  },
  CatalogListing: {
    id: 'lst-0123456789abcdef0',
    sellerId: '123456789012',
    title: 'Ubuntu Server',
    summary: 'Hardened Ubuntu',
    description: 'A longer description',
    categories: ['operating-systems', 'security'],
    pricingType: 'paid',
    productCode: 'prod-abcdefghij0123456789',
    createdAt: at('2026-01-02T03:04:05.009Z'),
    updatedAt: at('2026-01-02T03:04:05.010Z'),
  },
  SellerProfile: {
    id: '123456789012',
    displayName: 'Ada Images',
    about: 'Images since 2026',
    website: 'https://ada.example.com',
    createdAt: at('2026-01-02T03:04:05.011Z'),
    updatedAt: at('2026-01-02T03:04:05.012Z'),
  },
  CatalogUpload: {
    id: 'upl-0123456789abcdef0',
    imageId: 'ami-0123456789abcdef0',
    ownerId: '123456789012',
    size: 8_589_934_592n,
    sha256: 'b'.repeat(64),
    compression: 'gzip',
    partSize: 67_108_864,
    partCount: 128,
    state: 'complete',
    createdAt: at('2026-01-02T03:04:05.041Z'),
    updatedAt: at('2026-01-02T03:04:05.042Z'),
    completedAt: at('2026-01-02T03:04:05.043Z'),
    abortedAt: at('2026-01-02T03:04:05.044Z'),
    bundle: { manifestXml: '<manifest/>', signerKeyId: `sha256:${'e'.repeat(64)}`, partFilenames: ['img.part.0000'] },
  },
  CatalogUploadPart: {
    id: '00000000-0000-4000-8000-000000000041',
    uploadId: 'upl-0123456789abcdef0',
    partNumber: 128,
    size: 1_048_576,
    sha256: 'c'.repeat(64),
    createdAt: at('2026-01-02T03:04:05.045Z'),
    updatedAt: at('2026-01-02T03:04:05.046Z'),
  },
  CatalogReservation: {
    id: 'r-0123456789abcdef0',
    accountId: '123456789012',
    clientToken: 'token-1',
    requestDigest: 'd'.repeat(64),
    imageId: 'ami-0123456789abcdef0',
    instanceType: 't3.micro',
    instanceCount: 1,
    createdAt: at('2026-01-02T03:04:05.047Z'),
    updatedAt: at('2026-01-02T03:04:05.048Z'),
  },
  CatalogInstance: {
    id: 'i-0123456789abcdef0',
    reservationId: 'r-0123456789abcdef0',
    launchIndex: 0,
    accountId: '123456789012',
    imageId: 'ami-0123456789abcdef0',
    sellerId: '123456789012',
    productCode: 'prod-0123456789abcdefghij',
    instanceType: 't3.micro',
    state: 'terminated',
    stateReasonCode: 'Client.UserInitiatedShutdown',
    stateReasonMessage: 'User initiated shutdown',
    stateChangedAt: at('2026-01-02T03:04:05.049Z'),
    runningAt: at('2026-01-02T03:04:05.050Z'),
    stoppedAt: at('2026-01-02T03:04:05.051Z'),
    manifestLocation: 'bundles/ami-0123456789abcdef0/manifest.xml',
    revision: 4,
    createdAt: at('2026-01-02T03:04:05.052Z'),
    updatedAt: at('2026-01-02T03:04:05.053Z'),
  },
  InstanceTypeRate: {
    id: 'x9.test',
    currency: 'USD',
    hourly: new Prisma.Decimal('0.0116'),
    createdAt: at('2026-01-02T03:04:05.030Z'),
    updatedAt: at('2026-01-02T03:04:05.031Z'),
  },
  PlatformFee: {
    id: 'test-fee',
    currency: 'USD',
    percent: new Prisma.Decimal('2.5'),
    fixedPerBuyer: new Prisma.Decimal('0.3'),
    createdAt: at('2026-01-02T03:04:05.032Z'),
    updatedAt: at('2026-01-02T03:04:05.033Z'),
  },
  ProductPricing: {
    id: 'prod-abcdefghij0123456789',
    sellerId: '123456789012',
    currency: 'USD',
    monthlyFee: new Prisma.Decimal('4.99'),
    signUpFee: new Prisma.Decimal('0.000001'),
    revision: 2,
    createdAt: at('2026-01-02T03:04:05.034Z'),
    updatedAt: at('2026-01-02T03:04:05.035Z'),
  },
  ProductInstanceTypePrice: {
    id: '00000000-0000-4000-8000-000000000031',
    productCode: 'prod-abcdefghij0123456789',
    instanceType: 'x9.test',
    markupKind: 'percent',
    markup: new Prisma.Decimal('12.5'),
    createdAt: at('2026-01-02T03:04:05.036Z'),
    updatedAt: at('2026-01-02T03:04:05.037Z'),
  },
  Subscription: {
    id: 'sub-0123456789abcdef0',
    accountId: '210987654321',
    productCode: 'prod-abcdefghij0123456789',
    sellerId: '123456789012',
    status: 'past_due',
    cancelAtPeriodEnd: true,
    currentPeriodStart: at('2026-01-15T10:00:00.000Z'),
    currentPeriodEnd: at('2026-02-01T00:00:00.000Z'),
    canceledAt: at('2026-01-20T00:00:00.001Z'),
    endedAt: at('2026-02-01T00:00:00.000Z'),
    revision: 3,
    requestId: 'req-3',
    cancelRequestId: 'req-4',
    createdAt: at('2026-01-02T03:04:05.038Z'),
    updatedAt: at('2026-01-02T03:04:05.039Z'),
  },
  StripeCustomer: {
    id: '210987654321',
    stripeId: 'cus_test0123456789',
    createdAt: at('2026-01-02T03:04:05.101Z'),
    updatedAt: at('2026-01-02T03:04:05.102Z'),
  },
  StripeProduct: {
    id: 'prod-abcdefghij0123456789',
    stripeId: 'prod-abcdefghij0123456789',
    createdAt: at('2026-01-02T03:04:05.103Z'),
    updatedAt: at('2026-01-02T03:04:05.104Z'),
  },
  StripePrice: {
    id: '00000000-0000-4000-8000-000000000101',
    productCode: 'prod-abcdefghij0123456789',
    kind: 'usage',
    instanceType: 'x9.test',
    currency: 'usd',
    amount: new Prisma.Decimal('0.0104'),
    stripeId: 'price_test0123456789',
    active: false,
    createdAt: at('2026-01-02T03:04:05.105Z'),
    updatedAt: at('2026-01-02T03:04:05.106Z'),
  },
  StripeMeter: {
    id: '00000000-0000-4000-8000-000000000102',
    productCode: 'prod-abcdefghij0123456789',
    instanceType: 'x9.test',
    eventName: 'imagemart_usage.prod-abcdefghij0123456789.x9.test',
    stripeId: 'mtr_test0123456789',
    createdAt: at('2026-01-02T03:04:05.113Z'),
    updatedAt: at('2026-01-02T03:04:05.114Z'),
  },
  StripeSubscription: {
    id: 'sub-0123456789abcdef0',
    stripeId: 'sub_test0123456789',
    accountId: '210987654321',
    stripeStatus: 'past_due',
    cancelAtPeriodEnd: true,
    lastEventAt: at('2026-01-20T00:00:01.000Z'),
    createdAt: at('2026-01-02T03:04:05.107Z'),
    updatedAt: at('2026-01-02T03:04:05.108Z'),
  },
  StripeInvoice: {
    id: 'in_test0123456789',
    stripeSubscriptionId: 'sub_test0123456789',
    stripeCustomerId: 'cus_test0123456789',
    status: 'paid',
    currency: 'usd',
    amountDue: new Prisma.Decimal('12.34'),
    amountPaid: new Prisma.Decimal('12.34'),
    paidAt: at('2026-01-20T00:00:02.000Z'),
    lastEventAt: at('2026-01-20T00:00:03.000Z'),
    createdAt: at('2026-01-02T03:04:05.109Z'),
    updatedAt: at('2026-01-02T03:04:05.110Z'),
  },
  StripeEvent: {
    id: 'evt_test0123456789',
    type: 'invoice.paid',
    stripeCreatedAt: at('2026-01-20T00:00:03.000Z'),
    outcome: 'applied',
    createdAt: at('2026-01-02T03:04:05.111Z'),
    updatedAt: at('2026-01-02T03:04:05.112Z'),
  },
  PermissionOutboxEvent: outboxFixture('00000000-0000-4000-8000-000000000011'),
  CatalogOutboxEvent: outboxFixture('00000000-0000-4000-8000-000000000012'),
  UsageRecord: {
    id: 'i-0123456789abcdef0',
    accountId: '210987654321',
    imageId: 'ami-0123456789abcdef0',
    sellerId: '123456789012',
    productCode: 'prod-abcdefghij0123456789',
    instanceType: 't3.micro',
    state: 'terminated',
    runningAt: at('2026-01-10T00:00:00.000Z'),
    stoppedAt: at('2026-01-10T01:00:00.000Z'),
    revision: 3,
    createdAt: at('2026-01-10T00:00:00.100Z'),
    updatedAt: at('2026-01-10T01:00:00.100Z'),
  },
  // A draft: lines can be added to it (a finalised invoice takes none).
  Invoice: {
    id: 'in-0123456789abcdef0',
    number: 'IM-202601-0000001',
    kind: 'invoice',
    accountId: '210987654321',
    periodStart: at('2026-01-01T00:00:00.000Z'),
    periodEnd: at('2026-02-01T00:00:00.000Z'),
    status: 'draft',
    currency: 'USD',
    total: new Prisma.Decimal('12.345678'),
    platformFeePercent: new Prisma.Decimal('3'),
    platformFeeFixed: new Prisma.Decimal('0.3'),
    correctsId: 'in-0123456789abcdef0',
    finalizedAt: at('2026-02-01T01:00:00.000Z'),
    paidAt: at('2026-02-02T01:00:00.000Z'),
    voidedAt: at('2026-02-03T01:00:00.000Z'),
    createdAt: at('2026-02-01T00:59:00.000Z'),
    updatedAt: at('2026-02-01T01:00:00.001Z'),
  },
  InvoiceLine: {
    id: '00000000-0000-4000-8000-000000000101',
    invoiceId: 'in-0123456789abcdef0',
    position: 0,
    kind: 'usage',
    description: 'Usage, prod-abcdefghij0123456789, t3.micro',
    servicePeriod: at('2026-01-01T00:00:00.000Z'),
    productCode: 'prod-abcdefghij0123456789',
    sellerId: '123456789012',
    subscriptionId: 'sub-0123456789abcdef0',
    instanceType: 't3.micro',
    seconds: 3600n,
    unitPrice: new Prisma.Decimal('0.0204'),
    baseAmount: new Prisma.Decimal('0.0104'),
    sellerAmount: new Prisma.Decimal('0.01'),
    amount: new Prisma.Decimal('0.0204'),
    createdAt: at('2026-02-01T00:59:00.001Z'),
    updatedAt: at('2026-02-01T00:59:00.002Z'),
  },
  MonthClose: {
    id: '2026-01:210987654321',
    periodStart: at('2026-01-01T00:00:00.000Z'),
    accountId: '210987654321',
    closedAt: at('2026-02-01T01:00:00.000Z'),
    createdAt: at('2026-02-01T00:58:00.000Z'),
    updatedAt: at('2026-02-01T01:00:00.000Z'),
  },
  MonthCloseRun: {
    id: at('2026-01-01T00:00:00.000Z'),
    completedAt: at('2026-02-01T01:00:01.000Z'),
    createdAt: at('2026-02-01T00:58:00.000Z'),
    updatedAt: at('2026-02-01T01:00:01.000Z'),
  },
  BillingOutboxEvent: outboxFixture('00000000-0000-4000-8000-000000000013'),
  BundlingOutboxEvent: outboxFixture('00000000-0000-4000-8000-000000000014'),
};

function outboxFixture(id: string) {
  return {
    id,
    type: 'test.thing.happened',
    queue: 'domain-events',
    payload: [1, 'two', { three: [3] }],
    requestId: 'req-2',
    attempts: 3,
    lastError: 'Redis went away',
    createdAt: at('2026-02-01T00:00:00.100Z'),
    updatedAt: at('2026-02-01T00:00:00.200Z'),
    publishedAt: at('2026-02-01T00:00:00.300Z'),
  };
}

/** The part of Prisma's runtime data model (generated into the client) this test reads. */
interface RuntimeDataModel {
  models: Record<
    string,
    {
      dbName: string | null;
      schema: string | null;
      fields: { name: string; kind: string; dbName?: string | null }[];
    }
  >;
}

interface Delegate {
  create(args: { data: unknown }): Promise<unknown>;
  findUniqueOrThrow(args: { where: unknown }): Promise<unknown>;
}

/** This library's tests cannot use @imagemart/testing (it depends on this library). */
const migratedDatabase = (label: string) =>
  createScratchDatabase(process.env['DATABASE_URL'] ?? 'postgresql://postgres@127.0.0.1:5432/test', label);

let db: Awaited<ReturnType<typeof migratedDatabase>>;
let model: RuntimeDataModel;

beforeAll(async () => {
  db = await migratedDatabase('schema');
  model = (db.prisma as unknown as { _runtimeDataModel?: RuntimeDataModel })._runtimeDataModel!;
  expect(model?.models, 'the generated client no longer exposes its runtime data model').toBeDefined();
});

afterAll(async () => {
  await db?.drop();
});

const modelNames = Object.values(Prisma.ModelName);
const scalarFields = (name: string) =>
  model.models[name].fields.filter((f) => f.kind === 'scalar' || f.kind === 'enum');
const delegateOf = (prisma: PrismaClient, name: string) =>
  (prisma as unknown as Record<string, Delegate>)[name[0].toLowerCase() + name.slice(1)];

describe('the migrated database serves every model of the Prisma schema', () => {
  it('knows every model', () => {
    expect(Object.keys(model.models).sort()).toEqual([...modelNames].sort());
    expect(Object.keys(FIXTURES).sort(), 'add a fixture for each new model').toEqual([...modelNames].sort());
  });

  it.each(modelNames)('%s: a row with every field set reads back unchanged', async (name) => {
    const data = FIXTURES[name] as Record<string, unknown>;
    expect(Object.keys(data).sort(), `the ${name} fixture must set every field`).toEqual(
      scalarFields(name)
        .map((f) => f.name)
        .sort(),
    );
    const delegate = delegateOf(db.prisma, name);

    await delegate.create({ data });
    const row = await delegate.findUniqueOrThrow({ where: { id: data['id'] } });

    expect(row).toEqual(data);
  });
});

describe('the database has nothing the Prisma schema does not describe', () => {
  const schemas = () => [
    ...new Set([...OUTBOX_SCHEMAS, ...Object.values(model.models).map((m) => m.schema ?? 'public')]),
  ];

  it('has a table for every model and a model for every table', async () => {
    const tables = await db.prisma.$queryRaw<{ schema: string; name: string }[]>`
      SELECT table_schema AS schema, table_name AS name FROM information_schema.tables
       WHERE table_schema = ANY(${schemas()}) AND table_type = 'BASE TABLE'`;
    const expected = Object.entries(model.models).map(
      ([name, m]) => `${m.schema ?? 'public'}.${m.dbName ?? name}`,
    );
    expect(tables.map((t) => `${t.schema}.${t.name}`).sort()).toEqual(expected.sort());
  });

  /**
   * Columns the schema declares as `Unsupported("…")` (a tsvector, say): the generated client
   * leaves them out of its data model, so they are read from the schema file itself.
   */
  const unsupportedColumns = (modelName: string): string[] => {
    const text = readFileSync(fileURLToPath(new URL('../../../prisma/schema.prisma', import.meta.url)), 'utf8');
    const body = new RegExp(`\\bmodel ${modelName} \\{([^}]*)\\}`).exec(text)?.[1] ?? '';
    return body
      .split('\n')
      .filter((line) => /^\s*\w+\s+Unsupported\(/.test(line))
      .map((line) => /@map\("([^"]+)"\)/.exec(line)?.[1] ?? line.trim().split(/\s+/)[0]);
  };

  it('has exactly the columns of each model', async () => {
    const columns = await db.prisma.$queryRaw<{ schema: string; table: string; name: string }[]>`
      SELECT table_schema AS schema, table_name AS table, column_name AS name FROM information_schema.columns
       WHERE table_schema = ANY(${schemas()})`;
    for (const [name, m] of Object.entries(model.models)) {
      const actual = columns
        .filter((c) => c.schema === (m.schema ?? 'public') && c.table === (m.dbName ?? name))
        .map((c) => c.name);
      const expected = [...scalarFields(name).map((f) => f.dbName ?? f.name), ...unsupportedColumns(name)];
      expect(actual.sort(), `columns of ${name}`).toEqual(expected.sort());
    }
  });

  it('has exactly the enums of the schema, with the same values', async () => {
    const enums = await db.prisma.$queryRaw<{ name: string; labels: string[] }[]>`
      SELECT t.typname AS name, array_agg(e.enumlabel::text ORDER BY e.enumsortorder) AS labels
        FROM pg_type t
        JOIN pg_enum e ON e.enumtypid = t.oid
        JOIN pg_namespace n ON n.oid = t.typnamespace
       WHERE n.nspname = ANY(${schemas()})
       GROUP BY t.typname`;
    const expected = Object.entries($Enums).map(([name, values]) => ({
      name,
      labels: Object.values(values),
    }));
    const byName = (a: { name: string }, b: { name: string }) => a.name.localeCompare(b.name);
    expect(enums.sort(byName)).toEqual(expected.sort(byName));
  });
});
