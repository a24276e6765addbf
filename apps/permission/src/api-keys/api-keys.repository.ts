import { Injectable } from '@nestjs/common';
import { PrismaClient, type Prisma, type ApiKey, type Account } from '@imagemart/database';

type Tx = Prisma.TransactionClient | PrismaClient;

export interface NewApiKey {
  id: string;
  accountId: string;
  name: string;
  prefix: string;
  hash: string;
}

@Injectable()
export class ApiKeysRepository {
  constructor(private readonly prisma: PrismaClient) {}

  create(key: NewApiKey, tx: Tx = this.prisma): Promise<ApiKey> {
    return tx.apiKey.create({ data: key });
  }

  listForAccount(accountId: string): Promise<ApiKey[]> {
    return this.prisma.apiKey.findMany({
      where: { accountId },
      orderBy: [{ createdAt: 'asc' }, { id: 'asc' }],
    });
  }

  findForAccount(accountId: string, id: string, tx: Tx = this.prisma): Promise<ApiKey | null> {
    return tx.apiKey.findFirst({ where: { id, accountId } });
  }

  findByHash(hash: string): Promise<(ApiKey & { account: Account }) | null> {
    return this.prisma.apiKey.findUnique({ where: { hash }, include: { account: true } });
  }

  /** Revokes once: a second revoke finds nothing to change and returns the row as it is. */
  async revoke(id: string, at: Date, tx: Tx = this.prisma): Promise<ApiKey> {
    await tx.apiKey.updateMany({ where: { id, revokedAt: null }, data: { revokedAt: at } });
    return tx.apiKey.findUniqueOrThrow({ where: { id } });
  }

  /** Marks a key used, at most once a minute, so authentication does not write on every request. */
  async touch(id: string, now: Date): Promise<void> {
    const staleBefore = new Date(now.getTime() - 60_000);
    await this.prisma.apiKey.updateMany({
      where: { id, OR: [{ lastUsedAt: null }, { lastUsedAt: { lt: staleBefore } }] },
      data: { lastUsedAt: now },
    });
  }
}
