import { Buffer } from 'node:buffer';
import { PART_FILENAME_RULE, manifestTextProblem, partFilenameProblem } from '@imagemart/contracts';
import { FORMAT_VERSION, GCM_TAG_BYTES, LIMITS, NONCE_SCHEME } from './bundle-format.constants.js';
import { type BundleErrorCode, BundleFormatError } from './bundle-format.exception.js';
import {
  ARCHITECTURES,
  COMPRESSION_ALGORITHMS,
  IMAGE_TYPES,
  SIGNATURE_ALGORITHMS,
  VIRTUALIZATION_TYPES,
  type ImageDescription,
  type MachineConfiguration,
  type Manifest,
  type ManifestPart,
  type UnsignedManifest,
} from './manifest.types.js';

/**
 * The rules every manifest field obeys, shared by the writer (code InvalidParameter) and the
 * parser (code ManifestMalformed). Values never hold control characters, characters XML does not
 * allow, or white space of any kind at either end, which keeps the signed canonical form (one
 * `key=value` line each) unambiguous and every manifest readable by any XML parser. Text rules and
 * part names are the contracts' functions, shared with the API's schemas and the object store.
 */

type Code = typeof BundleErrorCode.InvalidParameter | typeof BundleErrorCode.ManifestMalformed;

const TOKEN = /^[A-Za-z0-9._-]{1,64}$/;
const DEVICE = /^[A-Za-z0-9._/-]{1,64}$/;
const HEX_DIGEST = /^[0-9a-f]{64}$/;
const KEY_ID = /^sha256:[0-9a-f]{64}$/;
const USER = /^\d{12}$/;

export class FieldCheck {
  constructor(private readonly code: Code) {}

  fail(field: string, problem: string): never {
    throw new BundleFormatError(this.code, `${field} ${problem}`);
  }

  /** Text of 1 to `max` characters (code points): see manifestTextProblem. */
  text(field: string, value: unknown, max: number): string {
    if (typeof value !== 'string' || value.length === 0) this.fail(field, 'is required');
    const problem = manifestTextProblem(value, max);
    if (problem) this.fail(field, problem);
    return value;
  }

  optionalText(field: string, value: unknown, max: number): string | undefined {
    return value === undefined ? undefined : this.text(field, value, max);
  }

  pattern(field: string, value: unknown, pattern: RegExp, hint: string): string {
    if (typeof value !== 'string' || !pattern.test(value)) this.fail(field, `must be ${hint}`);
    return value;
  }

  oneOf<T extends string>(field: string, value: unknown, allowed: readonly T[]): T {
    if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
      this.fail(field, `must be one of ${allowed.join(', ')} (got ${JSON.stringify(value)})`);
    }
    return value as T;
  }

  integer(field: string, value: unknown, min: number, max: number = Number.MAX_SAFE_INTEGER): number {
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
      this.fail(field, `must be an integer from ${min} to ${max}`);
    }
    return value;
  }

  digest(field: string, value: unknown): string {
    return this.pattern(field, value, HEX_DIGEST, '64 lowercase hex digits (SHA-256)');
  }

  keyId(field: string, value: unknown): string {
    return this.pattern(field, value, KEY_ID, '"sha256:" and 64 lowercase hex digits');
  }

  base64(field: string, value: unknown, minBytes: number, maxBytes: number): string {
    const bytes =
      typeof value === 'string' && /^[A-Za-z0-9+/]*={0,2}$/.test(value)
        ? Buffer.from(value, 'base64')
        : undefined;
    // Canonical base64 only: one spelling per byte string.
    if (!bytes || bytes.toString('base64') !== value) this.fail(field, 'must be canonical base64');
    if (bytes.length < minBytes || bytes.length > maxBytes)
      this.fail(field, `must decode to ${minBytes}-${maxBytes} bytes`);
    return value;
  }
}

export function checkMachineConfiguration(check: FieldCheck, mc: MachineConfiguration): void {
  check.oneOf('architecture', mc.architecture, ARCHITECTURES);
  if (mc.virtualizationType !== undefined)
    check.oneOf('virtualization_type', mc.virtualizationType, VIRTUALIZATION_TYPES);
  if (mc.kernelId !== undefined)
    check.pattern('kernel_id', mc.kernelId, TOKEN, 'an id of letters, digits, ".", "_" or "-"');
  if (mc.ramdiskId !== undefined)
    check.pattern('ramdisk_id', mc.ramdiskId, TOKEN, 'an id of letters, digits, ".", "_" or "-"');
  if (!Array.isArray(mc.blockDeviceMapping) || mc.blockDeviceMapping.length > 64)
    check.fail('block_device_mapping', 'must be a list of at most 64 mappings');
  mc.blockDeviceMapping.forEach((m, i) => {
    check.pattern(
      `block_device_mapping[${i}].virtual`,
      m.virtual,
      TOKEN,
      'a name such as ami, root, swap or ephemeral0',
    );
    check.pattern(
      `block_device_mapping[${i}].device`,
      m.device,
      DEVICE,
      'a device such as sda1 or /dev/xvda',
    );
  });
  if (!Array.isArray(mc.productCodes) || mc.productCodes.length > 32)
    check.fail('product_codes', 'must be a list of at most 32 codes');
  mc.productCodes.forEach((c, i) =>
    check.pattern(`product_codes[${i}]`, c, TOKEN, 'a code of letters, digits, ".", "_" or "-"'),
  );
  if (new Set(mc.productCodes).size !== mc.productCodes.length)
    check.fail('product_codes', 'must not repeat a code');
}

