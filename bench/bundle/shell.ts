/**
 * The shell pipelines the bundle benchmark compares with: what a system administrator would
 * write with the standard tools, compress → encrypt → split into 10 MiB parts, then a SHA-256 of
 * every part.
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';

export type ShellCompressor = 'zstd' | 'gzip';

const COMPRESS: Record<ShellCompressor, string> = {
  zstd: 'zstd -3 -T0 -q -c "$IMG"',
  gzip: 'gzip -1 -c "$IMG"',
};

/**
 * Prints the time (ns) between the two stages on stdout. `split -d -a 4` only widens the part
 * suffix (the default two letters stop at 676 parts, 6.6 GiB); it changes nothing else.
 */
const script = (compressor: ShellCompressor) => `
set -euo pipefail
${COMPRESS[compressor]} | openssl enc -aes-256-ctr -K "$KEY" -iv "$IV" | split -b 10M -d -a 4 - "$DIR/part."
date +%s%N
sha256sum "$DIR"/part.* > /dev/null
`;

export interface ShellRun {
  seconds: number;
  /** compress | encrypt | split, and then sha256sum alone. */
  pipelineSeconds: number;
  sha256Seconds: number;
  bundledBytes: number;
  parts: number;
}

function has(command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
}

/** Makes sure zstd (installed from Debian's packages if missing), gzip, openssl, split, sha256sum and bash exist. */
export function ensureShellTools(log: (line: string) => void): void {
  if (!has('zstd')) {
    log('zstd command-line tool missing: apt-get install -y zstd');
    const apt = (...args: string[]) =>
      spawnSync('apt-get', args, { stdio: ['ignore', 'ignore', 'inherit'] }).status;
    // The package lists may be missing or stale: update them once if the first try fails.
    if (apt('install', '-y', 'zstd') !== 0) apt('update');
    if (!has('zstd') && apt('install', '-y', 'zstd') !== 0 && !has('zstd')) {
      throw new Error(
        'The bundle benchmark needs the zstd command-line tool and could not install it ' +
          '(`apt-get install -y zstd` failed: not root, or no access to the Debian package mirror). ' +
          'Install the Debian package `zstd` and run it again.',
      );
    }
  }
  const packages: Record<string, string> = {
    bash: 'bash',
    openssl: 'openssl',
    gzip: 'gzip',
    split: 'coreutils',
    sha256sum: 'coreutils',
  };
  const missing = Object.keys(packages).filter((c) => !has(c));
  if (missing.length) {
    throw new Error(
      `The bundle benchmark needs ${missing.join(', ')} for its shell baselines ` +
        `(Debian packages: ${[...new Set(missing.map((c) => packages[c]))].join(', ')}).`,
    );
  }
}

/** Runs the pipeline on `image`, writing its parts into `dir` (an empty directory). */
export async function timeShellPipeline(
  compressor: ShellCompressor,
  image: string,
  dir: string,
): Promise<ShellRun> {
  const env = {
    ...process.env,
    IMG: image,
    DIR: dir,
    KEY: randomBytes(32).toString('hex'),
    IV: randomBytes(16).toString('hex'),
  };
  const startedAtMs = Date.now();
  const started = performance.now();
  const stdout = await new Promise<string>((resolve, reject) => {
    const child = spawn('bash', ['-c', script(compressor)], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0
        ? resolve(out)
        : reject(new Error(`the ${compressor} shell pipeline failed (exit ${code}): ${err.trim()}`)),
    );
  });
  const seconds = (performance.now() - started) / 1000;
  // The wall clock between the two stages (`date +%s%N`, ns) against the one at the start (ms).
  const pipelineSeconds = Math.min(seconds, Math.max(0, (Number(stdout.trim()) / 1e6 - startedAtMs) / 1000));

  const files = (await readdir(dir)).filter((f) => f.startsWith('part.'));
  let bundledBytes = 0;
  for (const f of files) bundledBytes += (await stat(join(dir, f))).size;
  return {
    seconds,
    pipelineSeconds,
    sha256Seconds: seconds - pipelineSeconds,
    bundledBytes,
    parts: files.length,
  };
}
