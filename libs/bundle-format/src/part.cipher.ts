import { Buffer } from 'node:buffer';
import { createCipheriv, createDecipheriv } from 'node:crypto';
import { DATA_KEY_BYTES, GCM_TAG_BYTES, NONCE_BYTES, SALT_BYTES } from './bundle-format.constants.js';
import { BundleErrorCode, BundleFormatError } from './bundle-format.exception.js';

/**
 * Each part is sealed on its own with AES-256-GCM, so parts can be sealed and opened in any
 * order or in parallel. Nonce = 4-byte bundle salt || part index as 8-byte big-endian: unique
 * per part under a key that is itself fresh per bundle. The associated data is one byte,
 * 0x01 on the last part and 0x00 on the others, so dropping trailing parts is detected by
 * the cipher alone (the STREAM construction), not only by the signed part count.
 */

export function partNonce(salt: Buffer, index: number): Buffer {
  if (salt.length !== SALT_BYTES) throw new RangeError(`salt must be ${SALT_BYTES} bytes`);
  const nonce = Buffer.alloc(NONCE_BYTES);
  salt.copy(nonce, 0);
  nonce.writeBigUInt64BE(BigInt(index), SALT_BYTES);
  return nonce;
}

function aad(last: boolean): Buffer {
  return Buffer.from([last ? 1 : 0]);
}

/** Slices of this size through the cipher keep its temporary buffers small. */
const SLICE = 256 * 1024;

/** ciphertext || 16-byte tag: exactly `plaintext.length + 16` bytes. */
export function sealPart(key: Buffer, salt: Buffer, index: number, last: boolean, plaintext: Buffer): Buffer {
  if (key.length !== DATA_KEY_BYTES) throw new RangeError(`data key must be ${DATA_KEY_BYTES} bytes`);
  const cipher = createCipheriv('aes-256-gcm', key, partNonce(salt, index), { authTagLength: GCM_TAG_BYTES });
  cipher.setAAD(aad(last));
  const sealed = Buffer.allocUnsafe(plaintext.length + GCM_TAG_BYTES);
  for (let at = 0; at < plaintext.length; at += SLICE)
    cipher.update(plaintext.subarray(at, at + SLICE)).copy(sealed, at);
  cipher.final();
  cipher.getAuthTag().copy(sealed, plaintext.length);
  return sealed;
}

/**
 * The plaintext of a sealed part; DecryptionFailed if the tag does not verify. With `inPlace`
 * the plaintext overwrites `sealed` (saving a part-sized buffer); nothing of it is returned
 * unless the tag verifies.
 */
export function openPart(
  key: Buffer,
  salt: Buffer,
  index: number,
  last: boolean,
  sealed: Buffer,
  options: { inPlace?: boolean } = {},
): Buffer {
  const failure = (cause?: unknown) =>
    new BundleFormatError(
      BundleErrorCode.DecryptionFailed,
      `part ${index} does not decrypt: its authentication tag does not match`,
      {
        cause,
        partIndex: index,
      },
    );
  if (sealed.length < GCM_TAG_BYTES) throw failure();
  const decipher = createDecipheriv('aes-256-gcm', key, partNonce(salt, index), {
    authTagLength: GCM_TAG_BYTES,
  });
  decipher.setAAD(aad(last));
  decipher.setAuthTag(sealed.subarray(sealed.length - GCM_TAG_BYTES));
  const ciphertext = sealed.subarray(0, sealed.length - GCM_TAG_BYTES);
  const plaintext = options.inPlace ? ciphertext : Buffer.allocUnsafe(ciphertext.length);
  for (let at = 0; at < ciphertext.length; at += SLICE)
    decipher.update(ciphertext.subarray(at, at + SLICE)).copy(plaintext, at);
  try {
    decipher.final();
  } catch (error) {
    throw failure(error);
  }
  return plaintext;
}
