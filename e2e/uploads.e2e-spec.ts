import { createHash, randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { ListObjectsCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestS3Server, waitFor, type TestS3Server } from '@imagemart/testing';
import { expectProblem, http, Platform, type TestAccount } from './support/platform.js';

/**
 * The seller publishing flow over HTTP, with the five real processes and the S3 driver against a
 * loopback S3 server: start an upload, put parts (one connection dropped mid-part, resumed from
 * GET), complete, follow the progress to `available`; and the ways it goes wrong.
 */
const MiB = 1024 * 1024;
const PART_SIZE = 8 * MiB;

let s3: TestS3Server;
let s3Client: S3Client;
let platform: Platform;
let base: string;
let seller: TestAccount;
let otherSeller: TestAccount;
let buyer: TestAccount;
let n = 0;

beforeAll(async () => {
  s3 = await startTestS3Server();
  s3Client = new S3Client({
    endpoint: s3.endpoint,
    region: s3.region,
    forcePathStyle: true,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
  });
  platform = await Platform.start('uploads', {
    OBJECT_STORE_DRIVER: 's3',
    S3_ENDPOINT: s3.endpoint,
    S3_REGION: s3.region,
    S3_BUCKET: s3.bucket,
    S3_ACCESS_KEY_ID: s3.accessKeyId,
    S3_SECRET_ACCESS_KEY: s3.secretAccessKey,
    S3_FORCE_PATH_STYLE: 'true',
    UPLOAD_PART_SIZE_BYTES: String(PART_SIZE),
  });
  base = platform.baseUrl;
  [seller, otherSeller, buyer] = await Promise.all([
    platform.createAccount(['seller']),
    platform.createAccount(['seller']),
    platform.createAccount(['buyer']),
  ]);
}, 90_000);

afterAll(async () => {
  await platform?.stop();
  s3Client?.destroy();
  await s3?.stop();
});

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/** Object keys in the bucket under a prefix. */
async function storedKeys(prefix: string): Promise<string[]> {
  const page = await s3Client.send(new ListObjectsCommand({ Bucket: s3.bucket, Prefix: prefix }));
  return (page.Contents ?? []).map((o) => o.Key ?? '').sort();
}

const uploadBody = (data: Buffer, overrides: Record<string, unknown> = {}) => ({
  name: `Upload test ${++n} ${randomBytes(3).toString('hex')}`,
  version: '2026.11.1',
  description: 'An image uploaded in parts',
  architecture: 'x86_64',
  virtualizationType: 'hvm',
  rootDeviceName: '/dev/xvda',
  blockDeviceMappings: [{ deviceName: '/dev/xvdb', virtualName: 'ephemeral0' }],
  size: data.length,
  sha256: sha256(data),
  ...overrides,
});

interface PartAnswer {
  status: number;
  headers: Headers;
  body: { partNumber?: number; size?: number; sha256?: string; code?: string; detail?: string };
}

/**
 * PUT of a part over a plain HTTP connection, so that the test controls Content-Length and can drop
 * the connection part-way (`dropAfter` bytes sent): then it resolves `dropped`.
 */
function putPart(
  uploadId: string,
  partNumber: number,
  data: Buffer,
  options: { key?: string; contentLength?: number; dropAfter?: number; refusedBeforeBody?: boolean } = {},
): Promise<PartAnswer | 'dropped'> {
  const url = new URL(`${base}/v1/uploads/${uploadId}/parts/${partNumber}`);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        method: 'PUT',
        host: url.hostname,
        port: url.port,
        path: url.pathname,
        headers: {
          authorization: `Bearer ${options.key ?? seller.key}`,
          'content-type': 'application/octet-stream',
          'content-length': String(options.contentLength ?? data.length),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const headers = new Headers();
          for (const [name, value] of Object.entries(res.headers)) {
            if (value !== undefined) headers.set(name, Array.isArray(value) ? value.join(', ') : value);
          }
          resolve({ status: res.statusCode ?? 0, headers, body: text ? (JSON.parse(text) as PartAnswer['body']) : {} });
        });
      },
    );
    let answered = false;
    req.on('response', () => (answered = true));
    req.on('error', (err) => (options.dropAfter !== undefined ? resolve('dropped') : answered ? undefined : reject(err)));
    if (options.refusedBeforeBody) {
      // The gateway refuses this part before reading its body, and may close the connection while
      // a client still writes (EPIPE): send the headers, and the body only if no answer came.
      req.flushHeaders();
      setTimeout(() => (answered ? req.destroy() : req.end(data)), 1000);
      return;
    }
    if (options.dropAfter !== undefined) {
      req.write(data.subarray(0, options.dropAfter), () => {
        // The connection goes away mid-part, as a client's network would.
        setTimeout(() => req.destroy(), 200);
      });
      return;
    }
    req.end(data);
  });
}

