/**
 * Who may send what on the message bus. Every request a service acts on carries a signed caller
 * assertion naming the process that sent it (docs/messaging.md, "Signed callers"); the receiving
 * service accepts a pattern only from the processes listed for it here, and a payload that names a
 * person (`caller`) only from the processes that authenticate people.
 *
 * A pattern missing from this table is refused by every service, and a service whose handler has
 * no entry here does not start: adding a pattern means deciding who may send it.
 */

/** The processes that sign what they send. `operator` is an operator's tool (and the test suites). */
export const SIGNING_PROCESSES = [
  'storefront-api',
  'catalog',
  'billing',
  'permission',
  'bundler-worker',
  'operator',
] as const;
export type SigningProcess = (typeof SIGNING_PROCESSES)[number];

/** The processes that authenticate people, so the only ones whose payloads may name a `caller`. */
export const USER_CALLER_ISSUERS: readonly SigningProcess[] = ['storefront-api'];

const GATEWAY = ['storefront-api'] as const;
const HEALTH = ['storefront-api', 'operator'] as const;

/** Pattern → the processes allowed to send it. */
export const PATTERN_SENDERS: Readonly<Record<string, readonly SigningProcess[]>> = {
  // permission
  'permission.health.ping': HEALTH,
  'permission.account.create': GATEWAY,
  'permission.account.get': GATEWAY,
  'permission.account.list': GATEWAY,
  'permission.apikey.issue': GATEWAY,
  'permission.apikey.list': GATEWAY,
  'permission.apikey.revoke': GATEWAY,
  'permission.apikey.authenticate': GATEWAY,
  'permission.launch-permission.get': GATEWAY,
  'permission.launch-permission.modify': GATEWAY,
  'permission.launch-permission.reset': GATEWAY,
  'permission.shared-image.list': GATEWAY,
  'permission.shared-image.respond': GATEWAY,
  'permission.audit-event.list': GATEWAY,
  'permission.signing-key.register': GATEWAY,
  'permission.signing-key.list': GATEWAY,
  'permission.signing-key.get': GATEWAY,
  'permission.signing-key.revoke': GATEWAY,
  /** The catalog asks before it launches. */
  'permission.launch.decide': ['catalog'],
  /** A seller's signing key with its revocation: upload complete (catalog) and the verify job (bundler-worker). */
  'permission.signing-key.internal-get': ['catalog', 'bundler-worker'],

  // catalog
  'catalog.health.ping': HEALTH,
  'catalog.image.register': GATEWAY,
  'catalog.image.get': GATEWAY,
  'catalog.image.list': GATEWAY,
  'catalog.image.list-page': GATEWAY,
  'catalog.image.update': GATEWAY,
  'catalog.image.deregister': GATEWAY,
  'catalog.listing.create': GATEWAY,
  'catalog.listing.update': GATEWAY,
  'catalog.listing.get': GATEWAY,
  'catalog.listing.list': GATEWAY,
  'catalog.seller-profile.get': GATEWAY,
  'catalog.seller-profile.put': GATEWAY,
  'catalog.upload.create': GATEWAY,
  'catalog.upload.get': GATEWAY,
  'catalog.upload.record-part': GATEWAY,
  'catalog.upload.complete': GATEWAY,
  'catalog.upload.abort': GATEWAY,
  'catalog.instance.launch': GATEWAY,
  'catalog.instance.list': GATEWAY,
  'catalog.instance.get': GATEWAY,
  'catalog.instance.terminate': GATEWAY,
  /** The permission service's projection of images, rebuilt on demand. */
  'catalog.image.internal-get': ['permission'],
  /** Billing prices a product's usage by its seller. */
  'catalog.product.get': ['billing'],
  /** Operators' tools only: the publishing flow changes states through verified bundling events. */
  'catalog.image.set-state': ['operator'],
  'catalog.image.record-launches': ['operator'],
  'catalog.instance.internal-get': ['operator'],

  // billing
  'billing.health.ping': HEALTH,
  'billing.platform-pricing.get': GATEWAY,
  'billing.platform-pricing.put': GATEWAY,
  'billing.product-pricing.get': GATEWAY,
  'billing.product-pricing.put': GATEWAY,
  'billing.subscription.create': GATEWAY,
  'billing.subscription.list': GATEWAY,
  'billing.subscription.get': GATEWAY,
  'billing.subscription.cancel': GATEWAY,
  'billing.usage.get': GATEWAY,
  'billing.invoice.list': GATEWAY,
  'billing.invoice.get': GATEWAY,
  'billing.revenue.get': GATEWAY,
  /** A Stripe event whose signature the gateway checked on the raw body. */
  'billing.stripe.event': GATEWAY,
  /** The permission service asks for entitlements of paid images. */
  'billing.entitlement.check': ['permission'],
  /** The catalog quotes prices for listings and launches. */
  'billing.pricing.quote': ['catalog'],
  /** Month close runs inside billing on its schedule; by hand only from an operator's tool. */
  'billing.invoices.close-month': ['operator'],
};

/**
 * The one process that may publish a domain event: the service its type is named after
 * (`bundling.bundle.verified` comes from the bundler-worker, `catalog.image.changed` from the catalog).
 */
export function eventProducer(type: string): SigningProcess | undefined {
  const owner = type.split('.')[0];
  if (owner === 'bundling') return 'bundler-worker';
  return owner === 'catalog' || owner === 'billing' || owner === 'permission' ? owner : undefined;
}

/** The processes allowed to send `pattern`; empty for a pattern nobody may send. */
export function allowedSenders(pattern: string): readonly SigningProcess[] {
  return Object.hasOwn(PATTERN_SENDERS, pattern) ? PATTERN_SENDERS[pattern] : [];
}

export function isSigningProcess(value: unknown): value is SigningProcess {
  return typeof value === 'string' && (SIGNING_PROCESSES as readonly string[]).includes(value);
}
