/** Request patterns answered by the permission service. */
export const PermissionPattern = {
  accountCreate: 'permission.account.create',
  accountGet: 'permission.account.get',
  accountList: 'permission.account.list',
  apiKeyIssue: 'permission.apikey.issue',
  apiKeyList: 'permission.apikey.list',
  apiKeyRevoke: 'permission.apikey.revoke',
  apiKeyAuthenticate: 'permission.apikey.authenticate',
} as const;

/** Events the permission service publishes through its outbox. */
export const PermissionEvent = {
  accountCreated: 'permission.account.created',
  apiKeyIssued: 'permission.apikey.issued',
  apiKeyRevoked: 'permission.apikey.revoked',
} as const;
