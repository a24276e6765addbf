import {
  allowedSenders,
  callerKeysSetting,
  CallerSigner,
  eventAssertion,
  generateIdentitySecret,
  parseServiceIdentity,
  payloadDigest,
  signAssertion,
  SIGNING_PROCESSES,
  trustedKeysOf,
  type AssertionClaims,
  type AssertionMaker,
  type ServiceIdentity,
  type SigningProcess,
  type TrustedKeys,
} from '@imagemart/contracts';

/**
 * A secret for every signing process, made once per test process, as `npm start` makes them for a
 * deployment, and each process's keys for the others: services under test get their own identity,
 * and a test sends as the process it plays (`signer('storefront-api')` for the gateway,
 * `signer('operator')` for an operator's tool).
 */
export class TestIdentities {
  private static instance?: TestIdentities;
  private readonly secrets = new Map<SigningProcess, string>();
  private readonly identities = new Map<SigningProcess, ServiceIdentity>();

  private constructor() {
    for (const process of SIGNING_PROCESSES) this.secrets.set(process, generateIdentitySecret());
  }

  static shared(): TestIdentities {
    return (this.instance ??= new TestIdentities());
  }

  /** The settings a process under test needs: its own secret and its keys for every receiver. */
  env(process: SigningProcess): { SERVICE_IDENTITY_KEY: string; SERVICE_CALLER_KEYS: string } {
    return {
      SERVICE_IDENTITY_KEY: this.secrets.get(process)!,
      SERVICE_CALLER_KEYS: callerKeysSetting(process, this.secrets),
    };
  }

  identity(process: SigningProcess): ServiceIdentity {
    let identity = this.identities.get(process);
    if (!identity) {
      const env = this.env(process);
      identity = parseServiceIdentity(process, env.SERVICE_IDENTITY_KEY, env.SERVICE_CALLER_KEYS);
      this.identities.set(process, identity);
    }
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

  /** An assertion with claims of the test's choosing (an expired one, say), made with `process`'s real key. */
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

  /** What `receiver` accepts: every process's key for it. */
  trustedKeys(receiver: SigningProcess): TrustedKeys {
    return trustedKeysOf(this.identity(receiver));
  }
}
