import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { exportKeyPem, generatePlatformKeys, keyFingerprint } from '@imagemart/bundle-format';
import { SIGNING_KEY_FILE, WRAPPING_KEY_FILE, ensureDevPlatformKeys, loadPlatformKeys } from './platform-keys.js';

describe('platform keys', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'imagemart-keys-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('generates a development key pair once, readable by its owner only, and keeps it on later starts', async () => {
    const keyDir = path.join(dir, 'keys');
    const created = await Promise.all([ensureDevPlatformKeys(keyDir), ensureDevPlatformKeys(keyDir)]);
    expect(created.filter((c) => c.created).length).toBeGreaterThanOrEqual(1);
    const first = await readFile(path.join(keyDir, WRAPPING_KEY_FILE), 'utf8');
    expect((await stat(path.join(keyDir, WRAPPING_KEY_FILE))).mode & 0o777).toBe(0o600);
    expect((await stat(path.join(keyDir, SIGNING_KEY_FILE))).mode & 0o777).toBe(0o600);
    expect(await ensureDevPlatformKeys(keyDir)).toEqual({ created: false, dir: keyDir });
    expect(await readFile(path.join(keyDir, WRAPPING_KEY_FILE), 'utf8')).toBe(first);

    const keys = await loadPlatformKeys({ PLATFORM_KEY_DIR: keyDir }, { generateMissing: false });
    expect(keys.wrapping.publicKey.asymmetricKeyType).toBe('rsa');
    expect(keys.signing.publicKey.asymmetricKeyType).toBe('ed25519');
    expect(keys.source).toBe(keyDir);
    expect(keys.wrappingKeyId).toBe(keyFingerprint(keys.wrapping.publicKey));
  });

  it('reads PEM from the environment, with \\n escapes, before any directory', async () => {
    const generated = await generatePlatformKeys({ signing: 'rsa' });
    const keys = await loadPlatformKeys(
      {
        PLATFORM_KEY_DIR: path.join(dir, 'nothing-here'),
        PLATFORM_WRAPPING_KEY_PEM: exportKeyPem(generated.wrapping.privateKey).replace(/\n/g, '\\n'),
        PLATFORM_SIGNING_KEY_PEM: exportKeyPem(generated.signing.privateKey),
      },
      { generateMissing: true },
    );
    expect(keys.source).toBe('env');
    expect(keys.signingKeyId).toBe(keyFingerprint(generated.signing.publicKey));
  });

  it('refuses to start without keys in production, and says which, without printing a key', async () => {
    await expect(loadPlatformKeys({ PLATFORM_KEY_DIR: dir }, { generateMissing: false })).rejects.toThrow(
      /wrapping-key\.pem and signing-key\.pem not found in PLATFORM_KEY_DIR/,
    );
    const generated = await generatePlatformKeys();
    const pem = exportKeyPem(generated.signing.privateKey);
    await expect(
      loadPlatformKeys({ PLATFORM_KEY_DIR: dir, PLATFORM_SIGNING_KEY_PEM: pem }, { generateMissing: false }),
    ).rejects.toThrow(/set both PLATFORM_WRAPPING_KEY_PEM and PLATFORM_SIGNING_KEY_PEM/);

    // An Ed25519 key cannot wrap data keys.
    await writeFile(path.join(dir, WRAPPING_KEY_FILE), pem);
    await writeFile(path.join(dir, SIGNING_KEY_FILE), pem);
    const refused = loadPlatformKeys({ PLATFORM_KEY_DIR: dir }, { generateMissing: false });
    await expect(refused).rejects.toThrow(/wrapping key .* must be an RSA key/);
    await expect(refused).rejects.not.toThrow(/PRIVATE KEY/);
    await writeFile(path.join(dir, WRAPPING_KEY_FILE), 'not a key');
    await expect(loadPlatformKeys({ PLATFORM_KEY_DIR: dir }, { generateMissing: false })).rejects.toThrow(
      /platform wrapping key .* is not a readable PEM private key/,
    );
  });
});
