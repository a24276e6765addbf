import {
  allowedSenders,
  SIGNING_PROCESSES,
  type SigningProcess,
  CallerSigner,
  eventAssertion,
  type AssertionMaker,
  formatTrustedKeys,
  generateIdentityKeyPair,
  parseServiceIdentity,
  parseTrustedKeys,
  payloadDigest,
  signAssertion,
  type AssertionClaims,
  type ServiceIdentity,
  type TrustedKeys,
} from '@imagemart/contracts';

/**
 * A key pair for every signing process, made once per test process, as `npm start` makes them
 * for a deployment: services under test get their own identity and trust all of them, and a test
 * sends as the process it plays (`signer('storefront-api')` for the gateway, `signer('operator')`
 * for an operator's tool).
 */
export class TestIdentities {
  private static instance?: TestIdentities;
  private readonly privateKeys = new Map<SigningProcess, string>();
  private readonly publicKeys = new Map<SigningProcess, string>();
  readonly trustedKeysSetting: string;

  private constructor() {
    for (const process of SIGNING_PROCESSES) {
      const pair = generateIdentityKeyPair();
      this.privateKeys.set(process, pair.privateKey);
      this.publicKeys.set(process, pair.publicKey);
    }
    this.trustedKeysSetting = formatTrustedKeys(this.publicKeys.entries());
  }

  static shared(): TestIdentities {
    return (this.instance ??= new TestIdentities());
  }

  /** The settings a process under test needs: its own key and everyone's public keys. */
  env(process: SigningProcess): { SERVICE_IDENTITY_KEY: string; SERVICE_TRUSTED_KEYS: string } {
    return {
      SERVICE_IDENTITY_KEY: this.privateKeys.get(process)!,
      SERVICE_TRUSTED_KEYS: this.trustedKeysSetting,
    };
  }

  private readonly identities = new Map<SigningProcess, ServiceIdentity>();

  identity(process: SigningProcess): ServiceIdentity {
    let identity = this.identities.get(process);
    if (!identity)
      this.identities.set(
        process,
        (identity = parseServiceIdentity(process, this.privateKeys.get(process)!)),
      );
    return identity;
  }

  signer(process: SigningProcess, ttlMs?: number): CallerSigner {
    return new CallerSigner(this.identity(process), ttlMs);
  }

  /**
   * Signs each request as the first process allowed to send its pattern: for a test client that
   * stands in for the gateway and the services alike.
   */
  asAllowedSender(): AssertionMaker {
    const signers = new Map<SigningProcess, CallerSigner>();
    return {
      assertion: (request) => {
        const process = allowedSenders(request.pattern)[0] ?? 'operator';
        let signer = signers.get(process);
        if (!signer) signers.set(process, (signer = this.signer(process)));
        return signer.assertion(request);
      },
    };
  }

  /** An assertion with claims of the test's choosing (an expired one, say), signed by `process`'s real key. */
  signClaims(
    process: SigningProcess,
    claims: Omit<AssertionClaims, 'iss' | 'dig'> & { dataJson: string },
  ): string {
    const { dataJson, ...rest } = claims;
    return signAssertion(this.identity(process), { ...rest, iss: process, dig: payloadDigest(dataJson) });
  }

  /** A domain event job as `process`'s outbox relay would put it on `queue`: signed. */
  signedEvent<J extends { id: string; type: string; payload: unknown }>(
    process: SigningProcess,
    job: J,
    queue: string,
  ): J & { assertion: string } {
    return { ...job, assertion: eventAssertion(this.identity(process), job, queue) };
  }

  trustedKeys(): TrustedKeys {
    return parseTrustedKeys(this.trustedKeysSetting);
  }

  /** The public key setting of one process (base64 SPKI DER). */
  publicKey(process: SigningProcess): string {
    return this.publicKeys.get(process)!;
  }
}