async function okPart(uploadId: string, partNumber: number, data: Buffer): Promise<void> {
  const res = await putPart(uploadId, partNumber, data);
  expect(res).not.toBe('dropped');
  const answer = res as PartAnswer;
  expect(answer.status, JSON.stringify(answer.body)).toBe(200);
  expect(answer.body).toEqual({ partNumber, size: data.length, sha256: sha256(data) });
}

const partOf = (data: Buffer, partNumber: number) => data.subarray((partNumber - 1) * PART_SIZE, partNumber * PART_SIZE);

describe('a resumable upload becomes an available image', () => {
  it('streams parts, survives a dropped connection, completes, shows progress and ends available', async () => {
    const image = randomBytes(2 * PART_SIZE + 3 * MiB + 123);
    const created = await http(base, 'POST', '/v1/uploads', { key: seller.key, body: uploadBody(image) });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const upload = created.body as { uploadId: string; imageId: string; partSize: number; partCount: number; state: string; missing: number[] };
    expect(upload).toMatchObject({ partSize: PART_SIZE, partCount: 3, state: 'open', missing: [1, 2, 3] });
    expect(upload.uploadId).toMatch(/^upl-[0-9a-f]{17}$/);
    const pending = await http(base, 'GET', `/v1/images/${upload.imageId}`, { key: seller.key });
    expect(pending.body).toMatchObject({ state: 'pending', architecture: 'x86_64', version: '2026.11.1' });
    expect((await http(base, 'GET', `/v1/images/${upload.imageId}/bundle`, { key: seller.key })).body).toMatchObject({
      state: 'pending',
      phase: 'waiting',
      percent: 0,
    });

    await okPart(upload.uploadId, 1, partOf(image, 1));
    // Part 2: the connection drops after 3 MiB of 8.
    expect(await putPart(upload.uploadId, 2, partOf(image, 2), { dropAfter: 3 * MiB })).toBe('dropped');
    await sleep(300);

    // The client resumes where GET says.
    const state = await http(base, 'GET', `/v1/uploads/${upload.uploadId}`, { key: seller.key });
    expect(state.status).toBe(200);
    expect(state.body).toMatchObject({ state: 'open', missing: [2, 3] });
    expect(state.body.parts).toEqual([{ partNumber: 1, size: PART_SIZE, sha256: sha256(partOf(image, 1)) }]);
    // The dropped part is not kept (its removal may finish just after the connection closed).
    await waitFor(async () => JSON.stringify(await storedKeys(`uploads/${upload.uploadId}/`)) === JSON.stringify([`uploads/${upload.uploadId}/part-1`]), {
      what: 'only part 1 to be stored',
    });
    for (const partNumber of state.body.missing as number[]) await okPart(upload.uploadId, partNumber, partOf(image, partNumber));
    // Putting a part again replaces it (same bytes here: the upload stays intact).
    await okPart(upload.uploadId, 1, partOf(image, 1));

    // A last part longer than it is declared to be is refused, and the stored one stays.
    const longer = await putPart(upload.uploadId, 3, Buffer.concat([partOf(image, 3), Buffer.alloc(10)]), { refusedBeforeBody: true });
    expectProblem(longer as PartAnswer, 400, 'InvalidParameterValue');
    // Longer than any part: the part route's body limit.
    const tooLarge = await putPart(upload.uploadId, 1, Buffer.alloc(PART_SIZE + 1), { refusedBeforeBody: true });
    expectProblem(tooLarge as PartAnswer, 413, 'PayloadTooLarge');
    const beforeComplete = await http(base, 'GET', `/v1/uploads/${upload.uploadId}`, { key: seller.key });
    expect(beforeComplete.body.missing).toEqual([]);
    expect(beforeComplete.body.parts.map((p: { sha256: string }) => p.sha256)).toEqual([1, 2, 3].map((i) => sha256(partOf(image, i))));

    const completed = await http(base, 'POST', `/v1/uploads/${upload.uploadId}/complete`, { key: seller.key });
    expect(completed.status, JSON.stringify(completed.body)).toBe(200);
    expect(completed.body).toMatchObject({ state: 'complete', missing: [] });
    const again = await http(base, 'POST', `/v1/uploads/${upload.uploadId}/complete`, { key: seller.key });
    expect(again.status).toBe(200);
    expect(again.body).toEqual(completed.body);
    // A complete upload takes no more parts.
    expectProblem((await putPart(upload.uploadId, 1, partOf(image, 1), { refusedBeforeBody: true })) as PartAnswer, 409, 'IncorrectState');

    // Progress, polled until the image is available.
    const seen: { state: string; phase: string; percent: number; bytesDone: number; bytesTotal: number }[] = [];
    await waitFor(
      async () => {
        const res = await http(base, 'GET', `/v1/images/${upload.imageId}/bundle`, { key: seller.key });
        expect(res.status, JSON.stringify(res.body)).toBe(200);
        seen.push(res.body);
        if (res.body.state === 'failed') throw new Error(`the image failed: ${JSON.stringify(res.body)}`);
        return res.body.state === 'available';
      },
      { timeoutMs: 60_000, intervalMs: 50, what: 'the image to become available' },
    );
    const last = seen.at(-1)!;
    expect(last).toEqual({
      imageId: upload.imageId,
      state: 'available',
      phase: 'done',
      bytesDone: image.length,
      bytesTotal: image.length,
      percent: 100,
      reason: null,
    });
    // The seller saw the work under way, not only its end.
    expect(seen.some((s) => s.state === 'pending' && s.phase !== 'waiting' && s.percent > 0), JSON.stringify(seen)).toBe(true);
    const percents = seen.map((s) => s.percent);
    expect(percents).toEqual([...percents].sort((a, b) => a - b)); // never goes back
    for (const s of seen.filter((s) => s.state === 'pending' && s.phase !== 'waiting')) {
      expect(['reading', 'bundling', 'storing-manifest', 'done', 'verifying']).toContain(s.phase);
      expect(s.bytesTotal).toBe(image.length);
      expect(s.percent).toBeLessThan(100);
    }

    const available = await http(base, 'GET', `/v1/images/${upload.imageId}`, { key: seller.key });
    expect(available.body).toMatchObject({ state: 'available', imageSize: image.length, manifestLocation: `bundles/${upload.imageId}/manifest.xml` });
    // The bundle is stored; the upload's parts are gone.
    expect(await storedKeys(`bundles/${upload.imageId}/`)).toContain(`bundles/${upload.imageId}/manifest.xml`);
    await waitFor(async () => (await storedKeys(`uploads/${upload.uploadId}/`)).length === 0, { what: 'the parts to be removed' });
    // Only the owner follows the bundle.
    expectProblem(await http(base, 'GET', `/v1/images/${upload.imageId}/bundle`, { key: otherSeller.key }), 404, 'InvalidAMIID.NotFound');
  }, 120_000);
});

