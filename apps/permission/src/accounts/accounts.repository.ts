import { Injectable } from '@nestjs/common';
import { PrismaClient, withPrismaErrors, type Prisma, type Account } from '@imagemart/database';
import type { Role } from '@imagemart/contracts';

type Tx = Prisma.TransactionClient | PrismaClient;

export interface NewAccount {
  id: string;
  name: string;
  email: string;
  roles: Role[];
}

export interface AccountCursor {
  createdAt: Date;
  id: string;
}

@Injectable()
export class AccountsRepository {
  constructor(private readonly prisma: PrismaClient) {}

  create(account: NewAccount, tx: Tx = this.prisma): Promise<Account> {
    return withPrismaErrors(() => tx.account.create({ data: account }));
  }

  findById(id: string): Promise<Account | null> {
    return this.prisma.account.findUnique({ where: { id } });
  }

  existsByEmail(email: string, tx: Tx = this.prisma): Promise<boolean> {
    return tx.account.count({ where: { email } }).then((n) => n > 0);
  }

  countAdmins(tx: Tx = this.prisma): Promise<number> {
    return tx.account.count({ where: { roles: { has: 'admin' } } });
  }

  /** Oldest first, a stable order: (createdAt, id) is unique. */
  list(limit: number, after?: AccountCursor): Promise<Account[]> {
    return this.prisma.account.findMany({
      where: after
        ? {
            OR: [
              { createdAt: { gt: after.createdAt } },
              { createdAt: after.createdAt, id: { gt: after.id } },
            ],
          }
        : {},
      orderBy: [{ createdAt: 'asc' }, { id: 'asc' }],
      take: limit,
    });
  }

  /** Serialises writers that must see a consistent count (bootstrap of the first admin). */
  async lockForBootstrap(tx: Prisma.TransactionClient): Promise<void> {
    await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtext('imagemart:permission:bootstrap-admin'))`;
  }
}
