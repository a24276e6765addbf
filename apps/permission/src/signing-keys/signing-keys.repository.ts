import { Injectable } from '@nestjs/common';
import { PrismaClient, withPrismaErrors, type Prisma, type PermissionSigningKey } from '@imagemart/database';

type Tx = Prisma.TransactionClient | PrismaClient;

export interface NewSigningKey {
  accountId: string;
  fingerprint: string;
  name: string;
  algorithm: string;
  keyType: string;
  keyBits: number | null;
  publicKeyPem: string;
}

/** An account's signing keys, by fingerprint. */
@Injectable()
export class SigningKeysRepository {
  constructor(private readonly prisma: PrismaClient) {}

  create(key: NewSigningKey, tx: Tx = this.prisma): Promise<PermissionSigningKey> {
    return withPrismaErrors(() => tx.permissionSigningKey.create({ data: key }));
  }

  find(accountId: string, fingerprint: string, tx: Tx = this.prisma): Promise<PermissionSigningKey | null> {
    return tx.permissionSigningKey.findUnique({
      where: { accountId_fingerprint: { accountId, fingerprint } },
    });
  }

  listForAccount(accountId: string): Promise<PermissionSigningKey[]> {
    return this.prisma.permissionSigningKey.findMany({
      where: { accountId },
      orderBy: [{ createdAt: 'asc' }, { id: 'asc' }],
    });
  }

  /** Revokes once: a second revoke changes nothing and returns the row as it is. */
  async revoke(id: string, at: Date, tx: Tx = this.prisma): Promise<PermissionSigningKey> {
    await tx.permissionSigningKey.updateMany({ where: { id, revokedAt: null }, data: { revokedAt: at } });
    return tx.permissionSigningKey.findUniqueOrThrow({ where: { id } });
  }
}
