import { RpcException } from '@nestjs/microservices';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode } from '@imagemart/contracts';
import { Prisma } from './generated/prisma/client.js';
import { InvalidTextValue, pgPoolOf, translatePrismaError, withPrismaErrors } from './prisma.js';
import { createScratchDatabase, type ScratchDatabase } from './scratch-database.js';

/**
 * Text PostgreSQL cannot store (a NUL byte: SQLSTATE 22021) is the caller's error on every path a
 * query takes: a model write, a raw query, a query inside a transaction, a query on the pg pool
 * translated by a repository. It is never an internal error, and nothing is written.
 */
let db: ScratchDatabase;

beforeAll(async () => {
  db = await createScratchDatabase(
    process.env['DATABASE_URL'] ?? 'postgresql://postgres@127.0.0.1:5432/test',
    'text_value',
  );
});

afterAll(async () => {
  await db?.drop();
});

const event = (action: string) => ({
  actorId: null,
  action,
  resourceType: 'image',
  resourceId: 'ami-0123456789abcdef0',
});

async function errorOf(work: () => Promise<unknown>): Promise<unknown> {
  try {
    await work();
  } catch (err) {
    return err;
  }
  throw new Error('expected a failure');
}

function expectInvalidText(err: unknown): void {
  expect(err).toBeInstanceOf(InvalidTextValue);
  // What a service's handler answers with: an RpcException whose error is a 400's body.
  expect(err).toBeInstanceOf(RpcException);
  expect((err as InvalidTextValue).getError()).toEqual({
    code: ErrorCode.InvalidParameterValue,
    detail: expect.any(String),
  });
}

describe('text PostgreSQL cannot store', () => {
  it('is InvalidTextValue from a model write, and nothing is written', async () => {
    expectInvalidText(await errorOf(() => db.prisma.auditEvent.create({ data: event('a\u0000b') })));
    expect(await db.prisma.auditEvent.count()).toBe(0);
  });

  it('is InvalidTextValue from a raw query and from a filter', async () => {
    expectInvalidText(await errorOf(() => db.prisma.$queryRaw`SELECT ${'x\u0000'}::text AS t`));
    expectInvalidText(
      await errorOf(() => db.prisma.auditEvent.findMany({ where: { resourceId: '\u0000' } })),
    );
  });

  it('is InvalidTextValue inside a transaction, which is rolled back whole', async () => {
    const err = await errorOf(() =>
      db.prisma.$transaction(async (tx) => {
        await tx.auditEvent.create({ data: event('kept-only-if-committed') });
        await tx.auditEvent.create({ data: event('\u0000') });
      }),
    );
    expectInvalidText(err);
    expect(await db.prisma.auditEvent.count()).toBe(0);
  });

  it('is translated by translatePrismaError from pg itself, and other errors are left alone', async () => {
    const pgError = await errorOf(() => pgPoolOf(db.prisma).query('SELECT $1::text', ['\u0000']));
    expect((pgError as { code?: string }).code).toBe('22021');
    expectInvalidText(await errorOf(() => Promise.resolve().then(() => translatePrismaError(pgError))));
    expectInvalidText(
      await errorOf(() => withPrismaErrors(() => db.prisma.auditEvent.create({ data: event('\u0000') }))),
    );
    const other = new Prisma.PrismaClientKnownRequestError('x', { code: 'P2000', clientVersion: 'test' });
    expect(await errorOf(() => Promise.resolve().then(() => translatePrismaError(other)))).toBe(other);
  });

  it('stores every other character, tabs, line breaks and astral ones included', async () => {
    const row = await db.prisma.auditEvent.create({ data: event('tab\tline\r\nemoji 😀 é') });
    expect((await db.prisma.auditEvent.findUniqueOrThrow({ where: { id: row.id } })).action).toBe(
      'tab\tline\r\nemoji 😀 é',
    );
  });
});
