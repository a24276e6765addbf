import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { KeyObject } from 'node:crypto';
import {
  BundleFormatError,
  keyFingerprint,
  loadPrivateKey,
  loadPublicKey,
  parseManifest,
  unbundle,
  verifyBundleIntegrity,
  type Manifest,
  type ManifestPart,
} from '@imagemart/bundle-format';
import { ApiClient } from '../api.client.js';
import { CliError, ExitCode } from '../cli.errors.js';
import { startProgress } from '../progress.js';
import { MANIFEST_FILE } from './bundle.command.js';

export interface VerifyCommandOptions {
  bundle: string;
  /** The signer's public key (PEM; a private key's PEM gives its public half). */
  signerKey?: string;
  /** An RSA private key the data key is wrapped for: with it, the full profile. */
  key?: string;
  keyPassphrase?: string;
  api?: string;
  json: boolean;
}

/** What `verify --json` prints: one JSON object. */
export interface VerifyReport {
  ok: boolean;
  /** integrity: signature, part sizes and digests (no private key); full: also decrypted, decompressed, image digest. */
  profile: 'integrity' | 'full';
  manifest: string;
  signerKeyId?: string;
  /** Key ids the data key is wrapped for (the platform's, and the owner's if the bundle has one). */
  wrappedFor?: string[];
  parts?: number;
  bundledSize?: number;
  imageSize?: number;
  imageDigest?: string;
  error?: { code: string; message: string; partIndex?: number };
}

async function readText(file: string, what: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    throw new CliError(`cannot read ${what} ${file}: ${(err as Error).message}`, undefined, false, {
      cause: err,
    });
  }
}

/** The expected signer: `--signer-key`, else the platform's signing key from `--api`. */
async function signerOf(options: VerifyCommandOptions): Promise<KeyObject> {
  if (options.signerKey) return loadPublicKey(await readText(options.signerKey, 'the signer key'));
  if (options.api) {
    const keys = await new ApiClient({ api: options.api }).platformKeys();
    return loadPublicKey(keys.signing.publicKeyPem);
  }
  throw new CliError(
    'the signer is needed: pass --signer-key <pem> (e.g. your signing-key.pub.pem), or --api <url> for a bundle the platform signed',
  );
}

const wrappedFor = (m: Manifest) => [
  m.encryption.keyWrapping.keyId,
  ...(m.encryption.ownerKeyWrapping ? [m.encryption.ownerKeyWrapping.keyId] : []),
];

/**
 * `imagemart verify`: checks a bundle directory as the format's reader does. Without `--key`, the
 * "verify without decrypting" profile: the manifest, its signature by the expected signer, and
 * every part's size and SHA-256 (anyone holding the public keys can run it). With `--key` (an RSA
 * private key the data key is wrapped for: the seller's owner key, or the platform's), the full
 * profile: also decrypts and decompresses every part and proves the image's size and SHA-256.
 * Streams the parts from disk; the restored image is hashed, never written. Answers the exit code.
 */
export async function verifyCommand(
  options: VerifyCommandOptions,
  log: (line: string) => void,
): Promise<number> {
  const manifestFile = path.join(options.bundle, MANIFEST_FILE);
  const report: VerifyReport = {
    ok: false,
    profile: options.key ? 'full' : 'integrity',
    manifest: manifestFile,
  };
  const manifestXml = await readFile(manifestFile).catch((err: unknown) => {
    throw new CliError(`cannot read ${manifestFile}: ${(err as Error).message}`, undefined, false, {
      cause: err,
    });
  });
  const signer = await signerOf(options);
  const privateKey = options.key
    ? loadPrivateKey(await readText(options.key, 'the key'), options.keyPassphrase)
    : undefined;
  // Part names passed the format's rule (one file name, never a path) before any is opened.
  const readPart = (part: ManifestPart, { signal }: { signal: AbortSignal }) =>
    createReadStream(path.join(options.bundle, part.filename), { signal, highWaterMark: 1024 * 1024 });

  let declared: Manifest | undefined;
  try {
    declared = parseManifest(manifestXml);
  } catch {
    // reported below, by the verification itself
  }
  const progress = options.json
    ? undefined
    : startProgress(
        privateKey ? 'verifying' : 'checking parts',
        (privateKey ? declared?.image.size : declared?.image.bundledSize) ?? 0,
      );
  const onProgress = (bytes: number) => progress?.update(bytes);
  try {
    if (privateKey) {
      const result = await unbundle(manifestXml, {
        readPart,
        privateKey,
        signerPublicKey: signer,
        onProgress,
      });
      Object.assign(report, {
        ok: true,
        signerKeyId: result.manifest.signature.keyId,
        wrappedFor: wrappedFor(result.manifest),
        parts: result.manifest.parts.length,
        bundledSize: result.manifest.image.bundledSize,
        imageSize: result.size,
        imageDigest: result.digest,
      });
    } else {
      const result = await verifyBundleIntegrity(manifestXml, {
        readPart,
        signerPublicKey: signer,
        onProgress,
      });
      Object.assign(report, {
        ok: true,
        signerKeyId: result.manifest.signature.keyId,
        wrappedFor: wrappedFor(result.manifest),
        parts: result.parts,
        bundledSize: result.bundledSize,
        imageSize: result.manifest.image.size,
        imageDigest: result.manifest.image.digest,
      });
    }
  } catch (err) {
    if (!(err instanceof BundleFormatError)) throw err;
    report.error = {
      code: err.code,
      message: err.message,
      ...(err.partIndex !== undefined ? { partIndex: err.partIndex } : {}),
    };
  } finally {
    progress?.stop();
  }

  if (options.json) {
    log(JSON.stringify(report));
  } else if (report.ok) {
    log(
      `manifest: ${manifestFile}, signed by ${report.signerKeyId} (the expected key ${keyFingerprint(signer)})`,
    );
    log(`parts: ${report.parts} (${report.bundledSize} bytes): every size and SHA-256 as signed`);
    log(`data key wrapped for: ${report.wrappedFor?.join(', ')}`);
    log(
      report.profile === 'full'
        ? `image: ${report.imageSize} bytes, sha256 ${report.imageDigest}: decrypted, decompressed and proven`
        : `image: ${report.imageSize} bytes, sha256 ${report.imageDigest} as declared (not decrypted: pass --key to prove it)`,
    );
    log(`verified (${report.profile})`);
  }
  if (report.ok) return ExitCode.ok;
  if (!options.json) {
    throw new CliError(
      `the bundle does not verify: ${report.error?.code}: ${report.error?.message}`,
      ExitCode.bundleInvalid,
    );
  }
  return ExitCode.bundleInvalid;
}
