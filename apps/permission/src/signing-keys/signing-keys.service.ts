import { Injectable } from '@nestjs/common';
import { PrismaClient, UniqueViolation, type PermissionSigningKey } from '@imagemart/database';
import { exportKeyPem, keyFingerprint, loadPublicKey, signatureAlgorithmOf } from '@imagemart/bundle-format';
import {
  ErrorCode,
  type Caller,
  type RegisterSigningKeyBody,
  type SigningKeyAlgorithm,
  type SigningKeyView,
} from '@imagemart/contracts';
import { DomainException } from '@imagemart/messaging';
import { requestContext } from '@imagemart/observability';
import { accountNotFound, assertSelfOrAdmin } from '../accounts/account.access.js';
import { AccountsRepository } from '../accounts/accounts.repository.js';
import { AuditRepository } from '../audit/audit.repository.js';
import { SigningKeysRepository } from './signing-keys.repository.js';

export function toSigningKeyView(k: PermissionSigningKey): SigningKeyView {
  return {
    keyId: k.fingerprint,
    accountId: k.accountId,
    name: k.name,
    algorithm: k.algorithm as SigningKeyAlgorithm,
    keyType: k.keyType as SigningKeyView['keyType'],
    keyBits: k.keyBits,
    publicKeyPem: k.publicKeyPem,
    createdAt: k.createdAt.toISOString(),
    revokedAt: k.revokedAt?.toISOString() ?? null,
  };
}

/** The audit log's resource id of a key: its fingerprint's hex (the log's ids are at most 64 characters). */
export const auditResourceId = (fingerprint: string) => fingerprint.replace(/^sha256:/, '');

const keyNotFound = (keyId: string) =>
  new DomainException(ErrorCode.InvalidKeyPairNotFound, `The signing key '${keyId}' does not exist.`);

/** What a PEM holds, when it is a public key manifests may be signed with; a 400 otherwise. */
function readPublicKey(pem: string) {
  // A private key would be read as its public half; refuse it, so a seller notices he sent the secret.
  if (/PRIVATE KEY-----/.test(pem)) {
    throw new DomainException(
      ErrorCode.InvalidKeyPairFormat,
      'This is a private key. Register the public key only (openssl pkey -in key.pem -pubout); keep the private key to yourself.',
    );
  }
  try {
    const key = loadPublicKey(pem);
    const algorithm = signatureAlgorithmOf(key);
    return {
      algorithm,
      keyType: key.asymmetricKeyType === 'ed25519' ? 'ed25519' : 'rsa',
      keyBits: key.asymmetricKeyDetails?.modulusLength ?? null,
      fingerprint: keyFingerprint(key),
      publicKeyPem: exportKeyPem(key),
    };
  } catch (err) {
    throw new DomainException(
      ErrorCode.InvalidKeyPairFormat,
      `The key cannot sign manifests: ${(err as Error).message}. Use an Ed25519 key, or an RSA key of 2048 bits or more.`,
    );
  }
}

/**
 * Seller signing keys: the public keys that sign the manifests of bundles a seller makes on his
 * own machine. An account manages its own keys, an admin any account's; anyone else is told the
 * account does not exist. Registering and revoking are audited.
 */
@Injectable()
export class SigningKeysService {
  constructor(
    private readonly prisma: PrismaClient,
    private readonly accounts: AccountsRepository,
    private readonly keys: SigningKeysRepository,
    private readonly audit: AuditRepository,
  ) {}

  /**
   * Registers a public key. Registering an active key again answers it as it is (a retried
   * request); a key once revoked cannot come back (409): a revoked key may have leaked.
   */
  async register(caller: Caller, accountId: string, body: RegisterSigningKeyBody): Promise<SigningKeyView> {
    assertSelfOrAdmin(caller, accountId);
    if (!(await this.accounts.findById(accountId))) throw accountNotFound(accountId);
    const key = readPublicKey(body.publicKeyPem);
    const existing = await this.keys.find(accountId, key.fingerprint);
    if (existing) return this.again(existing);
    try {
      const row = await this.prisma.$transaction(async (tx) => {
        const created = await this.keys.create({ accountId, name: body.name, ...key }, tx);
        await this.audit.record(
          {
            actorId: caller.accountId,
            action: 'signingkey.register',
            resourceType: 'signingkey',
            resourceId: auditResourceId(key.fingerprint),
            requestId: requestContext.requestId(),
            details: { accountId, keyId: key.fingerprint, name: body.name, algorithm: key.algorithm },
          },
          tx,
        );
        return created;
      });
      return toSigningKeyView(row);
    } catch (err) {
      if (err instanceof UniqueViolation) {
        // The same key registered twice at once: the other request made it.
        const other = await this.keys.find(accountId, key.fingerprint);
        if (other) return this.again(other);
      }
      throw err;
    }
  }

  async list(caller: Caller, accountId: string): Promise<SigningKeyView[]> {
    assertSelfOrAdmin(caller, accountId);
    if (!(await this.accounts.findById(accountId))) throw accountNotFound(accountId);
    return (await this.keys.listForAccount(accountId)).map(toSigningKeyView);
  }

  /** One key of the account, revoked or not: the gateway checks a manifest's signer with it. */
  async get(caller: Caller, accountId: string, keyId: string): Promise<SigningKeyView> {
    assertSelfOrAdmin(caller, accountId);
    const key = await this.keys.find(accountId, keyId);
    if (!key) throw keyNotFound(keyId);
    return toSigningKeyView(key);
  }

  /** Internal (services only): one key of the account, revoked or not, by its fingerprint. */
  async internalGet(accountId: string, keyId: string): Promise<SigningKeyView> {
    const key = await this.keys.find(accountId, keyId);
    if (!key) throw keyNotFound(keyId);
    return toSigningKeyView(key);
  }

  /** A revoked key signs nothing more; revoking again answers as the first time did. */
  async revoke(caller: Caller, accountId: string, keyId: string): Promise<SigningKeyView> {
    assertSelfOrAdmin(caller, accountId);
    const row = await this.prisma.$transaction(async (tx) => {
      const key = await this.keys.find(accountId, keyId, tx);
      if (!key) throw keyNotFound(keyId);
      if (key.revokedAt) return key;
      const revoked = await this.keys.revoke(key.id, new Date(), tx);
      await this.audit.record(
        {
          actorId: caller.accountId,
          action: 'signingkey.revoke',
          resourceType: 'signingkey',
          resourceId: auditResourceId(keyId),
          requestId: requestContext.requestId(),
          details: { accountId, keyId },
        },
        tx,
      );
      return revoked;
    });
    return toSigningKeyView(row);
  }

  private again(existing: PermissionSigningKey): SigningKeyView {
    if (existing.revokedAt) {
      throw new DomainException(
        ErrorCode.InvalidKeyPairDuplicate,
        `The signing key '${existing.fingerprint}' was revoked on ${existing.revokedAt.toISOString()} and cannot be registered again; generate a new key.`,
      );
    }
    return toSigningKeyView(existing);
  }
}
