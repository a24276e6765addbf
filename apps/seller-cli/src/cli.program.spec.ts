import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { exportKeyPem, keyFingerprint, loadPublicKey, parseManifest } from '@imagemart/bundle-format';
import { ExitCode } from './cli.errors.js';
import { run } from './cli.program.js';

const dir = mkdtempSync(path.join(tmpdir(), 'imagemart-cli-spec-'));
afterAll(() => rm(dir, { recursive: true, force: true }));

async function imagemart(...args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  // Commander writes usage errors itself; keep them out of the test output.
  const write = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  try {
    const code = await run(['node', 'imagemart', ...args], {
      out: (l) => out.push(l),
      err: (l) => err.push(l),
    });
    return { code, out, err };
  } finally {
    write.mockRestore();
  }
}

describe('imagemart', () => {
  it('answers usage errors with exit code 2', async () => {
    expect((await imagemart('bundle')).code).toBe(ExitCode.usage);
    expect(
      (
        await imagemart(
          'bundle',
          '--image',
          'x',
          '--name',
          'n',
          '--arch',
          'sparc',
          '--key',
          'k',
          '--out',
          'o',
        )
      ).code,
    ).toBe(ExitCode.usage);
    expect((await imagemart('no-such-command')).code).toBe(ExitCode.usage);
  });

  it('answers other errors with exit code 1 and one line', async () => {
    const result = await imagemart(
      'bundle',
      '--image',
      path.join(dir, 'missing.img'),
      '--name',
      'n',
      '--arch',
      'x86_64',
      '--key',
      path.join(dir, 'missing.pem'),
      '--out',
      path.join(dir, 'out'),
    );
    expect(result.code).toBe(ExitCode.error);
    expect(result.err).toEqual([
      expect.stringMatching(/^imagemart: error: cannot read the signing key .*missing\.pem/),
    ]);
  });

  it('generates a signing key pair, the private half readable by its owner only, and never overwrites it', async () => {
    const out = path.join(dir, 'keys');
    const made = await imagemart('keys', 'generate', '--out', out);
    expect(made.code).toBe(ExitCode.ok);
    expect((await stat(path.join(out, 'signing-key.pem'))).mode & 0o777).toBe(0o600);
    const publicKey = loadPublicKey(await readFile(path.join(out, 'signing-key.pub.pem')));
    expect(made.out).toContain(`key id: ${keyFingerprint(publicKey)}`);
    expect(publicKey.asymmetricKeyType).toBe('ed25519');
    const again = await imagemart('keys', 'generate', '--out', out);
    expect(again.code).toBe(ExitCode.error);
    expect(again.err[0]).toMatch(/cannot write .*signing-key\.pem/);
  });

  describe('verify', () => {
    const platform = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const keysDir = path.join(dir, 'verify-keys');
    const platformKey = path.join(dir, 'platform.pub.pem');
    const image = path.join(dir, 'verify.img');
    const data = randomBytes(300 * 1024);

    async function bundleInto(out: string, ...extra: string[]) {
      const made = await imagemart(
        'bundle',
        '--image',
        image,
        '--name',
        'verify me',
        '--arch',
        'x86_64',
        '--key',
        path.join(keysDir, 'signing-key.pem'),
        '--platform-key',
        platformKey,
        '--user',
        '123456789012',
        '--out',
        out,
        ...extra,
      );
      expect(made.code, made.err.join('\n')).toBe(ExitCode.ok);
      return out;
    }

    const verifyJson = async (...args: string[]) => {
      const result = await imagemart('verify', '--json', ...args);
      return { code: result.code, report: JSON.parse(result.out.at(-1) ?? '{}') as Record<string, unknown> };
    };

    it("wraps the data key for the seller's own key, and lets anyone check the bundle and its owner decrypt it", async () => {
      await writeFile(platformKey, exportKeyPem(platform.publicKey));
      await writeFile(image, data);
      const generated = await imagemart('keys', 'generate', '--out', keysDir);
      expect(generated.code).toBe(ExitCode.ok);
      const ownerKeyId = /^owner wrapping key id: (sha256:[0-9a-f]{64})$/m.exec(
        generated.out.join('\n'),
      )?.[1];
      expect((await stat(path.join(keysDir, 'wrapping-key.pem'))).mode & 0o777).toBe(0o600);

      const out = await bundleInto(path.join(dir, 'verify-bundle'));
      const manifest = parseManifest(await readFile(path.join(out, 'manifest.xml')));
      expect(manifest.encryption.ownerKeyWrapping?.keyId).toBe(ownerKeyId);
      expect(manifest.encryption.keyWrapping.keyId).toBe(keyFingerprint(platform.publicKey));

      const signer = path.join(keysDir, 'signing-key.pub.pem');
      const integrity = await verifyJson('--bundle', out, '--signer-key', signer);
      expect(integrity).toEqual({
        code: ExitCode.ok,
        report: expect.objectContaining({
          ok: true,
          profile: 'integrity',
          parts: manifest.parts.length,
          imageDigest: manifest.image.digest,
          wrappedFor: [keyFingerprint(platform.publicKey), ownerKeyId],
        }),
      });
      const full = await verifyJson(
        '--bundle',
        out,
        '--signer-key',
        signer,
        '--key',
        path.join(keysDir, 'wrapping-key.pem'),
      );
      expect(full).toEqual({
        code: ExitCode.ok,
        report: expect.objectContaining({ ok: true, profile: 'full', imageSize: data.length }),
      });
      const text = await imagemart(
        'verify',
        '--bundle',
        out,
        '--signer-key',
        signer,
        '--key',
        path.join(keysDir, 'wrapping-key.pem'),
      );
      expect(text.code).toBe(ExitCode.ok);
      expect(text.out.at(-1)).toBe('verified (full)');

      // A changed part: both profiles refuse it, with the format's code and the part.
      const part = path.join(out, manifest.parts[0].filename);
      const bytes = await readFile(part);
      bytes[10] ^= 1;
      await writeFile(part, bytes);
      const changed = await verifyJson('--bundle', out, '--signer-key', signer);
      expect(changed).toEqual({
        code: ExitCode.bundleInvalid,
        report: expect.objectContaining({
          ok: false,
          error: expect.objectContaining({ code: 'DigestMismatch', partIndex: 0 }),
        }),
      });
      const plain = await imagemart('verify', '--bundle', out, '--signer-key', signer);
      expect(plain.code).toBe(ExitCode.bundleInvalid);
      expect(plain.err[0]).toMatch(/^imagemart: error: the bundle does not verify: DigestMismatch: part 0/);
    });

    it('bundles for the platform alone when asked, and then the seller cannot decrypt', async () => {
      const out = await bundleInto(path.join(dir, 'verify-platform-only'), '--no-owner-key');
      expect(await readFile(path.join(out, 'manifest.xml'), 'utf8')).not.toContain('owner_wrapped_key');
      const refused = await verifyJson(
        '--bundle',
        out,
        '--signer-key',
        path.join(keysDir, 'signing-key.pub.pem'),
        '--key',
        path.join(keysDir, 'wrapping-key.pem'),
      );
      expect(refused.code).toBe(ExitCode.bundleInvalid);
      expect(refused.report).toMatchObject({ ok: false, error: { code: 'KeyUnwrapFailed' } });
      expect((await readdir(out)).sort()).toEqual(['manifest.xml', 'verify-me.part.0000']);
    });
  });
});
