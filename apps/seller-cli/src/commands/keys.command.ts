import { generateKeyPairSync } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { exportKeyPem, keyFingerprint, loadPublicKey } from '@imagemart/bundle-format';
import type { SigningKeyView } from '@imagemart/contracts';
import { ApiClient } from '../api.client.js';
import { CliError } from '../cli.errors.js';

export interface KeysApiOptions {
  api: string;
  apiKey?: string;
  account?: string;
}

async function accountOf(api: ApiClient, options: KeysApiOptions): Promise<string> {
  return options.account ?? (await api.me()).id;
}

const describeKey = (k: SigningKeyView) =>
  `${k.keyId} ${k.algorithm} ${k.name}${k.revokedAt ? ` (revoked ${k.revokedAt})` : ''}`;

/**
 * `imagemart keys register --key <pem>`: registers the public key. Given a private key, only its
 * public half is sent; the private key never leaves the machine.
 */
export async function registerKeyCommand(
  options: KeysApiOptions & { key: string; name?: string },
  log: (line: string) => void,
): Promise<void> {
  let pem: string;
  try {
    pem = await readFile(options.key, 'utf8');
  } catch (err) {
    throw new CliError(`cannot read the key ${options.key}: ${(err as Error).message}`);
  }
  const publicKeyPem = exportKeyPem(loadPublicKey(pem));
  const api = new ApiClient(options);
  const account = await accountOf(api, options);
  const key = await api.json<SigningKeyView>('POST', `/v1/accounts/${account}/signing-keys`, {
    publicKeyPem,
    ...(options.name ? { name: options.name } : {}),
  });
  log(`registered ${describeKey(key)} for account ${account}`);
}

export async function listKeysCommand(options: KeysApiOptions, log: (line: string) => void): Promise<void> {
  const api = new ApiClient(options);
  const keys = await api.json<SigningKeyView[]>(
    'GET',
    `/v1/accounts/${await accountOf(api, options)}/signing-keys`,
  );
  for (const k of keys) log(describeKey(k));
}

export async function revokeKeyCommand(
  keyId: string,
  options: KeysApiOptions,
  log: (line: string) => void,
): Promise<void> {
  const api = new ApiClient(options);
  const key = await api.json<SigningKeyView>(
    'DELETE',
    `/v1/accounts/${await accountOf(api, options)}/signing-keys/${keyId}`,
  );
  log(`revoked ${describeKey(key)}`);
}

/** `imagemart keys generate`: a new signing key pair, the private half readable by its owner only. */
/** The seller's own RSA key pair for bundles' data keys, beside the signing key (`keys generate`). */
export const OWNER_KEY_FILE = 'wrapping-key.pem';

export async function generateKeyCommand(
  options: { out: string; type: string },
  log: (line: string) => void,
): Promise<void> {
  if (options.type !== 'ed25519' && options.type !== 'rsa')
    throw new CliError('--type must be ed25519 or rsa');
  const pair =
    options.type === 'rsa'
      ? generateKeyPairSync('rsa', { modulusLength: 3072 })
      : generateKeyPairSync('ed25519');
  await mkdir(options.out, { recursive: true, mode: 0o700 });
  const privateFile = path.join(options.out, 'signing-key.pem');
  const publicFile = path.join(options.out, 'signing-key.pub.pem');
  try {
    await writeFile(privateFile, exportKeyPem(pair.privateKey), { mode: 0o600, flag: 'wx' });
  } catch (err) {
    throw new CliError(`cannot write ${privateFile}: ${(err as Error).message}`);
  }
  await writeFile(publicFile, exportKeyPem(pair.publicKey));
  log(`private key: ${privateFile} (keep it to yourself)`);
  log(`public key: ${publicFile}`);
  log(`key id: ${keyFingerprint(pair.publicKey)}`);
  // The owner key: `imagemart bundle` wraps each bundle's data key for it too (beside the
  // platform's), so that `imagemart verify --key` can decrypt and fully verify your own bundles.
  const wrapping = generateKeyPairSync('rsa', { modulusLength: 3072 });
  const wrappingFile = path.join(options.out, OWNER_KEY_FILE);
  try {
    await writeFile(wrappingFile, exportKeyPem(wrapping.privateKey), { mode: 0o600, flag: 'wx' });
  } catch (err) {
    throw new CliError(`cannot write ${wrappingFile}: ${(err as Error).message}`);
  }
  await writeFile(path.join(options.out, 'wrapping-key.pub.pem'), exportKeyPem(wrapping.publicKey));
  log(`owner wrapping key: ${wrappingFile} (RSA 3072; keep it to yourself)`);
  log(`owner wrapping key id: ${keyFingerprint(wrapping.publicKey)}`);
}
