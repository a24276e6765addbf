import { createHash } from 'node:crypto';
import { readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseManifest, type Manifest } from '@imagemart/bundle-format';
import type { UploadPartView, UploadView } from '@imagemart/contracts';
import { ApiClient } from '../api.client.js';
import { CliError, oneLine } from '../cli.errors.js';
import { startProgress } from '../progress.js';
import { MANIFEST_FILE } from './bundle.command.js';

/** Beside the parts: which upload this bundle went to, so running `upload` again resumes it. */
export const UPLOAD_STATE_FILE = '.imagemart-upload.json';

interface UploadState {
  api: string;
  uploadId: string;
  imageId: string;
  /** SHA-256 of the manifest the upload was made for: another bundle in the directory starts afresh. */
  manifestSha256: string;
}

export interface UploadCommandOptions {
  bundle: string;
  api: string;
  apiKey?: string;
  /** Failures in a row (network, 5xx) before giving up; the upload resumes where it stopped. */
  retries: number;
  /** Seconds before the first retry; doubled each time, at most 30. */
  retryDelay: number;
  platform?: string;
  listingId?: string;
}

async function readState(file: string): Promise<UploadState | undefined> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as UploadState;
  } catch {
    return undefined;
  }
}

/**
 * `imagemart upload`: opens an upload of kind `bundle` with the manifest (the API checks its
 * signature, user and platform key), PUTs every part the API does not have yet, then completes
 * it. On a failure (a dropped connection, a 5xx) it waits and asks the API which parts it has,
 * and goes on from there; after `retries` failures in a row it stops, and running the same
 * command again resumes the same upload (its id is kept in `.imagemart-upload.json`; once the
 * upload is complete, running it again only says so).
 */
export async function uploadCommand(
  options: UploadCommandOptions,
  log: (line: string) => void,
): Promise<string> {
  const api = new ApiClient({ api: options.api, apiKey: options.apiKey });
  const manifestFile = path.join(options.bundle, MANIFEST_FILE);
  let xml: string;
  try {
    xml = await readFile(manifestFile, 'utf8');
  } catch (err) {
    throw new CliError(
      `no bundle in ${options.bundle}: cannot read ${manifestFile} (${(err as Error).message})`,
    );
  }
  let manifest: Manifest;
  try {
    manifest = parseManifest(xml);
  } catch (err) {
    throw new CliError(`${manifestFile} is not a valid manifest: ${oneLine(err)}`);
  }
  // Every part must be there at its size before anything is sent.
  for (const part of manifest.parts) {
    const size = await stat(path.join(options.bundle, part.filename)).then(
      (s) => s.size,
      () => -1,
    );
    if (size !== part.size) {
      throw new CliError(
        `part ${part.filename} is ${size < 0 ? 'missing' : `${size} bytes, not ${part.size}`} in ${options.bundle}`,
      );
    }
  }

  const stateFile = path.join(options.bundle, UPLOAD_STATE_FILE);
  const manifestSha256 = createHash('sha256').update(xml).digest('hex');
  const saved = await readState(stateFile);
  let upload: UploadView | undefined;
  if (saved && saved.api === options.api && saved.manifestSha256 === manifestSha256) {
    upload = await api.json<UploadView>('GET', `/v1/uploads/${saved.uploadId}`).catch((err: unknown) => {
      if (err instanceof CliError && err.transient) throw err;
      return undefined; // gone (or not ours): start a new upload
    });
    if (upload?.state === 'aborted') upload = undefined;
    if (upload)
      log(
        `resuming upload ${upload.uploadId} of image ${upload.imageId}: ${upload.parts.length} of ${upload.partCount} parts already stored`,
      );
  }
  if (!upload) {
    upload = await api.json<UploadView>('POST', '/v1/uploads', {
      kind: 'bundle',
      manifest: xml,
      ...(options.platform ? { platform: options.platform } : {}),
      ...(options.listingId ? { listingId: options.listingId } : {}),
    });
    const state: UploadState = {
      api: options.api,
      uploadId: upload.uploadId,
      imageId: upload.imageId,
      manifestSha256,
    };
    await writeFile(stateFile, `${JSON.stringify(state, null, 2)}\n`);
    log(`upload ${upload.uploadId} opened for image ${upload.imageId} (${upload.partCount} parts)`);
  }

  const uploadId = upload.uploadId;
  const total = manifest.image.bundledSize;
  const stored = () => upload!.parts.reduce((sum, p) => sum + p.size, 0);
  let failures = 0;
  const stopped = (err: unknown) =>
    new CliError(
      `the upload stopped (${oneLine(err)}) after ${failures} failures in a row; run the same command again to resume upload ${uploadId}`,
      undefined,
      true,
      { cause: err },
    );
  while (upload.state === 'open' && upload.missing.length > 0) {
    const progress = startProgress('uploading', total);
    let done = stored();
    progress.update(done);
    try {
      for (const n of upload.missing) {
        const part = manifest.parts[n - 1];
        await api.putFile<UploadPartView>(
          `/v1/uploads/${uploadId}/parts/${n}`,
          path.join(options.bundle, part.filename),
          part.size,
          (bytes) => {
            progress.update(done + bytes);
          },
        );
        done += part.size;
        progress.update(done);
        failures = 0;
      }
      progress.stop();
    } catch (err) {
      progress.stop();
      if (!(err instanceof CliError) || !err.transient) throw err;
      failures += 1;
      if (failures > options.retries) throw stopped(err);
      const delay = Math.min(30, options.retryDelay * 2 ** (failures - 1));
      log(`${oneLine(err)}; retrying in ${delay} s (failure ${failures} of ${options.retries})`);
      await sleep(delay * 1000);
    }
    // What the API has is the truth: resume from its missing parts.
    try {
      upload = await api.json<UploadView>('GET', `/v1/uploads/${uploadId}`);
    } catch (err) {
      if (!(err instanceof CliError) || !err.transient) throw err;
      failures += 1;
      if (failures > options.retries) throw stopped(err);
      // Still unreachable: the loop tries the parts it knew to be missing, after the next wait.
    }
  }
  if (upload.state === 'aborted') throw new CliError(`upload ${uploadId} was aborted`);
  if (upload.state === 'open') {
    upload = await api.json<UploadView>('POST', `/v1/uploads/${uploadId}/complete`);
  }
  log(
    `upload ${uploadId} complete: image ${upload.imageId} is being verified (imagemart status ${upload.imageId})`,
  );
  return upload.imageId;
}
