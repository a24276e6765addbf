export {
  ASSERTION_CLOCK_SKEW_MS,
  CallerSigner,
  type AssertionMaker,
  CallerVerifier,
  DEFAULT_ASSERTION_TTL_MS,
  EVENT_ASSERTION_TTL_MS,
  eventAssertion,
  verifyEventAssertion,
  type CallerVerifierOptions,
  type ReceivedRequest,
} from './caller-assertions.js';
export { processIdentity, type ProcessIdentity } from './identity.config.js';
export {
  AssertionRefused,
  IdentityConfigError,
  formatTrustedKeys,
  generateIdentityKeyPair,
  keyId,
  parseServiceIdentity,
  parseTrustedKeys,
  payloadDigest,
  readAssertion,
  signAssertion,
  type AssertionClaims,
  type AssertionRefusal,
  type ServiceIdentity,
  type TrustedKeys,
} from './service-identity.js';