export function checkImageDescription(check: FieldCheck, image: ImageDescription): void {
  check.text('image name', image.name, 128);
  check.optionalText('image_version', image.version, 64);
  check.optionalText('description', image.description, 255);
  check.pattern('user', image.user, USER, 'a 12-digit account id');
  check.oneOf('type', image.type, IMAGE_TYPES);
}

/** A part's file name: one object key segment that is not the manifest's name (partFilenameProblem). */
export function checkPartFilename(check: FieldCheck, field: string, filename: unknown): void {
  if (typeof filename !== 'string') check.fail(field, `must be ${PART_FILENAME_RULE}`);
  const problem = partFilenameProblem(filename);
  if (problem)
    check.fail(
      field,
      `${JSON.stringify(filename.slice(0, 40))} ${problem}: a part name is ${PART_FILENAME_RULE}`,
    );
}

/** The sealed size of each part, from the part size, the part count and the bundled size. */
export function partSizes(partSize: number, count: number, bundledSize: number): number[] {
  const last = bundledSize - (count - 1) * partSize;
  return Array.from({ length: count }, (_, i) => (i === count - 1 ? last : partSize));
}

/** Every field and every cross-field rule of a manifest. */
export function checkManifest(check: FieldCheck, m: UnsignedManifest | Manifest): void {
  const version: number = m.formatVersion; // a literal type, but a parsed or given value may differ
  if (version !== FORMAT_VERSION) check.fail('version', `must be ${FORMAT_VERSION}`);
  check.pattern('bundler name', m.bundler.name, TOKEN, 'a token');
  check.pattern('bundler version', m.bundler.version, /^[A-Za-z0-9.+_-]{1,64}$/, 'a version');
  checkMachineConfiguration(check, m.machineConfiguration);
  checkImageDescription(check, m.image);
  check.digest('image digest', m.image.digest);
  check.integer('size', m.image.size, 0);
  check.oneOf('compression algorithm', m.compression.algorithm, COMPRESSION_ALGORITHMS);
  check.integer('block_size', m.compression.blockSize, LIMITS.minBlockSize, LIMITS.maxBlockSize);

  const enc = m.encryption;
  check.oneOf('encryption algorithm', enc.algorithm, ['AES-256-GCM']);
  check.integer('part_size', enc.partSize, LIMITS.minPartSize, LIMITS.maxPartSize);
  check.oneOf('nonce_scheme', enc.nonceScheme, [NONCE_SCHEME]);
  check.pattern('salt', enc.salt, /^[0-9a-f]{8}$/, '8 lowercase hex digits');
  check.oneOf('wrapped_key algorithm', enc.keyWrapping.algorithm, ['RSA-OAEP-SHA256']);
  check.keyId('wrapped_key key_id', enc.keyWrapping.keyId);
  check.base64('wrapped_key', enc.keyWrapping.wrappedKey, LIMITS.minRsaBits / 8, 1024);
  if (enc.ownerKeyWrapping !== undefined) {
    check.oneOf('owner_wrapped_key algorithm', enc.ownerKeyWrapping.algorithm, ['RSA-OAEP-SHA256']);
    check.keyId('owner_wrapped_key key_id', enc.ownerKeyWrapping.keyId);
    check.base64('owner_wrapped_key', enc.ownerKeyWrapping.wrappedKey, LIMITS.minRsaBits / 8, 1024);
  }

  const count = m.parts.length;
  if (count < 1 || count > LIMITS.parts)
    check.fail('parts', `must list 1 to ${LIMITS.parts} parts (got ${count})`);
  // Every part but the last is full; the last holds at least one byte besides its tag.
  const bundled = check.integer('bundled_size', m.image.bundledSize, GCM_TAG_BYTES + 1);
  if (bundled > count * enc.partSize || bundled < (count - 1) * enc.partSize + GCM_TAG_BYTES + 1) {
    check.fail('bundled_size', `${bundled} does not fit ${count} parts of ${enc.partSize} bytes`);
  }
  const sizes = partSizes(enc.partSize, count, bundled);
  const names = new Set<string>();
  m.parts.forEach((p: ManifestPart, i) => {
    if (p.index !== i)
      check.fail('parts', `must be listed in order from index 0 (found index ${p.index} at position ${i})`);
    checkPartFilename(check, `part ${i} filename`, p.filename);
    // Distinct in any letter case: a case-insensitive file system would put two in one file.
    const name = p.filename.toLowerCase();
    if (names.has(name)) check.fail(`part ${i} filename`, `repeats ${p.filename} (letter case aside)`);
    names.add(name);
    check.digest(`part ${i} digest`, p.digest);
    if (p.size !== sizes[i]) check.fail(`part ${i} size`, `must be ${sizes[i]}`);
  });

  if ('signature' in m) {
    check.oneOf('signature algorithm', m.signature.algorithm, SIGNATURE_ALGORITHMS);
    check.keyId('signature key_id', m.signature.keyId);
    check.base64('signature', m.signature.value, LIMITS.minSignatureBytes, LIMITS.maxSignatureBytes);
  }
}
