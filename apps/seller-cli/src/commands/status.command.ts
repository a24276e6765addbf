import { setTimeout as sleep } from 'node:timers/promises';
import type { BundleProgressView } from '@imagemart/contracts';
import { ApiClient } from '../api.client.js';
import { CliError, ExitCode } from '../cli.errors.js';
import { formatBytes } from '../progress.js';

export interface StatusCommandOptions {
  api: string;
  apiKey?: string;
  /** Poll until the image is available or failed. */
  wait: boolean;
  /** Seconds between polls. */
  interval: number;
  json: boolean;
}

function describe(p: BundleProgressView): string {
  const base = `${p.imageId} ${p.state}`;
  if (p.state === 'failed')
    return `${base}: ${p.reason ? `${p.reason.code}: ${p.reason.message}` : 'no reason given'}`;
  if (p.state !== 'pending') return `${base} (${p.phase}, ${p.percent}%)`;
  return `${base}: ${p.phase} ${p.percent}% (${formatBytes(p.bytesDone)} of ${formatBytes(p.bytesTotal)})`;
}

/**
 * `imagemart status <imageId>`: the image's state and the bundle's progress (verifying, percent).
 * Exits 0 while the image is pending or once it is available, 3 when it failed; with `--wait` it
 * polls until one of the two.
 */
export async function statusCommand(
  imageId: string,
  options: StatusCommandOptions,
  log: (line: string) => void,
): Promise<number> {
  const api = new ApiClient({ api: options.api, apiKey: options.apiKey });
  let last = '';
  for (;;) {
    const progress = await api.json<BundleProgressView>(
      'GET',
      `/v1/images/${encodeURIComponent(imageId)}/bundle`,
    );
    const line = options.json ? JSON.stringify(progress) : describe(progress);
    if (line !== last) log(line);
    last = line;
    if (progress.state === 'failed') return ExitCode.imageFailed;
    if (progress.state !== 'pending' || !options.wait) {
      if (progress.state === 'deregistered') throw new CliError(`${imageId} is deregistered`);
      return ExitCode.ok;
    }
    await sleep(options.interval * 1000);
  }
}