describe('uploads that go wrong', () => {
  it('refuses an unknown architecture, and a buyer, at create', async () => {
    const data = randomBytes(1024);
    const res = await http(base, 'POST', '/v1/uploads', { key: seller.key, body: uploadBody(data, { architecture: 'sparc64' }) });
    const problem = expectProblem(res, 400, 'InvalidParameterValue');
    expect(problem.errors?.map((e) => e.path)).toContain('architecture');
    expectProblem(await http(base, 'POST', '/v1/uploads', { key: buyer.key, body: uploadBody(data) }), 403, 'UnauthorizedOperation');
    const badSha = await http(base, 'POST', '/v1/uploads', { key: seller.key, body: uploadBody(data, { sha256: 'abc' }) });
    expect(expectProblem(badSha, 400, 'InvalidParameterValue').errors?.map((e) => e.path)).toContain('sha256');
  });

  it('refuses image text a manifest cannot hold (U+FFFE, U+FFFF) at create, register and update, and registers nothing', async () => {
    const data = randomBytes(1024);
    for (const field of ['description', 'version']) {
      const body = uploadBody(data, { [field]: `text \uFFFE\uFFFF` });
      const problem = expectProblem(await http(base, 'POST', '/v1/uploads', { key: seller.key, body }), 400, 'InvalidParameterValue');
      expect(problem.errors?.map((e) => e.path)).toContain(field);
      const { size: _size, sha256: _sha, ...image } = body;
      expectProblem(await http(base, 'POST', '/v1/images', { key: seller.key, body: image }), 400, 'InvalidParameterValue');
      const found = await http(base, 'GET', `/v1/images?q=${encodeURIComponent(body.name)}`, { key: seller.key });
      expect(found.body.items).toEqual([]);
    }
    const created = await http(base, 'POST', '/v1/uploads', { key: seller.key, body: uploadBody(data) });
    expect(created.status).toBe(201);
    expectProblem(
      await http(base, 'PATCH', `/v1/images/${created.body.imageId}`, { key: seller.key, body: { description: 'x\uFFFE' } }),
      400,
      'InvalidParameterValue',
    );
    const image = await http(base, 'GET', `/v1/images/${created.body.imageId}`, { key: seller.key });
    expect(image.body.description).toBe('An image uploaded in parts');
    await http(base, 'POST', `/v1/uploads/${created.body.uploadId}/abort`, { key: seller.key });
  });

  it("answers another account's upload as a missing one", async () => {
    const data = randomBytes(4096);
    const created = await http(base, 'POST', '/v1/uploads', { key: seller.key, body: uploadBody(data) });
    expect(created.status).toBe(201);
    const { uploadId } = created.body as { uploadId: string };
    expectProblem(await http(base, 'GET', `/v1/uploads/${uploadId}`, { key: otherSeller.key }), 404, 'InvalidUploadID.NotFound');
    expectProblem((await putPart(uploadId, 1, data, { key: otherSeller.key, refusedBeforeBody: true })) as PartAnswer, 404, 'InvalidUploadID.NotFound');
    expectProblem(await http(base, 'POST', `/v1/uploads/${uploadId}/complete`, { key: otherSeller.key }), 404, 'InvalidUploadID.NotFound');
    expectProblem(await http(base, 'DELETE', `/v1/uploads/${uploadId}`, { key: otherSeller.key }), 404, 'InvalidUploadID.NotFound');
    expectProblem(await http(base, 'GET', '/v1/uploads/upl-0123456789abcdef0', { key: seller.key }), 404, 'InvalidUploadID.NotFound');
    expectProblem(await http(base, 'GET', '/v1/uploads/not-an-id', { key: seller.key }), 400, 'InvalidUploadID.Malformed');
    // Nothing of the owner's upload changed.
    const mine = await http(base, 'GET', `/v1/uploads/${uploadId}`, { key: seller.key });
    expect(mine.body).toMatchObject({ state: 'open', parts: [], missing: [1] });
    // Raw bodies go to the part route only; JSON is not a part.
    const raw = await http(base, 'POST', '/v1/uploads', { key: seller.key, rawBody: 'bytes', contentType: 'application/octet-stream' });
    expectProblem(raw, 415, 'UnsupportedMediaType');
    const json = await http(base, 'PUT', `/v1/uploads/${uploadId}/parts/1`, { key: seller.key, body: { data: 'x' } });
    expectProblem(json, 415, 'UnsupportedMediaType');
  });

  it('refuses to complete a truncated upload, then aborts it: parts removed, image deregistered', async () => {
    const image = randomBytes(2 * PART_SIZE + 1000);
    const created = await http(base, 'POST', '/v1/uploads', { key: seller.key, body: uploadBody(image) });
    expect(created.status).toBe(201);
    const { uploadId, imageId } = created.body as { uploadId: string; imageId: string };
    await okPart(uploadId, 1, partOf(image, 1));
    await okPart(uploadId, 3, partOf(image, 3));
    // A part shorter than its number takes: refused, nothing kept.
    expectProblem((await putPart(uploadId, 2, partOf(image, 2).subarray(0, 1000))) as PartAnswer, 400, 'InvalidParameterValue');

    const truncated = await http(base, 'POST', `/v1/uploads/${uploadId}/complete`, { key: seller.key });
    const problem = expectProblem(truncated, 400, 'InvalidParameterValue');
    expect(problem.detail).toMatch(/missing \(2\)/);
    expect(problem.errors).toEqual([{ path: 'parts', message: 'part 2 is missing' }]);
    expect((await http(base, 'GET', `/v1/uploads/${uploadId}`, { key: seller.key })).body).toMatchObject({ state: 'open', missing: [2] });
    expect(await storedKeys(`uploads/${uploadId}/`)).toEqual([`uploads/${uploadId}/part-1`, `uploads/${uploadId}/part-3`]);

    const aborted = await http(base, 'DELETE', `/v1/uploads/${uploadId}`, { key: seller.key });
    expect(aborted.status, JSON.stringify(aborted.body)).toBe(200);
    expect(aborted.body).toMatchObject({ state: 'aborted', parts: [], missing: [] });
    expect((await http(base, 'DELETE', `/v1/uploads/${uploadId}`, { key: seller.key })).body).toMatchObject({ state: 'aborted' });
    expect(await storedKeys(`uploads/${uploadId}/`)).toEqual([]);
    expect((await http(base, 'GET', `/v1/images/${imageId}`, { key: seller.key })).body).toMatchObject({ state: 'deregistered' });
    expectProblem(await http(base, 'POST', `/v1/uploads/${uploadId}/complete`, { key: seller.key }), 409, 'IncorrectState');
    expectProblem((await putPart(uploadId, 2, partOf(image, 2), { refusedBeforeBody: true })) as PartAnswer, 409, 'IncorrectState');
  });

  it('fails the image with a readable reason when the declared SHA-256 is wrong, and leaves no parts', async () => {
    const image = randomBytes(PART_SIZE + 5000);
    const wrong = sha256(Buffer.from('not this image'));
    const created = await http(base, 'POST', '/v1/uploads', { key: seller.key, body: uploadBody(image, { sha256: wrong }) });
    expect(created.status).toBe(201);
    const { uploadId, imageId } = created.body as { uploadId: string; imageId: string };
    await okPart(uploadId, 1, partOf(image, 1));
    await okPart(uploadId, 2, partOf(image, 2));
    expect((await http(base, 'POST', `/v1/uploads/${uploadId}/complete`, { key: seller.key })).status).toBe(200);

    const failed = await waitFor(
      async () => {
        const res = await http(base, 'GET', `/v1/images/${imageId}/bundle`, { key: seller.key });
        return res.body.state === 'failed' ? res.body : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 100, what: 'the image to fail' },
    );
    expect(failed.reason).toMatchObject({ code: 'SourceDigestMismatch' });
    expect(failed.reason.message).toContain(`but ${wrong} was declared`);
    expect((await http(base, 'GET', `/v1/images/${imageId}`, { key: seller.key })).body).toMatchObject({
      state: 'failed',
      stateReason: { code: 'SourceDigestMismatch' },
    });
    await waitFor(async () => (await storedKeys(`uploads/${uploadId}/`)).length === 0, { what: 'the parts to be removed' });
    expect(await storedKeys(`bundles/${imageId}/`)).toEqual([]);
  }, 90_000);
});
