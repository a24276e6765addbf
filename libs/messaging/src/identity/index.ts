// The assertion format and its keys are contracts (libs/contracts: service-identity, caller-assertions);
// what needs Redis or the process's settings is here.
export { CallerVerifier, type CallerVerifierOptions, type ReceivedRequest } from './caller-assertions.js';
export { processIdentity, type ProcessIdentity } from './identity.config.js';
