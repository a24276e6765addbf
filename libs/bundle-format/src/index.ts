export * from './bundle-format.constants.js';
export {
  BundleErrorCode,
  BundleFormatError,
  isBundleFormatError,
  type BundleFormatErrorOptions,
} from './bundle-format.exception.js';
export * from './manifest.types.js';
export { buildManifest, parseManifest } from './manifest.xml.js';
export {
  SIGNATURE_INPUT_HEADER,
  signManifest,
  signatureInput,
  verifyManifestSignature,
} from './manifest.signature.js';
export * from './keys.crypto.js';
export { openPart, partNonce, sealPart } from './part.cipher.js';
export {
  bundle,
  defaultPartPrefix,
  partFilename,
  type BundleOptions,
  type BundlePart,
  type BundleResult,
  type PartSink,
} from './bundle.writer.js';
export {
  verifyBundleIntegrity,
  type VerifyIntegrityOptions,
  type VerifyIntegrityResult,
} from './bundle.integrity.js';
export {
  readSignedManifest,
  unbundle,
  type PartSource,
  type UnbundleOptions,
  type UnbundleResult,
} from './bundle.reader.js';
