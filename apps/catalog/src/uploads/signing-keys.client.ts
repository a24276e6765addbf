import { Inject, Injectable, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { APP_CONFIG } from '@imagemart/config';
import {
  ErrorCode,
  PermissionPattern,
  RpcService,
  isErrorBody,
  type SigningKeyInternalGetRequest,
  type SigningKeyView,
} from '@imagemart/contracts';
import { DomainException, createRpcClient, processIdentity, sendRpc, type RedisStreamsClient } from '@imagemart/messaging';
import type { CatalogConfig } from '../catalog.config.js';

/**
 * Asks the permission service (which owns sellers' signing keys) whether a key is, right now, an
 * active key of an account: `permission.signing-key.internal-get`. An upload of a seller-made
 * bundle is completed only while the key that signed its manifest is.
 */
@Injectable()
export class SigningKeysClient implements OnModuleInit, OnApplicationShutdown {
  private readonly client: RedisStreamsClient;

  constructor(@Inject(APP_CONFIG) config: CatalogConfig) {
    this.client = createRpcClient(RpcService.permission, {
      connection: config.REDIS_URL,
      prefix: config.REDIS_PREFIX,
      timeoutMs: config.RPC_TIMEOUT_MS,
      signer: processIdentity(config, 'catalog').signer,
    });
  }

  async onModuleInit(): Promise<void> {
    await this.client.connect();
  }

  async onApplicationShutdown(): Promise<void> {
    await this.client.close();
  }

  /** The key as the permission service holds it (revoked or not), or null when it is not the account's. */
  async find(accountId: string, keyId: string): Promise<SigningKeyView | null> {
    const request: SigningKeyInternalGetRequest = { accountId, keyId };
    try {
      return await sendRpc<SigningKeyView>(this.client, PermissionPattern.signingKeyInternalGet, request);
    } catch (err) {
      if (isErrorBody(err)) {
        if (err.code === ErrorCode.InvalidKeyPairNotFound) return null;
        throw new DomainException(err.code, err.detail, err.errors);
      }
      throw err;
    }
  }
}
