import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectProblem, freePort, http, Platform, ROOT, type TestAccount } from './support/platform.js';

/**
 * The seller's command line, built, against the five built processes: generate and register a
 * signing key, bundle a random image on "the seller's machine", upload it, follow it to
 * `available`; and what must be refused or fail: a tampered part, a manifest signed by a key that
 * is not registered (or revoked), a manifest made out to another account; and an upload cut off
 * by the network, resumed by running the command again.
 */
const CLI = path.join(ROOT, 'dist/apps/seller-cli/src/main.js');
const MiB = 1024 * 1024;

let platform: Platform;
let base: string;
let seller: TestAccount;
let otherSeller: TestAccount;
let work: string;
let objects: string;
let n = 0;

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the built CLI as a seller would, with the API key in the environment. */
async function cli(args: string[], apiKey?: string): Promise<CliResult> {
  const child = spawn(process.execPath, [CLI, ...args], {
    cwd: work,
    env: { PATH: process.env['PATH'] ?? '', ...(apiKey ? { IMAGEMART_API_KEY: apiKey } : {}) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code, stdout, stderr };
}

const ok = (r: CliResult) => expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);

/** A new signing key pair in a directory of its own; registered to `account` unless told otherwise. */
async function signingKey(
  account?: TestAccount,
): Promise<{ keyId: string; privateKey: string; publicKey: string }> {
  const dir = path.join(work, `key-${++n}`);
  const generated = await cli(['keys', 'generate', '--out', dir]);
  ok(generated);
  const keyId = /^key id: (sha256:[0-9a-f]{64})$/m.exec(generated.stdout)![1];
  const key = {
    keyId,
    privateKey: path.join(dir, 'signing-key.pem'),
    publicKey: path.join(dir, 'signing-key.pub.pem'),
  };
  if (account)
    ok(
      await cli(
        ['keys', 'register', '--key', key.publicKey, '--name', `key ${n}`, '--api', base],
        account.key,
      ),
    );
  return key;
}

/** A random raw image and its bundle, made by `imagemart bundle`. */
async function bundleImage(
  key: string,
  apiKey: string,
  size: number,
  extra: string[] = [],
): Promise<{ dir: string; name: string }> {
  const image = path.join(work, `image-${++n}.raw`);
  await writeFile(image, randomBytes(size));
  const dir = path.join(work, `bundle-${n}`);
  const name = `CLI image ${n} ${randomBytes(3).toString('hex')}`;
  const made = await cli(
    [
      'bundle',
      '--image',
      image,
      '--name',
      name,
      '--arch',
      'x86_64',
      '--image-version',
      '1.0',
      '--root-device',
      '/dev/xvda',
      '--key',
      key,
      '--out',
      dir,
      '--api',
      base,
      ...extra,
    ],
    apiKey,
  );
  ok(made);
  expect(made.stdout).toContain(`bundled ${image}: ${size} bytes`);
  return { dir, name };
}

const imageIdIn = (text: string) => /image (ami-[0-9a-f]{17})/.exec(text)?.[1];

beforeAll(async () => {
  work = mkdtempSync(path.join(tmpdir(), 'imagemart-cli-'));
  objects = path.join(work, 'objects');
  platform = await Platform.start('seller_cli', {
    OBJECT_STORE_ROOT: objects,
    PLATFORM_KEY_DIR: path.join(work, 'platform-keys'),
  });
  base = platform.baseUrl;
  [seller, otherSeller] = await Promise.all([
    platform.createAccount(['seller']),
    platform.createAccount(['seller']),
  ]);
}, 90_000);

afterAll(async () => {
  await platform?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('imagemart, the seller CLI', () => {
  it('bundles an image on the seller machine, uploads it and follows it to available', async () => {
    const keys = await http(base, 'GET', '/v1/platform/keys');
    expect(keys.status).toBe(200);
    expect(keys.body.wrapping).toMatchObject({
      algorithm: 'RSA-OAEP-SHA256',
      keyId: expect.stringMatching(/^sha256:[0-9a-f]{64}$/),
    });
    expect(keys.body.wrapping.publicKeyPem).toContain('BEGIN PUBLIC KEY');

    const key = await signingKey(seller);
    const listed = await cli(['keys', 'list', '--api', base], seller.key);
    ok(listed);
    expect(listed.stdout).toMatch(/^sha256:[0-9a-f]{64} Ed25519 key \d+$/m);

    const size = 25 * MiB + 12_345; // three parts of 10 MiB, the last shorter
    const { dir, name } = await bundleImage(key.privateKey, seller.key, size);
    const manifest = await readFile(path.join(dir, 'manifest.xml'), 'utf8');
    expect(manifest).toContain(`<user>${seller.id}</user>`);
    expect(manifest).toContain(`key_id="${keys.body.wrapping.keyId}"`);

    const uploaded = await cli(['upload', '--bundle', dir, '--api', base], seller.key);
    ok(uploaded);
    expect(uploaded.stdout).toMatch(/opened for image ami-[0-9a-f]{17} \(3 parts\)/);
    expect(uploaded.stderr).toContain('uploading: 100%'); // plain progress lines: stderr is not a terminal
    const imageId = imageIdIn(uploaded.stdout)!;

    const status = await cli(['status', imageId, '--api', base, '--wait', '--interval', '1'], seller.key);
    ok(status);
    expect(status.stdout.trim().split('\n').at(-1)).toBe(`${imageId} available (done, 100%)`);

    const image = await http(base, 'GET', `/v1/images/${imageId}`, { key: seller.key });
    expect(image.body).toMatchObject({
      imageId,
      name,
      state: 'available',
      architecture: 'x86_64',
      imageSize: size,
      rootDeviceName: '/dev/xvda',
    });
    // The manifest stored is the seller's, beside its parts.
    expect(await readFile(path.join(objects, 'bundles', imageId, 'manifest.xml'), 'utf8')).toBe(manifest);

    // Running the upload again only says it is done.
    const again = await cli(['upload', '--bundle', dir, '--api', base], seller.key);
    ok(again);
    expect(again.stdout).toContain(`image ${imageId} is being verified`);
  }, 120_000);

  it('marks the image failed when a part was changed after signing', async () => {
    const key = await signingKey(seller);
    const { dir } = await bundleImage(key.privateKey, seller.key, 3 * MiB);
    const file = path.join(
      dir,
      /<filename>([^<]+)<\/filename>/.exec(await readFile(path.join(dir, 'manifest.xml'), 'utf8'))![1],
    );
    const bytes = await readFile(file);
    bytes[1000] ^= 0x01; // one flipped bit
    await writeFile(file, bytes);

    const uploaded = await cli(['upload', '--bundle', dir, '--api', base], seller.key);
    ok(uploaded); // the parts are the right size: only verifying finds the change
    const imageId = imageIdIn(uploaded.stdout)!;
    const status = await cli(['status', imageId, '--api', base, '--wait', '--interval', '1'], seller.key);
    expect(status.code, status.stdout + status.stderr).toBe(3);
    expect(status.stdout).toMatch(
      new RegExp(`${imageId} failed: DigestMismatch: part 0 .*changed, corrupted or swapped`),
    );
    expect(status.stderr).toBe('');
    const image = await http(base, 'GET', `/v1/images/${imageId}`, { key: seller.key });
    expect(image.body.state).toBe('failed');
  }, 60_000);

  it('refuses a manifest signed by a key the account has not registered, or has revoked', async () => {
    const unregistered = await signingKey();
    const { dir } = await bundleImage(unregistered.privateKey, seller.key, 64 * 1024);
    const refused = await cli(['upload', '--bundle', dir, '--api', base], seller.key);
    expect(refused.code).toBe(1);
    expect(refused.stderr.trim()).toMatch(
      /^imagemart: error: POST \/v1\/uploads: InvalidManifest\.Signature: The manifest is signed by key sha256:[0-9a-f]{64}, which is not a signing key of your account/,
    );
    expect(refused.stderr.trim().split('\n')).toHaveLength(1);

    // Registered to another account is no better.
    ok(await cli(['keys', 'register', '--key', unregistered.publicKey, '--api', base], otherSeller.key));
    const manifest = await readFile(path.join(dir, 'manifest.xml'), 'utf8');
    expectProblem(
      await http(base, 'POST', '/v1/uploads', { key: seller.key, body: { kind: 'bundle', manifest } }),
      400,
      'InvalidManifest.Signature',
    );

    // Registered, then revoked.
    const revoked = await signingKey(seller);
    const second = await bundleImage(revoked.privateKey, seller.key, 64 * 1024);
    expect((await cli(['keys', 'list', '--api', base], seller.key)).stdout).toContain(
      `${revoked.keyId} Ed25519`,
    );
    ok(await cli(['keys', 'revoke', revoked.keyId, '--api', base], seller.key));
    const afterRevoke = await cli(['upload', '--bundle', second.dir, '--api', base], seller.key);
    expect(afterRevoke.code).toBe(1);
    expect(afterRevoke.stderr).toMatch(/InvalidManifest\.Signature: .*was revoked/);

    // A manifest changed after signing.
    const key = await signingKey(seller);
    const third = await bundleImage(key.privateKey, seller.key, 64 * 1024);
    const changed = (await readFile(path.join(third.dir, 'manifest.xml'), 'utf8')).replace(
      '<architecture>x86_64</architecture>',
      '<architecture>arm64</architecture>',
    );
    const problem = expectProblem(
      await http(base, 'POST', '/v1/uploads', {
        key: seller.key,
        body: { kind: 'bundle', manifest: changed },
      }),
      400,
      'InvalidManifest.Signature',
    );
    expect(problem.detail).toMatch(/changed after it was signed/);
    // Not XML of the format at all.
    expectProblem(
      await http(base, 'POST', '/v1/uploads', {
        key: seller.key,
        body: { kind: 'bundle', manifest: '<!DOCTYPE x><manifest/>' },
      }),
      400,
      'InvalidManifest',
    );
  }, 60_000);

  it('refuses at registration a part name the object store cannot hold, and registers nothing', async () => {
    const key = await signingKey(seller);
    const { dir, name } = await bundleImage(key.privateKey, seller.key, 64 * 1024);
    const manifest = await readFile(path.join(dir, 'manifest.xml'), 'utf8');
    const filename = /<filename>([^<]+)<\/filename>/.exec(manifest)![1];
    for (const bad of ['.', '..', 'p'.repeat(201), 'manifest.xml']) {
      const problem = expectProblem(
        await http(base, 'POST', '/v1/uploads', {
          key: seller.key,
          body: { kind: 'bundle', manifest: manifest.replace(`<filename>${filename}<`, `<filename>${bad}<`) },
        }),
        400,
        'InvalidManifest',
      );
      expect(problem.detail).toMatch(/part 0 filename/);
    }
    const found = await http(base, 'GET', `/v1/images?q=${encodeURIComponent(name)}`, { key: seller.key });
    expect(found.body.items).toEqual([]);
  }, 60_000);

  it("verifies a bundle without a private key, and fully with the seller's own key", async () => {
    const key = await signingKey(seller);
    const { dir } = await bundleImage(key.privateKey, seller.key, 3 * MiB);
    const integrity = await cli(['verify', '--bundle', dir, '--signer-key', key.publicKey, '--json']);
    ok(integrity);
    expect(JSON.parse(integrity.stdout)).toMatchObject({ ok: true, profile: 'integrity', parts: 1 });
    const ownerKey = path.join(path.dirname(key.privateKey), 'wrapping-key.pem');
    const full = await cli([
      'verify',
      '--bundle',
      dir,
      '--signer-key',
      key.publicKey,
      '--key',
      ownerKey,
      '--json',
    ]);
    ok(full);
    expect(JSON.parse(full.stdout)).toMatchObject({ ok: true, profile: 'full', imageSize: 3 * MiB });
    // The platform signed nothing here: with its signing key (from --api) the signature is refused.
    const platformSigner = await cli(['verify', '--bundle', dir, '--api', base, '--json']);
    expect(platformSigner.code).toBe(4);
    expect(JSON.parse(platformSigner.stdout)).toMatchObject({
      ok: false,
      error: { code: 'SignatureInvalid' },
    });
  }, 60_000);

  it("refuses a manifest made out to another account, even signed with the uploader's own key", async () => {
    const key = await signingKey(seller);
    const { dir } = await bundleImage(key.privateKey, seller.key, 64 * 1024, ['--user', otherSeller.id]);
    const refused = await cli(['upload', '--bundle', dir, '--api', base], seller.key);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(
      new RegExp(
        `InvalidManifest\\.User: The manifest is made out to account ${otherSeller.id}, not to yours \\(${seller.id}\\)`,
      ),
    );
    const manifest = await readFile(path.join(dir, 'manifest.xml'), 'utf8');
    expectProblem(
      await http(base, 'POST', '/v1/uploads', { key: seller.key, body: { kind: 'bundle', manifest } }),
      403,
      'InvalidManifest.User',
    );
    // Nor may the account it names upload it: it is not signed by any key of his.
    expectProblem(
      await http(base, 'POST', '/v1/uploads', { key: otherSeller.key, body: { kind: 'bundle', manifest } }),
      400,
      'InvalidManifest.Signature',
    );
  }, 60_000);

  it('resumes an upload the network cut off, from the parts the API has', async () => {
    const key = await signingKey(seller);
    const { dir } = await bundleImage(key.privateKey, seller.key, 25 * MiB);
    const proxy = await startCuttingProxy(new URL(base).port, 14 * MiB);
    try {
      const cut = await cli(
        ['upload', '--bundle', dir, '--api', proxy.url, '--retries', '1', '--retry-delay', '0'],
        seller.key,
      );
      expect(cut.code, cut.stdout + cut.stderr).toBe(1);
      expect(cut.stderr).toMatch(/run the same command again to resume upload upl-[0-9a-f]{17}/);
      const uploadId = /upload (upl-[0-9a-f]{17}) opened/.exec(cut.stdout)![1];
      const before = await http(base, 'GET', `/v1/uploads/${uploadId}`, { key: seller.key });
      expect(before.body).toMatchObject({ kind: 'bundle', state: 'open', partCount: 3, missing: [2, 3] });

      proxy.heal(); // the network is back
      const resumed = await cli(['upload', '--bundle', dir, '--api', proxy.url], seller.key);
      ok(resumed);
      expect(resumed.stdout).toContain(`resuming upload ${uploadId}`);
      expect(resumed.stdout).toContain('1 of 3 parts already stored');
      const imageId = imageIdIn(resumed.stdout)!;
      ok(await cli(['status', imageId, '--api', base, '--wait', '--interval', '1'], seller.key));
    } finally {
      await proxy.close();
    }
  }, 120_000);
});

describe('signing keys and platform keys over HTTP', () => {
  it("lets an account and admins manage its keys; another account's keys are missing", async () => {
    const key = await signingKey();
    const publicKeyPem = await readFile(key.publicKey, 'utf8');
    const made = await http(base, 'POST', `/v1/accounts/${seller.id}/signing-keys`, {
      key: seller.key,
      body: { publicKeyPem, name: 'http' },
    });
    expect(made.status).toBe(201);
    expect(made.body).toMatchObject({
      accountId: seller.id,
      name: 'http',
      algorithm: 'Ed25519',
      revokedAt: null,
    });
    const keyId = made.body.keyId as string;
    expectProblem(
      await http(base, 'GET', `/v1/accounts/${seller.id}/signing-keys`, { key: otherSeller.key }),
      404,
      'InvalidAccountID.NotFound',
    );
    expectProblem(
      await http(base, 'DELETE', `/v1/accounts/${seller.id}/signing-keys/${keyId}`, { key: otherSeller.key }),
      404,
      'InvalidAccountID.NotFound',
    );
    expectProblem(
      await http(base, 'DELETE', `/v1/accounts/${otherSeller.id}/signing-keys/${keyId}`, {
        key: otherSeller.key,
      }),
      404,
      'InvalidKeyPair.NotFound',
    );
    const privatePem = await readFile(key.privateKey, 'utf8');
    expectProblem(
      await http(base, 'POST', `/v1/accounts/${seller.id}/signing-keys`, {
        key: seller.key,
        body: { publicKeyPem: `${privatePem}${publicKeyPem}` },
      }),
      400,
      'InvalidKeyPair.Format',
    );
    const revoked = await http(base, 'DELETE', `/v1/accounts/${seller.id}/signing-keys/${keyId}`, {
      key: platform.adminKey,
    });
    expect(revoked.status).toBe(200);
    expect(revoked.body.revokedAt).toEqual(expect.any(String));
    expectProblem(
      await http(base, 'POST', `/v1/accounts/${seller.id}/signing-keys`, {
        key: seller.key,
        body: { publicKeyPem },
      }),
      409,
      'InvalidKeyPair.Duplicate',
    );
    const listed = await http(base, 'GET', `/v1/accounts/${seller.id}/signing-keys`, { key: seller.key });
    expect(listed.body.find((k: { keyId: string }) => k.keyId === keyId)?.revokedAt).toBe(
      revoked.body.revokedAt,
    );
  });
});

/**
 * A TCP proxy to the API that drops every connection once `limit` bytes went upstream, and then
 * refuses connections until healed: a network that goes away in the middle of an upload.
 */
async function startCuttingProxy(
  targetPort: string,
  limit: number,
): Promise<{ url: string; heal: () => void; close: () => Promise<void> }> {
  let mode: 'cut' | 'down' | 'pass' = 'cut';
  let sent = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    if (mode === 'down') {
      client.destroy();
      return;
    }
    const upstream = createConnection({ host: '127.0.0.1', port: Number(targetPort) });
    sockets.add(client).add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('data', (chunk: Buffer) => {
      if (mode === 'cut') {
        sent += chunk.length;
        if (sent > limit) {
          mode = 'down';
          for (const s of sockets) s.destroy();
          return;
        }
      }
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => client.write(chunk));
    client.on('end', () => upstream.end());
    upstream.on('end', () => client.end());
    client.on('error', drop);
    upstream.on('error', drop);
    client.on('close', () => sockets.delete(client));
    upstream.on('close', () => sockets.delete(upstream));
  });
  const port = await freePort();
  server.listen(port, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${port}`,
    heal: () => {
      mode = 'pass';
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      server.close();
      await once(server, 'close');
    },
  };
}
