/**
 * Every error the platform returns carries one of these codes. They are part of the public API:
 * clients match on them, so a code is never renamed or reused for something else. Where EC2 has a
 * code for the same condition, it is EC2's.
 */
export const ErrorCode = {
  // 400
  InvalidParameterValue: 'InvalidParameterValue',
  MalformedRequest: 'MalformedRequest',
  InvalidAccountIDMalformed: 'InvalidAccountID.Malformed',
  InvalidAMIIDMalformed: 'InvalidAMIID.Malformed',
  InvalidAMINameMalformed: 'InvalidAMIName.Malformed',
  InvalidAMIAttributeItemValue: 'InvalidAMIAttributeItemValue',
  InvalidFilter: 'InvalidFilter',
  InvalidPaginationToken: 'InvalidPaginationToken',
  InvalidListingIDMalformed: 'InvalidListingID.Malformed',
  InvalidProductCodeMalformed: 'InvalidProductCode.Malformed',
  InvalidSubscriptionIDMalformed: 'InvalidSubscriptionID.Malformed',
  InvalidInvoiceIDMalformed: 'InvalidInvoiceID.Malformed',
  InvalidInstanceType: 'InvalidInstanceType',
  InvalidUploadIDMalformed: 'InvalidUploadID.Malformed',
  /** A webhook whose signature does not match its body under the endpoint's secret. */
  SignatureDoesNotMatch: 'SignatureDoesNotMatch',
  /** A signed request (a webhook) whose timestamp is too old: a replay is refused. */
  RequestExpired: 'RequestExpired',
  /** A signing key that is not a readable public key of a type and size manifests may be signed with. */
  InvalidKeyPairFormat: 'InvalidKeyPair.Format',
  /** A seller-made bundle's manifest: unreadable, outside the format, or wrapped for another platform key. */
  InvalidManifest: 'InvalidManifest',
  /** A manifest not signed by an active signing key of the uploading account, or changed after signing. */
  InvalidManifestSignature: 'InvalidManifest.Signature',
  InvalidInstanceIDMalformed: 'InvalidInstanceID.Malformed',
  /** More instances than the account may have running (pending and running count). */
  InstanceLimitExceeded: 'InstanceLimitExceeded',
  /** A seller-made bundle whose signing key was revoked after its upload was opened. */
  InvalidManifestSignerRevoked: 'InvalidManifest.SignerRevoked',
  /** More pending images than a seller may have at once. */
  ResourceLimitExceeded: 'ResourceLimitExceeded',
  /** More open uploads, or more bytes in open uploads, than a seller may have at once. */
  UploadLimitExceeded: 'UploadLimitExceeded',
  // 401, 403
  AuthFailure: 'AuthFailure',
  UnauthorizedOperation: 'UnauthorizedOperation',
  /**
   * A message on the bus whose signed caller assertion is missing, forged, expired, replayed,
   * bound to another payload, or from a process not allowed to send it (never seen by people:
   * the gateway answers its own calls' refusals as InternalError).
   */
  InvalidCallerAssertion: 'InvalidCallerAssertion',
  /** A manifest whose `image/user` is another account than the uploading one. */
  InvalidManifestUser: 'InvalidManifest.User',
  /** A paid image launched without an active subscription to its product. */
  OptInRequired: 'OptInRequired',
  // 404, 405
  RouteNotFound: 'RouteNotFound',
  MethodNotAllowed: 'MethodNotAllowed',
  InvalidAccountIDNotFound: 'InvalidAccountID.NotFound',
  InvalidKeyIDNotFound: 'InvalidKeyID.NotFound',
  InvalidAMIIDNotFound: 'InvalidAMIID.NotFound',
  InvalidListingIDNotFound: 'InvalidListingID.NotFound',
  InvalidProductCodeNotFound: 'InvalidProductCode.NotFound',
  InvalidSubscriptionIDNotFound: 'InvalidSubscriptionID.NotFound',
  InvalidInvoiceIDNotFound: 'InvalidInvoiceID.NotFound',
  InvalidUploadIDNotFound: 'InvalidUploadID.NotFound',
  InvalidKeyPairNotFound: 'InvalidKeyPair.NotFound',
  InvalidInstanceIDNotFound: 'InvalidInstanceID.NotFound',
  // 409
  AccountAlreadyExists: 'AccountAlreadyExists',
  IncorrectState: 'IncorrectState',
  InvalidAMINameDuplicate: 'InvalidAMIName.Duplicate',
  InvalidKeyPairDuplicate: 'InvalidKeyPair.Duplicate',
  SubscriptionAlreadyExists: 'SubscriptionAlreadyExists',
  /** An image that is pending, failed or deregistered cannot be launched. */
  InvalidAMIIDUnavailable: 'InvalidAMIID.Unavailable',
  /** The same client token with a different launch request. */
  IdempotentParameterMismatch: 'IdempotentParameterMismatch',
  // 408, 413, 415, 429, 431
  /** The request (its headers, or all of it) did not arrive within the gateway's timeouts. */
  RequestTimeout: 'RequestTimeout',
  PayloadTooLarge: 'PayloadTooLarge',
  UnsupportedMediaType: 'UnsupportedMediaType',
  RequestLimitExceeded: 'RequestLimitExceeded',
  /** The request line and headers together are larger than the gateway reads (16 KiB). */
  RequestHeaderFieldsTooLarge: 'RequestHeaderFieldsTooLarge',
  // 5xx
  InternalError: 'InternalError',
  ServiceUnavailable: 'ServiceUnavailable',
  ServiceTimeout: 'ServiceTimeout',
} as const;

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** The HTTP status each code answers with: the one table the gateway maps errors by. */
export const ERROR_STATUS: Record<ErrorCode, number> = {
  InvalidParameterValue: 400,
  MalformedRequest: 400,
  'InvalidAccountID.Malformed': 400,
  'InvalidAMIID.Malformed': 400,
  'InvalidAMIName.Malformed': 400,
  InvalidAMIAttributeItemValue: 400,
  InvalidFilter: 400,
  InvalidPaginationToken: 400,
  'InvalidListingID.Malformed': 400,
  'InvalidProductCode.Malformed': 400,
  'InvalidSubscriptionID.Malformed': 400,
  'InvalidInvoiceID.Malformed': 400,
  InvalidInstanceType: 400,
  'InvalidUploadID.Malformed': 400,
  SignatureDoesNotMatch: 400,
  RequestExpired: 400,
  'InvalidKeyPair.Format': 400,
  InvalidManifest: 400,
  'InvalidManifest.Signature': 400,
  'InvalidInstanceID.Malformed': 400,
  InstanceLimitExceeded: 400,
  'InvalidManifest.SignerRevoked': 400,
  ResourceLimitExceeded: 400,
  UploadLimitExceeded: 400,
  AuthFailure: 401,
  UnauthorizedOperation: 403,
  InvalidCallerAssertion: 403,
  'InvalidManifest.User': 403,
  OptInRequired: 403,
  RouteNotFound: 404,
  MethodNotAllowed: 405,
  'InvalidAccountID.NotFound': 404,
  'InvalidKeyID.NotFound': 404,
  'InvalidAMIID.NotFound': 404,
  'InvalidListingID.NotFound': 404,
  'InvalidProductCode.NotFound': 404,
  'InvalidSubscriptionID.NotFound': 404,
  'InvalidInvoiceID.NotFound': 404,
  'InvalidUploadID.NotFound': 404,
  'InvalidKeyPair.NotFound': 404,
  'InvalidInstanceID.NotFound': 404,
  AccountAlreadyExists: 409,
  IncorrectState: 409,
  'InvalidAMIName.Duplicate': 409,
  'InvalidKeyPair.Duplicate': 409,
  SubscriptionAlreadyExists: 409,
  'InvalidAMIID.Unavailable': 409,
  IdempotentParameterMismatch: 409,
  RequestTimeout: 408,
  PayloadTooLarge: 413,
  UnsupportedMediaType: 415,
  RequestLimitExceeded: 429,
  RequestHeaderFieldsTooLarge: 431,
  InternalError: 500,
  ServiceUnavailable: 503,
  ServiceTimeout: 504,
};

/** One field that failed validation. */
export interface FieldError {
  path: string;
  message: string;
}

/**
 * The error a service returns over RPC, and the core of the problem+json body the gateway
 * answers with. `detail` is written for a person; it never holds a stack trace or a secret.
 */
export interface ErrorBody {
  code: ErrorCode;
  detail: string;
  errors?: FieldError[];
}

const CODES = new Set<string>(Object.values(ErrorCode));

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && CODES.has(value);
}

export function isErrorBody(value: unknown): value is ErrorBody {
  return (
    typeof value === 'object' &&
    value !== null &&
    isErrorCode((value as { code?: unknown }).code) &&
    typeof (value as { detail?: unknown }).detail === 'string'
  );
}
