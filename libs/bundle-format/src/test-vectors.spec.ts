import { Buffer } from 'node:buffer';
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { unbundle } from './bundle.reader.js';
import { sha256 } from './bundle.fixture.js';
import { bundle, type BundlePart } from './bundle.writer.js';
import { keyFingerprint, unwrapBundleDataKey, unwrapDataKey, type PlatformKeys } from './keys.crypto.js';
import { signManifest, signatureInput, verifyManifestSignature } from './manifest.signature.js';
import { buildManifest, parseManifest } from './manifest.xml.js';
import { openPart, partNonce } from './part.cipher.js';
import {
  VECTOR_CASES,
  VECTOR_DATA_KEY,
  VECTOR_IMAGE,
  VECTOR_SALT,
  readVectorBlocks,
  vectorOptions,
} from './test-vectors.fixture.js';

/**
 * docs/bundle-format.md carries test vectors; this checks them against the code, so the doc
 * cannot drift. If the compressor library changes its output, the part bytes change too:
 * regenerate the vectors with libs/bundle-format/scripts/print-test-vectors.mjs, on purpose.
 */
const doc = readFileSync(new URL('../../../docs/bundle-format.md', import.meta.url), 'utf8');
const blocks = readVectorBlocks(doc);

function block(name: string): string {
  const text = blocks.get(name);
  if (text === undefined) throw new Error(`docs/bundle-format.md has no vector block "${name}"`);
  return text;
}
const hex = (name: string) => Buffer.from(block(name).replace(/\s+/g, ''), 'hex');

const wrapping = createPrivateKey(block('keys wrapping-private'));
const signing = createPrivateKey(block('keys signing-private'));
const keys: PlatformKeys = {
  wrapping: { privateKey: wrapping, publicKey: createPublicKey(wrapping) },
  signing: { privateKey: signing, publicKey: createPublicKey(signing) },
};
const ownerKey = createPrivateKey(block('keys owner-private'));

describe('the test vectors of docs/bundle-format.md', () => {
  it('state the image digest and the keys the code uses', () => {
    expect(doc).toContain(`Image: ${VECTOR_IMAGE.length} bytes, SHA-256 \`${sha256(VECTOR_IMAGE)}\``);
    expect(wrapping.asymmetricKeyDetails?.modulusLength).toBe(3072);
    expect(signing.asymmetricKeyType).toBe('ed25519');
    expect(ownerKey.asymmetricKeyDetails?.modulusLength).toBe(2048);
  });

  describe.each(VECTOR_CASES)('vector $id', ({ id, compression, level, owner }) => {
    const xml = block(`${id} manifest`);
    const manifest = parseManifest(xml);
    const ownerPublicKey = owner ? createPublicKey(ownerKey) : undefined;

    it('is what our writer produces from these inputs, part for part', async () => {
      const parts: BundlePart[] = [];
      const result = await bundle(
        [VECTOR_IMAGE],
        vectorOptions(keys, compression, level, (p) => Promise.resolve(void parts.push(p)), ownerPublicKey),
      );
      expect(parts.length, 'part count').toBe(manifest.parts.length);
      for (const part of parts) {
        expect(part.data.toString('hex'), `part ${part.index} bytes (compressor output changed?)`).toBe(
          hex(`${id} part-${part.index}`).toString('hex'),
        );
        expect(part).toMatchObject({
          filename: manifest.parts[part.index].filename,
          digest: manifest.parts[part.index].digest,
          size: manifest.parts[part.index].size,
        });
        const last = part.index === parts.length - 1;
        expect(doc).toContain(
          `Part ${part.index}: \`${part.filename}\`, ${part.size} bytes, nonce \`${partNonce(VECTOR_SALT, part.index).toString('hex')}\`, AAD \`${last ? '01' : '00'}\``,
        );
      }
      // With the doc's wrapped keys (RSA-OAEP is randomized), the manifest is the doc's, byte for byte.
      const { signature: _signature, ...unsigned } = result.manifest;
      expect(unsigned.encryption.ownerKeyWrapping?.keyId).toBe(
        ownerPublicKey ? keyFingerprint(ownerPublicKey) : undefined,
      );
      const same = signManifest(
        {
          ...unsigned,
          encryption: {
            ...unsigned.encryption,
            keyWrapping: manifest.encryption.keyWrapping,
            ...(owner ? { ownerKeyWrapping: manifest.encryption.ownerKeyWrapping } : {}),
          },
        },
        keys.signing.privateKey,
      );
      expect(buildManifest(same)).toBe(xml);
    });

    it('has the given compressed stream inside its parts', () => {
      const last = manifest.parts.length - 1;
      const plaintexts = manifest.parts.map((p) =>
        openPart(VECTOR_DATA_KEY, VECTOR_SALT, p.index, p.index === last, hex(`${id} part-${p.index}`)),
      );
      expect(Buffer.concat(plaintexts).toString('hex')).toBe(hex(`${id} compressed`).toString('hex'));
    });

    it('has the given signature input, a signature that verifies, and a deterministic one', () => {
      expect(signatureInput(manifest, manifest.signature)).toBe(block(`${id} signature-input`));
      expect(() => verifyManifestSignature(manifest, keys.signing.publicKey)).not.toThrow();
      expect(manifest.signature.keyId).toBe(keyFingerprint(keys.signing.publicKey));
      expect(signManifest(manifest, keys.signing.privateKey).signature.value).toBe(manifest.signature.value);
    });

    it('wraps the data key for the wrapping key (and the owner key)', () => {
      expect(
        unwrapDataKey(manifest.encryption.keyWrapping, keys.wrapping.privateKey).equals(VECTOR_DATA_KEY),
      ).toBe(true);
      expect(manifest.encryption.ownerKeyWrapping !== undefined).toBe(owner);
      if (owner)
        expect(unwrapBundleDataKey(manifest.encryption, ownerKey).equals(VECTOR_DATA_KEY)).toBe(true);
    });

    it('unbundles to the image', async () => {
      for (const privateKey of owner ? [keys.wrapping.privateKey, ownerKey] : [keys.wrapping.privateKey]) {
        const restored = await unbundle(xml, {
          readPart: (part) => hex(`${id} part-${part.index}`),
          privateKey,
          signerPublicKey: keys.signing.publicKey,
        });
        expect(restored).toMatchObject({ digest: sha256(VECTOR_IMAGE), size: VECTOR_IMAGE.length });
      }
    });
  });
});
