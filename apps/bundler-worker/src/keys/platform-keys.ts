import { createPublicKey, randomBytes, type KeyObject } from 'node:crypto';
import { chmod, link, mkdir, readFile, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import {
  assertWrappingKey,
  exportKeyPem,
  generatePlatformKeys,
  keyFingerprint,
  loadPrivateKey,
  signatureAlgorithmOf,
  type KeyPair,
  type PlatformKeys,
} from '@imagemart/bundle-format';
import { StartupError } from '@imagemart/messaging';

/** File names of the platform keys in PLATFORM_KEY_DIR: PKCS#8 PEM private keys. */
export const WRAPPING_KEY_FILE = 'wrapping-key.pem';
export const SIGNING_KEY_FILE = 'signing-key.pem';

/**
 * Where the platform keys come from. PEM text in the environment wins; otherwise the two files of
 * PLATFORM_KEY_DIR. Outside production, missing files are generated on first start (a development
 * key pair that never leaves the machine).
 */
export const platformKeysEnvSchema = z.object({
  /** PEM of the RSA private key (3072 bits or more recommended) that unwraps data keys. */
  PLATFORM_WRAPPING_KEY_PEM: z.string().min(1).optional(),
  /** PEM of the Ed25519 (or RSA) private key that signs manifests. */
  PLATFORM_SIGNING_KEY_PEM: z.string().min(1).optional(),
  /** Passphrase of encrypted PEMs (both keys). */
  PLATFORM_KEY_PASSPHRASE: z.string().min(1).optional(),
  /** Directory holding wrapping-key.pem and signing-key.pem, relative to the working directory unless absolute. */
  PLATFORM_KEY_DIR: z.string().min(1).default('.data/keys'),
  /** Generate missing key files in PLATFORM_KEY_DIR; default: outside production only. */
  PLATFORM_KEYS_GENERATE: z.stringbool().optional(),
});
export type PlatformKeysEnv = z.infer<typeof platformKeysEnvSchema>;

export interface LoadedPlatformKeys extends PlatformKeys {
  /** Where they came from, for the start-up log line: `env`, or the directory. */
  source: string;
  /** Fingerprints (`sha256:…`) of the public halves: safe to log and to publish. */
  wrappingKeyId: string;
  signingKeyId: string;
}

function pairOf(privateKey: KeyObject): KeyPair {
  return { privateKey, publicKey: createPublicKey(privateKey) };
}

/** PEM from an environment variable may carry `\n` escapes instead of line breaks. */
const unescapePem = (pem: string) => (pem.includes('\\n') ? pem.replace(/\\n/g, '\n') : pem);

async function readIfPresent(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** Writes `content` to `file` unless it exists (several processes may race): the first one wins. */
async function createExclusive(file: string, content: string): Promise<boolean> {
  const temp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  await writeFile(temp, content, { mode: 0o600, flag: 'wx' });
  try {
    await link(temp, file); // fails with EEXIST where rename would replace
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  } finally {
    await unlink(temp).catch(() => undefined);
  }
}

/**
 * Generates a development key pair into `dir` unless its key files exist: an RSA-3072 wrapping
 * key and an Ed25519 signing key, PKCS#8 PEM, readable by the owner only. Safe to call from
 * several processes at once and on every start. Returns whether it wrote anything.
 * `npm start` calls it (through the worker's start-up) so a fresh checkout needs no set-up.
 */
export async function ensureDevPlatformKeys(dir: string): Promise<{ created: boolean; dir: string }> {
  const absolute = path.resolve(dir);
  const wrappingFile = path.join(absolute, WRAPPING_KEY_FILE);
  const signingFile = path.join(absolute, SIGNING_KEY_FILE);
  const [hasWrapping, hasSigning] = await Promise.all([readIfPresent(wrappingFile), readIfPresent(signingFile)]);
  if (hasWrapping !== undefined && hasSigning !== undefined) return { created: false, dir: absolute };
  await mkdir(absolute, { recursive: true, mode: 0o700 });
  await chmod(absolute, 0o700).catch(() => undefined);
  const keys = await generatePlatformKeys();
  let created = false;
  if (hasWrapping === undefined) created = (await createExclusive(wrappingFile, exportKeyPem(keys.wrapping.privateKey))) || created;
  if (hasSigning === undefined) created = (await createExclusive(signingFile, exportKeyPem(keys.signing.privateKey))) || created;
  return { created, dir: absolute };
}

/**
 * Loads the platform keys: from PLATFORM_WRAPPING_KEY_PEM and PLATFORM_SIGNING_KEY_PEM when both
 * are set, else from PLATFORM_KEY_DIR. With `generateMissing` (development), missing files are
 * generated first. Every failure is a StartupError that names the variable or file, never a key.
 */
export async function loadPlatformKeys(
  env: PlatformKeysEnv,
  { generateMissing }: { generateMissing: boolean },
): Promise<LoadedPlatformKeys> {
  const fromEnv = env.PLATFORM_WRAPPING_KEY_PEM !== undefined || env.PLATFORM_SIGNING_KEY_PEM !== undefined;
  let wrappingPem: string | undefined;
  let signingPem: string | undefined;
  let source: string;
  if (fromEnv) {
    if (env.PLATFORM_WRAPPING_KEY_PEM === undefined || env.PLATFORM_SIGNING_KEY_PEM === undefined) {
      throw new StartupError(
        'set both PLATFORM_WRAPPING_KEY_PEM and PLATFORM_SIGNING_KEY_PEM, or neither (and use PLATFORM_KEY_DIR)',
      );
    }
    wrappingPem = unescapePem(env.PLATFORM_WRAPPING_KEY_PEM);
    signingPem = unescapePem(env.PLATFORM_SIGNING_KEY_PEM);
    source = 'env';
  } else {
    const dir = path.resolve(env.PLATFORM_KEY_DIR);
    if (generateMissing) await ensureDevPlatformKeys(dir);
    wrappingPem = await readIfPresent(path.join(dir, WRAPPING_KEY_FILE));
    signingPem = await readIfPresent(path.join(dir, SIGNING_KEY_FILE));
    const missing = [
      wrappingPem === undefined ? WRAPPING_KEY_FILE : undefined,
      signingPem === undefined ? SIGNING_KEY_FILE : undefined,
    ].filter(Boolean);
    if (missing.length) {
      throw new StartupError(
        `the platform keys are missing: ${missing.join(' and ')} not found in PLATFORM_KEY_DIR (${dir}); ` +
          'provide them there or in PLATFORM_WRAPPING_KEY_PEM and PLATFORM_SIGNING_KEY_PEM',
      );
    }
    source = dir;
  }

  const load = (pem: string, what: string) => {
    try {
      return loadPrivateKey(pem, env.PLATFORM_KEY_PASSPHRASE);
    } catch {
      // The library's message may quote the PEM parser; ours names only the key.
      throw new StartupError(`the platform ${what} key (${source}) is not a readable PEM private key`);
    }
  };
  const wrapping = pairOf(load(wrappingPem!, 'wrapping'));
  const signing = pairOf(load(signingPem!, 'signing'));
  try {
    assertWrappingKey(wrapping.publicKey);
  } catch (err) {
    throw new StartupError(`the platform wrapping key (${source}): ${(err as Error).message}`);
  }
  try {
    signatureAlgorithmOf(signing.privateKey);
  } catch (err) {
    throw new StartupError(`the platform signing key (${source}): ${(err as Error).message}`);
  }
  return {
    wrapping,
    signing,
    source,
    wrappingKeyId: keyFingerprint(wrapping.publicKey),
    signingKeyId: keyFingerprint(signing.publicKey),
  };
}
