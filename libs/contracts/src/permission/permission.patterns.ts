/** Request patterns answered by the permission service. */
export const PermissionPattern = {
  accountCreate: 'permission.account.create',
  accountGet: 'permission.account.get',
  accountList: 'permission.account.list',
  apiKeyIssue: 'permission.apikey.issue',
  apiKeyList: 'permission.apikey.list',
  apiKeyRevoke: 'permission.apikey.revoke',
  apiKeyAuthenticate: 'permission.apikey.authenticate',
  launchPermissionGet: 'permission.launch-permission.get',
  launchPermissionModify: 'permission.launch-permission.modify',
  launchPermissionReset: 'permission.launch-permission.reset',
  sharedImageList: 'permission.shared-image.list',
  sharedImageRespond: 'permission.shared-image.respond',
  /** The one launch decision every service asks: `LaunchDecisionRequest` → `LaunchDecision`. */
  launchDecide: 'permission.launch.decide',
  auditEventList: 'permission.audit-event.list',
  /** Seller signing keys (the keys that sign manifests of bundles made on a seller's machine). */
  signingKeyRegister: 'permission.signing-key.register',
  signingKeyList: 'permission.signing-key.list',
  signingKeyGet: 'permission.signing-key.get',
  signingKeyRevoke: 'permission.signing-key.revoke',
  /**
   * Internal (services only, no caller): `{ accountId, keyId }` → `SigningKeyView`, revoked or not;
   * 404 `InvalidKeyPair.NotFound`. The catalog (upload complete) and the bundler (verify) check
   * with it that a seller's key is still active.
   */
  signingKeyInternalGet: 'permission.signing-key.internal-get',
} as const;

/**
 * The Redis key of the API-key generation: a counter the permission service increments whenever a
 * key stops being valid (revoked), before it answers. A gateway that caches who holds a key keeps
 * an entry only while the counter is what it was when the entry was made.
 */
export const apiKeyGenerationKey = (prefix: string) => `${prefix}:permission:apikey-generation`;

/** What a launch decision's generation counters count changes of: an image's facts or an account's. */
export type DecisionFactsKind = 'image' | 'account';

/**
 * The counter of changes to one image's or one account's launch-decision facts. The permission
 * service increments it after every such change commits and before the change is acknowledged;
 * whoever keeps a decision may reuse it only while both its counters hold what they held when it
 * was asked for.
 */
export const decisionGenerationKey = (prefix: string, kind: DecisionFactsKind, id: string) =>
  `${prefix}:permission:decision-generation:${kind}:${id}`;

/** Events the permission service publishes through its outbox. */
export const PermissionEvent = {
  accountCreated: 'permission.account.created',
  apiKeyIssued: 'permission.apikey.issued',
  apiKeyRevoked: 'permission.apikey.revoked',
} as const;

