import { mkdtempSync } from 'node:fs';
import { readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { keyFingerprint, loadPublicKey } from '@imagemart/bundle-format';
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
});
