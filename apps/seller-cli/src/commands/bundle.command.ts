import { createReadStream } from 'node:fs';
import { access, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { KeyObject } from 'node:crypto';
import {
  BundleFormatError,
  bundle,
  keyFingerprint,
  loadPrivateKey,
  loadPublicKey,
  type CompressionAlgorithm,
  type MachineConfiguration,
} from '@imagemart/bundle-format';
import { MANIFEST_FILENAME } from '@imagemart/contracts';
import { ApiClient } from '../api.client.js';
import { CliError } from '../cli.errors.js';
import { startProgress } from '../progress.js';
import { OWNER_KEY_FILE } from './keys.command.js';

export const MANIFEST_FILE = MANIFEST_FILENAME;

export interface BundleCommandOptions {
  image: string;
  name: string;
  arch: string;
  kernel?: string;
  ramdisk?: string;
  imageVersion?: string;
  description?: string;
  virtualization?: string;
  rootDevice?: string;
  productCode?: string[];
  key: string;
  keyPassphrase?: string;
  /** Your RSA key (PEM) the data key is wrapped for too; false: `--no-owner-key`. */
  ownerKey?: string | false;
  platformKey?: string;
  user?: string;
  out: string;
  compression: string;
  api?: string;
  apiKey?: string;
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

async function exists(file: string): Promise<boolean> {
  return access(file).then(
    () => true,
    () => false,
  );
}

/**
 * The seller's own RSA key the data key is wrapped for beside the platform's: `--owner-key`, else
 * `wrapping-key.pem` beside the signing key (`keys generate` writes it), else the signing key when
 * it is RSA. None is an error unless `--no-owner-key` says to bundle for the platform alone.
 */
async function ownerKeyOf(
  options: BundleCommandOptions,
  signingKey: KeyObject,
): Promise<KeyObject | undefined> {
  if (options.ownerKey === false) return undefined;
  if (options.ownerKey) return loadPublicKey(await readText(options.ownerKey, 'the owner key'));
  const beside = path.join(path.dirname(options.key), OWNER_KEY_FILE);
  if (await exists(beside)) return loadPublicKey(await readText(beside, 'the owner key'));
  if (signingKey.asymmetricKeyType === 'rsa') return signingKey;
  throw new CliError(
    `no key of yours to wrap the data key for: pass --owner-key <RSA key PEM> (imagemart keys generate writes ${OWNER_KEY_FILE}), or --no-owner-key to bundle for the platform alone`,
  );
}

/**
 * `imagemart bundle`: the raw image → zstd (or gzip) blocks → AES-256-GCM parts of 10 MiB in
 * `--out`, and `manifest.xml` beside them, the data key wrapped for the platform's public key (and
 * for the seller's own RSA key, so that `imagemart verify --key` can open it) and the manifest
 * signed with the seller's key. Streams the image; memory stays at a few blocks and
 * parts whatever its size.
 */
export async function bundleCommand(
  options: BundleCommandOptions,
  log: (line: string) => void,
): Promise<void> {
  const signingKey = loadPrivateKey(await readText(options.key, 'the signing key'), options.keyPassphrase);
  const api = options.api ? new ApiClient({ api: options.api, apiKey: options.apiKey }) : undefined;

  let platformPem: string;
  if (options.platformKey) platformPem = await readText(options.platformKey, 'the platform key');
  else if (api) platformPem = (await api.platformKeys()).wrapping.publicKeyPem;
  else
    throw new CliError(
      "the platform's public key is needed: pass --platform-key <pem>, or --api <url> to fetch it",
    );
  const platformPublicKey = loadPublicKey(platformPem);
  const ownerKey = await ownerKeyOf(options, signingKey);

  let user = options.user;
  if (!user) {
    if (!api || !options.apiKey)
      throw new CliError(
        'the account the image is for is needed: pass --user <account id>, or --api and --api-key',
      );
    user = (await api.me()).id;
  }

  const info = await stat(options.image).catch((err: unknown) => {
    throw new CliError(`cannot read the image ${options.image}: ${(err as Error).message}`);
  });
  if (!info.isFile()) throw new CliError(`the image ${options.image} is not a file`);
  await mkdir(options.out, { recursive: true });
  const manifestFile = path.join(options.out, MANIFEST_FILE);
  if (await exists(manifestFile))
    throw new CliError(`${manifestFile} exists: bundle into an empty directory`);

  const mapping: MachineConfiguration['blockDeviceMapping'] = options.rootDevice
    ? [{ virtual: 'root', device: options.rootDevice }]
    : [];
  const progress = startProgress('bundling', info.size);
  let result;
  try {
    result = await bundle(createReadStream(options.image, { highWaterMark: 4 * 1024 * 1024 }), {
      image: {
        name: options.name,
        user,
        ...(options.imageVersion ? { version: options.imageVersion } : {}),
        ...(options.description ? { description: options.description } : {}),
      },
      machineConfiguration: {
        architecture: options.arch as MachineConfiguration['architecture'],
        ...(options.virtualization
          ? { virtualizationType: options.virtualization as MachineConfiguration['virtualizationType'] }
          : {}),
        ...(options.kernel ? { kernelId: options.kernel } : {}),
        ...(options.ramdisk ? { ramdiskId: options.ramdisk } : {}),
        blockDeviceMapping: mapping,
        productCodes: options.productCode ?? [],
      },
      platformPublicKey,
      ...(ownerKey ? { ownerPublicKey: ownerKey } : {}),
      signingKey,
      compression: options.compression as CompressionAlgorithm,
      onPart: (part) => writeFile(path.join(options.out, part.filename), part.data),
      onProgress: (bytes) => progress.update(bytes),
    });
  } catch (err) {
    progress.stop();
    if (err instanceof BundleFormatError)
      throw new CliError(`cannot bundle: ${err.message}`, undefined, false, { cause: err });
    throw err;
  }
  progress.update(info.size);
  progress.stop();
  // The manifest last: a directory with a manifest has all of its parts.
  await writeFile(manifestFile, result.manifestXml);
  log(`bundled ${options.image}: ${result.imageSize} bytes, sha256 ${result.imageDigest}`);
  log(`parts: ${result.parts.length} (${result.bundledSize} bytes) in ${options.out}`);
  log(`manifest: ${manifestFile}`);
  log(
    `signed by ${keyFingerprint(signingKey)} for account ${user}; data key wrapped for ${keyFingerprint(platformPublicKey)}${ownerKey ? ` and for your key ${keyFingerprint(ownerKey)}` : ''}`,
  );
}
