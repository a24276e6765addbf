import type { BaseConfig } from '@imagemart/config';
import type { SigningProcess } from '@imagemart/contracts';
import {
  CallerSigner,
  EventQueue,
  eventAssertion,
  IdentityConfigError,
  parseServiceIdentity,
  trustedKeysOf,
  type TrustedKeys,
} from '@imagemart/contracts';

/** What a process needs to sign what it sends and to check what it receives. */
export interface ProcessIdentity {
  signer: CallerSigner;
  trustedKeys: TrustedKeys;
  /**
   * Signs a domain event job for one of the event queues (the outbox relay's); undefined for a
   * work queue (a host job the service gives itself), whose consumer checks no assertion.
   */
  signEvent: (job: { id: string; type: string; payload: unknown }, queue: string) => string | undefined;
}

type IdentitySettings = Pick<
  BaseConfig,
  'SERVICE_IDENTITY_KEY' | 'SERVICE_CALLER_KEYS' | 'CALLER_ASSERTION_TTL_MS'
>;

const cache = new WeakMap<object, ProcessIdentity>();
const EVENT_QUEUES = new Set<string>(Object.values(EventQueue));

/**
 * The process's identity from its settings, read once per settings object. Both settings are
 * required: a process without them could neither be believed nor believe anyone, so it does not
 * start (the message says what to set).
 */
export function processIdentity(config: IdentitySettings, process: SigningProcess): ProcessIdentity {
  const known = cache.get(config);
  if (known && known.signer.process === process) return known;
  if (!config.SERVICE_IDENTITY_KEY || !config.SERVICE_CALLER_KEYS) {
    throw new IdentityConfigError(
      `${process} needs SERVICE_IDENTITY_KEY (its own secret) and SERVICE_CALLER_KEYS (its keys for the processes it sends to): ` +
        '`npm start` generates both under .data/identity/; docs/messaging.md ("Signed callers") says how to provide them elsewhere.',
    );
  }
  const identity = parseServiceIdentity(process, config.SERVICE_IDENTITY_KEY, config.SERVICE_CALLER_KEYS);
  const trustedKeys = trustedKeysOf(identity);
  const made = {
    signer: new CallerSigner(identity, config.CALLER_ASSERTION_TTL_MS),
    trustedKeys,
    signEvent: (job: { id: string; type: string; payload: unknown }, queue: string) =>
      EVENT_QUEUES.has(queue) ? eventAssertion(identity, job, queue) : undefined,
  };
  cache.set(config, made);
  return made;
}
