import {
  ErrorCode,
  PermissionPattern,
  RpcService,
  isErrorBody,
  type SigningKeyInternalGetRequest,
  type SigningKeyView,
} from '@imagemart/contracts';
import { createRpcClient, sendRpc, type RedisStreamsClient } from '@imagemart/messaging';
import { type AssertionMaker } from '@imagemart/contracts';

/** What the permission service says of a seller's signing key now. */
export type SigningKeyStatus = 'active' | 'revoked' | 'unknown';

/** Asks whether `keyId` is, right now, an active signing key of `accountId`. */
export interface SigningKeyCheck {
  status(accountId: string, keyId: string): Promise<SigningKeyStatus>;
  close(): Promise<void>;
}

/**
 * The permission service's answer (`permission.signing-key.internal-get`), asked by the verify job
 * of a seller-made bundle just before it verifies: a key revoked after the upload was opened
 * signs nothing more. A service that does not answer is an ordinary error (the job is retried).
 */
export class PermissionSigningKeyCheck implements SigningKeyCheck {
  private readonly client: RedisStreamsClient;
  private connected?: Promise<void>;

  constructor(options: { url: string; prefix: string; timeoutMs: number; signer: AssertionMaker }) {
    this.client = createRpcClient(RpcService.permission, {
      connection: options.url,
      prefix: options.prefix,
      timeoutMs: options.timeoutMs,
      signer: options.signer,
    });
  }

  async status(accountId: string, keyId: string): Promise<SigningKeyStatus> {
    await (this.connected ??= this.client.connect().catch((err: unknown) => {
      this.connected = undefined;
      throw err;
    }));
    const request: SigningKeyInternalGetRequest = { accountId, keyId };
    try {
      const key = await sendRpc<SigningKeyView>(
        this.client,
        PermissionPattern.signingKeyInternalGet,
        request,
      );
      return key.revokedAt === null ? 'active' : 'revoked';
    } catch (err) {
      if (isErrorBody(err) && err.code === ErrorCode.InvalidKeyPairNotFound) return 'unknown';
      throw err;
    }
  }

  async close(): Promise<void> {
    await this.client.close();
  }
}
