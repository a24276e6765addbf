import { Buffer } from 'node:buffer';
import { generateKeyPairSync } from 'node:crypto';
import { Readable } from 'node:stream';
import { beforeAll, describe, expect, it } from 'vitest';
import { BundleErrorCode, BundleFormatError } from './bundle-format.exception.js';
import { verifyBundleIntegrity } from './bundle.integrity.js';
import { unbundle } from './bundle.reader.js';
import { MemoryStore, bundleOptions, imageBytes, sha256 } from './bundle.fixture.js';
import { bundle, type BundleResult } from './bundle.writer.js';
import { generatePlatformKeys, keyFingerprint, type KeyPair, type PlatformKeys } from './keys.crypto.js';
import { parseManifest } from './manifest.xml.js';

const KiB = 1024;
const IMAGE = imageBytes(300 * KiB);

async function failure(promise: Promise<unknown>): Promise<BundleFormatError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(BundleFormatError);
  return error as BundleFormatError;
}

describe("a seller's bundle: wrapped for the owner too, and checkable without any private key", () => {
  let keys: PlatformKeys;
  let owner: KeyPair;
  let stranger: KeyPair;
  let store: MemoryStore;
  let result: BundleResult;

  beforeAll(async () => {
    keys = await generatePlatformKeys();
    owner = generateKeyPairSync('rsa', { modulusLength: 2048 });
    stranger = generateKeyPairSync('rsa', { modulusLength: 2048 });
    store = new MemoryStore();
    result = await bundle(
      [IMAGE],
      bundleOptions(keys, store, {
        partSize: 64 * KiB,
        blockSize: 32 * KiB,
        ownerPublicKey: owner.publicKey,
      }),
    );
    expect(result.parts.length).toBeGreaterThan(2);
  });

  function copyOf(change: (parts: Map<string, Buffer>) => void): MemoryStore {
    const copy = new MemoryStore();
    for (const [name, data] of store.parts) copy.parts.set(name, Buffer.from(data));
    change(copy.parts);
    return copy;
  }

  it("wraps the data key for the owner's key beside the platform's, in the signed manifest", () => {
    expect(result.manifestXml).toContain(
      `<owner_wrapped_key algorithm="RSA-OAEP-SHA256" key_id="${keyFingerprint(owner.publicKey)}">`,
    );
    const manifest = parseManifest(result.manifestXml);
    expect(manifest.encryption.ownerKeyWrapping?.keyId).toBe(keyFingerprint(owner.publicKey));
    expect(manifest.encryption.keyWrapping.keyId).toBe(keyFingerprint(keys.wrapping.publicKey));
  });

  it('is fully verified by the owner with his own private key, and by the platform with its own', async () => {
    for (const privateKey of [owner.privateKey, keys.wrapping.privateKey]) {
      const verified = await unbundle(result.manifestXml, {
        readPart: store.read,
        privateKey,
        signerPublicKey: keys.signing.publicKey,
      });
      expect(verified).toMatchObject({ digest: sha256(IMAGE), size: IMAGE.length });
    }
    const error = await failure(
      unbundle(result.manifestXml, {
        readPart: store.read,
        privateKey: stranger.privateKey,
        signerPublicKey: keys.signing.publicKey,
      }),
    );
    expect(error.code).toBe(BundleErrorCode.KeyUnwrapFailed);
    expect(error.message).toContain(keyFingerprint(owner.publicKey));
  });

  it('is checked by anyone with the public keys: signature, every part size and digest, streamed', async () => {
    const checked: number[] = [];
    const streamed = (part: { filename: string }) => {
      const data = store.parts.get(part.filename)!;
      // Small chunks: the check hashes them as they come, holding none.
      return Readable.from(
        Array.from({ length: Math.ceil(data.length / 1000) }, (_, i) =>
          data.subarray(i * 1000, (i + 1) * 1000),
        ),
      );
    };
    const verified = await verifyBundleIntegrity(result.manifestXml, {
      readPart: streamed,
      signerPublicKey: keys.signing.publicKey,
      onProgress: (n) => checked.push(n),
    });
    expect(verified).toMatchObject({ bundledSize: result.bundledSize, parts: result.parts.length });
    expect(checked.at(-1)).toBe(result.bundledSize);
  });

  it('finds a changed, truncated, longer or missing part, and a wrong signer, in part order', async () => {
    const [first, second] = result.parts;
    const check = (from: MemoryStore, signer = keys.signing.publicKey) =>
      failure(
        verifyBundleIntegrity(result.manifestXml, {
          readPart: from.read,
          signerPublicKey: signer,
          concurrency: 4,
        }),
      );

    const flipped = await check(copyOf((p) => p.get(second.filename)![100]++));
    expect(flipped).toMatchObject({ code: BundleErrorCode.DigestMismatch, partIndex: 1 });
    const truncated = await check(copyOf((p) => p.set(second.filename, p.get(second.filename)!.subarray(1))));
    expect(truncated).toMatchObject({ code: BundleErrorCode.PartSizeMismatch, partIndex: 1 });
    const longer = await check(
      copyOf((p) => p.set(first.filename, Buffer.concat([p.get(first.filename)!, Buffer.from([0])]))),
    );
    expect(longer).toMatchObject({ code: BundleErrorCode.PartSizeMismatch, partIndex: 0 });
    const missing = await check(copyOf((p) => p.delete(first.filename)));
    expect(missing).toMatchObject({ code: BundleErrorCode.PartMissing, partIndex: 0 });
    // Two bad parts: the earlier one is reported, whichever finishes first.
    const both = await check(
      copyOf((p) => {
        p.get(second.filename)![0]++;
        p.set(first.filename, p.get(first.filename)!.subarray(5));
      }),
    );
    expect(both.partIndex).toBe(0);
    const other = await generatePlatformKeys();
    expect((await check(store, other.signing.publicKey)).code).toBe(BundleErrorCode.SignatureInvalid);
  });

  it('refuses an owner key that cannot wrap (not RSA) before reading the image', async () => {
    const error = await failure(
      bundle([IMAGE], bundleOptions(keys, new MemoryStore(), { ownerPublicKey: keys.signing.publicKey })),
    );
    expect(error.code).toBe(BundleErrorCode.InvalidKey);
  });
});
