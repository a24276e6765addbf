/**
 * Bundling throughput and memory, against the shell pipelines a system administrator would use.
 *
 * 1. Writes an image of realistic content (half incompressible, half filesystem-like: see
 *    bundle/image.ts) of BENCH_BUNDLE_GIB GiB (default 2) into a FilesystemObjectStore in a temp
 *    directory, as an upload would leave it.
 * 2. Bundles it through the worker's own bundle handler (`bundleImage`, what a `bundle` job runs)
 *    in a child process: `store.get` of the upload → `bundle()` (zstd level 3 → AES-256-GCM →
 *    10 MiB parts → SHA-256), each part `store.put` (BENCH_BUNDLE_PART_CONCURRENCY in flight,
 *    default 3 as in the worker), then the manifest. Then verifies it in another child through
 *    the worker's verify handler (`verifyBundle`: `unbundle()` reading the manifest and parts back
 *    from the store and proving the image's SHA-256; the image itself is discarded).
 *    The children are compiled to plain JavaScript with esbuild and run under plain node with
 *    MALLOC_ARENA_MAX=2, as the worker runs in production (built, not under a TypeScript loader).
 *    Peak RSS is that of each child alone: `/usr/bin/time -v` when present, otherwise the
 *    child's own `process.resourceUsage().maxRSS`.
 *    A third child runs the same handler on a store that drops what it is given: the pipeline
 *    without the store.
 * 3. On the same file, times `zstd -3 -T0 | openssl enc -aes-256-ctr | split -b 10M` then
 *    `sha256sum` of the parts (the bar: C tools on every core), and the same with `gzip -1` (the
 *    EC2 AMI tools' way). zstd is installed from Debian's packages if it is missing.
 *
 * Each measure is the best of BENCH_BUNDLE_ROUNDS rounds (default 2; the gzip pipeline runs once).
 * MB are 10^6 bytes of the original image. Every temp file is removed, even on failure.
 * Standalone: `node --import tsx bench/bundle.bench.ts` from the repository root.
 */
import { fork, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { exportKeyPem, generatePlatformKeys } from '@imagemart/bundle-format';
import { writeImage } from './bundle/image.js';
import type {
  BundleResultMessage,
  ErrorMessage,
  RunMessage,
  VerifyResultMessage,
} from './bundle/protocol.js';
import { ensureShellTools, timeShellPipeline, type ShellCompressor, type ShellRun } from './bundle/shell.js';
import { runIfMain } from './support/process.js';

const GiB = 1024 ** 3;
const TIME = '/usr/bin/time';
/** A child that has not finished by then is stuck: the whole benchmark should take minutes. */
const CHILD_TIMEOUT_MS = 15 * 60_000;

const repoRoot = fileURLToPath(new URL('../', import.meta.url));
const log = (line: string) => process.stderr.write(`  bundle: ${line}\n`);

export async function run(): Promise<Record<string, number | string>> {
  const gib = Number(process.env.BENCH_BUNDLE_GIB ?? 2);
  if (!(gib > 0 && gib <= 1024))
    throw new Error(`BENCH_BUNDLE_GIB must be a number of GiB above 0, got ${process.env.BENCH_BUNDLE_GIB}`);
  const rounds = Number(process.env.BENCH_BUNDLE_ROUNDS ?? 2);
  if (!(Number.isInteger(rounds) && rounds >= 1 && rounds <= 10))
    throw new Error(
      `BENCH_BUNDLE_ROUNDS must be an integer from 1 to 10, got ${process.env.BENCH_BUNDLE_ROUNDS}`,
    );
  const imageSize = Math.round(gib * GiB);
  const partConcurrency = Number(process.env.BENCH_BUNDLE_PART_CONCURRENCY ?? 3);
  if (!(Number.isInteger(partConcurrency) && partConcurrency >= 1 && partConcurrency <= 16))
    throw new Error(`BENCH_BUNDLE_PART_CONCURRENCY must be an integer from 1 to 16, got ${process.env.BENCH_BUNDLE_PART_CONCURRENCY}`);
  ensureShellTools(log);
  log('compiling the worker handlers and the bench children to plain JavaScript (esbuild)');
  await buildChildren();
  const loadAtStart = loadavg()[0];

  const dir = await mkdtemp(join(tmpdir(), 'imagemart-bench-bundle-'));
  const children = new Set<ChildProcess>();
  // Ctrl-C or a kill of the runner: no `finally` runs then, so clean up here.
  const onSignal = (signal: NodeJS.Signals) => {
    for (const child of children) stopChild(child);
    rmSync(dir, { recursive: true, force: true });
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const storeRoot = join(dir, 'store');
    const imageId = 'ami-0be0c4b0000000001';
    const imageKey = 'uploads/bench-image/image.raw';
    // The filesystem store keeps an object at the path its key names: the image is written
    // there directly, as if uploaded, and the shell pipelines read the same file.
    const imagePath = join(storeRoot, imageKey);
    await mkdir(join(storeRoot, 'uploads/bench-image'), { recursive: true });

    const keys = await generatePlatformKeys();
    const t = performance.now();
    log(`writing a ${gib} GiB image to ${imagePath}`);
    const image = await writeImage(imagePath, imageSize);
    const generateSeconds = (performance.now() - t) / 1000;
    flushToDisk();

    const message: RunMessage = {
      type: 'run',
      storeRoot,
      imageKey,
      imageId,
      imageSize,
      imageSha256: image.sha256,
      partConcurrency,
      wrappingPublicKey: exportKeyPem(keys.wrapping.publicKey),
      wrappingPrivateKey: exportKeyPem(keys.wrapping.privateKey),
      signingPublicKey: exportKeyPem(keys.signing.publicKey),
      signingPrivateKey: exportKeyPem(keys.signing.privateKey),
      sink: 'store',
    };
    const bundleOnce = async (sink: RunMessage['sink']) => {
      const outcome = await runChild<BundleResultMessage>(
        'bundle.fixture',
        { ...message, sink },
        dir,
        children,
      );
      const { imageDigest, imageSize: size } = outcome.result;
      if (imageDigest !== image.sha256 || size !== imageSize)
        throw new Error(
          `bundle() saw another image: SHA-256 ${imageDigest} (${size} bytes), expected ${image.sha256}`,
        );
      flushToDisk();
      return outcome;
    };
    const verifyOnce = async () => {
      const outcome = await runChild<VerifyResultMessage>('verify.fixture', message, dir, children);
      const { digest, size } = outcome.result;
      if (digest !== image.sha256 || size !== imageSize)
        throw new Error(
          `unbundle() proved another image: SHA-256 ${digest} (${size} bytes), expected ${image.sha256}`,
        );
      return outcome;
    };
    const shell = async (compressor: ShellCompressor): Promise<ShellRun> => {
      log(`shell pipeline: ${compressor} | openssl enc -aes-256-ctr | split -b 10M; sha256sum`);
      const out = join(dir, `shell-${compressor}`);
      await mkdir(out);
      try {
        return await timeShellPipeline(compressor, imagePath, out);
      } finally {
        await rm(out, { recursive: true, force: true });
        flushToDisk();
      }
    };

    // Other work on the machine makes single runs noisy: each measure is the best of `rounds`,
    // taken in turn so that a busy moment does not hit one side only.
    const bundles: ChildOutcome<BundleResultMessage>[] = [];
    const verifies: ChildOutcome<VerifyResultMessage>[] = [];
    const pipelineOnly: ChildOutcome<BundleResultMessage>[] = [];
    const zstdShells: ShellRun[] = [];
    for (let i = 1; i <= rounds; i++) {
      log(`round ${i}/${rounds}: bundle (zstd 3, AES-256-GCM, 10 MiB parts → filesystem store)`);
      bundles.push(await bundleOnce('store'));
      log(`round ${i}/${rounds}: verify (unbundle from the store)`);
      verifies.push(await verifyOnce());
      await rm(join(storeRoot, 'bundles'), { recursive: true, force: true });
      flushToDisk();
      log(`round ${i}/${rounds}: bundle with parts discarded (the pipeline without the store)`);
      pipelineOnly.push(await bundleOnce('discard'));
      zstdShells.push(await shell('zstd'));
    }
    const gzipShell = await shell('gzip');

    const fastest = <T>(runs: T[], seconds: (r: T) => number) =>
      runs.reduce((best, r) => (seconds(r) < seconds(best) ? r : best));
    const bundled = fastest(bundles, (r) => r.result.seconds);
    const verified = fastest(verifies, (r) => r.result.seconds);
    const pipeline = fastest(pipelineOnly, (r) => r.result.seconds);
    const zstdShell = fastest(zstdShells, (r) => r.seconds);
    const peakMiB = (runs: ChildOutcome<unknown>[]) => Math.max(...runs.map((r) => r.peakRssKiB)) / 1024;

    const mbs = (seconds: number) => round(imageSize / 1e6 / seconds, 1);
    const bundleMbs = mbs(bundled.result.seconds);
    const cpu = (r: { cpuUserSeconds: number; cpuSystemSeconds: number }) =>
      `${round(r.cpuUserSeconds, 1)} user + ${round(r.cpuSystemSeconds, 1)} sys`;
    return {
      image_bytes: imageSize,
      bundle_mb_s: bundleMbs,
      verify_mb_s: mbs(verified.result.seconds),
      peak_rss_mib: round(Math.max(peakMiB(bundles), peakMiB(verifies)), 1),
      baseline_shell_mb_s: mbs(zstdShell.seconds),
      ratio_vs_shell: round(bundleMbs / mbs(zstdShell.seconds), 3),
      gzip_shell_mb_s: mbs(gzipShell.seconds),
      ratio_vs_gzip_shell: round(bundleMbs / mbs(gzipShell.seconds), 3),
      bundled_bytes: bundled.result.bundledSize,
      parts: bundled.result.parts,
      /** Image bytes per bundled byte (higher is smaller). */
      compression_ratio: round(imageSize / bundled.result.bundledSize, 3),

      // Where the time and the memory go.
      rounds,
      bundle_seconds: round(bundled.result.seconds, 2),
      bundle_cpu_seconds: cpu(bundled.result),
      bundle_store_put_seconds: round(bundled.result.putSeconds, 2),
      bundle_no_store_mb_s: mbs(pipeline.result.seconds),
      bundle_no_store_cpu_seconds: cpu(pipeline.result),
      verify_seconds: round(verified.result.seconds, 2),
      verify_cpu_seconds: cpu(verified.result),
      bundle_peak_rss_mib: round(peakMiB(bundles), 1),
      verify_peak_rss_mib: round(peakMiB(verifies), 1),
      bundle_no_store_peak_rss_mib: round(peakMiB(pipelineOnly), 1),
      child_start_rss_mib: round(
        Math.max(...[...bundles, ...verifies].map((r) => r.result.startRssKiB)) / 1024,
        1,
      ),
      peak_rss_measured_by: bundled.rssSource,
      baseline_shell_seconds: round(zstdShell.seconds, 2),
      baseline_shell_pipeline_seconds: round(zstdShell.pipelineSeconds, 2),
      baseline_shell_sha256sum_seconds: round(zstdShell.sha256Seconds, 2),
      baseline_shell_bytes: zstdShell.bundledBytes,
      gzip_shell_seconds: round(gzipShell.seconds, 2),
      gzip_shell_pipeline_seconds: round(gzipShell.pipelineSeconds, 2),
      gzip_shell_sha256sum_seconds: round(gzipShell.sha256Seconds, 2),
      gzip_shell_bytes: gzipShell.bundledBytes,
      all_bundle_mb_s: bundles.map((r) => mbs(r.result.seconds)).join(' '),
      all_verify_mb_s: verifies.map((r) => mbs(r.result.seconds)).join(' '),
      all_baseline_shell_mb_s: zstdShells.map((r) => mbs(r.seconds)).join(' '),
      image_random_fraction: round(image.randomBytes / imageSize, 3),
      image_generate_seconds: round(generateSeconds, 2),
      part_concurrency: partConcurrency,
      child_runtime: `node ${CHILD_NODE_ARGS.join(' ')} (esbuild bundle of the worker handlers), MALLOC_ARENA_MAX=${CHILD_ENV.MALLOC_ARENA_MAX}`,
      cores: availableParallelism(),
      loadavg_1m_at_start: round(loadAtStart, 2),
      loadavg_1m_at_end: round(loadavg()[0], 2),
    };
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    for (const child of children) stopChild(child);
    await rm(dir, { recursive: true, force: true });
  }
}

const round = (n: number, digits = 2) => Math.round(n * 10 ** digits) / 10 ** digits;

/** Writes dirty pages out between phases, so one phase's writeback does not slow the next. */
function flushToDisk(): void {
  spawnSync('sync', { stdio: 'ignore' });
}

interface ChildOutcome<R> {
  result: R;
  peakRssKiB: number;
  rssSource: string;
}

/** Where the compiled children go: inside the repository, so their package imports resolve. */
const CHILD_DIR = join(repoRoot, 'dist/bench/bundle');
/** Plain node: no tsx loader in the measured process (tsx alone adds ~30 MiB of RSS). */
const CHILD_NODE_ARGS: string[] = [];
/** glibc keeps one malloc arena per thread by default; the zstd and crypto threads each grow one. */
const CHILD_ENV = { MALLOC_ARENA_MAX: '2' };

/**
 * Compiles the two children, with the worker handlers and libraries they import, into one plain
 * ESM file each (packages stay imports from node_modules), so what is measured is the code as
 * it runs in production, not under a TypeScript loader.
 */
async function buildChildren(): Promise<void> {
  const { build } = await import('esbuild');
  await build({
    entryPoints: ['bundle.fixture', 'verify.fixture'].map((f) => fileURLToPath(new URL(`./bundle/${f}.ts`, import.meta.url))),
    outdir: CHILD_DIR,
    outExtension: { '.js': '.mjs' },
    bundle: true,
    packages: 'external',
    platform: 'node',
    format: 'esm',
    target: 'node20',
    tsconfig: join(repoRoot, 'tsconfig.json'),
    logLevel: 'warning',
  });
}

/**
 * Forks a compiled child (bundle.fixture or verify.fixture) under plain node (under
 * `/usr/bin/time -v` when present, which reports the child's peak RSS when it exits), sends it
 * `message` and waits for its result.
 */
function runChild<R extends { type: 'result'; maxRssKiB: number }>(
  fixture: string,
  message: RunMessage,
  dir: string,
  children: Set<ChildProcess>,
): Promise<ChildOutcome<R>> {
  const timeOutput = existsSync(TIME) ? join(dir, `${fixture}.time`) : undefined;
  const child = fork(join(CHILD_DIR, `${fixture}.mjs`), [], {
    cwd: repoRoot,
    env: { ...process.env, ...CHILD_ENV },
    // /usr/bin/time passes the IPC channel's descriptor and NODE_CHANNEL_FD on to node.
    execPath: timeOutput ? TIME : process.execPath,
    execArgv: timeOutput ? ['-v', '-o', timeOutput, process.execPath, ...CHILD_NODE_ARGS] : CHILD_NODE_ARGS,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  children.add(child);
  return new Promise<ChildOutcome<R>>((resolve, reject) => {
    let reply: R | ErrorMessage | undefined;
    const timer = setTimeout(() => {
      stopChild(child);
      reject(new Error(`${fixture} did not finish within ${CHILD_TIMEOUT_MS / 60_000} min`));
    }, CHILD_TIMEOUT_MS);
    child.on('message', (m: R | ErrorMessage) => (reply = m));
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      children.delete(child);
      if (reply?.type === 'error') return reject(new Error(`${fixture} failed: ${reply.message}`));
      if (!reply || code !== 0)
        return reject(new Error(`${fixture} exited with ${signal ?? code} without a result`));
      const result = reply;
      if (!timeOutput)
        return resolve({ result, peakRssKiB: result.maxRssKiB, rssSource: 'process.resourceUsage().maxRSS' });
      readFile(timeOutput, 'utf8').then((text) => {
        const kib = /Maximum resident set size \(kbytes\): (\d+)/.exec(text);
        if (!kib)
          return reject(new Error(`no maximum resident set size in the output of ${TIME} -v:\n${text}`));
        resolve({ result, peakRssKiB: Number(kib[1]), rssSource: `${TIME} -v` });
      }, reject);
    });
    child.send(message);
  });
}

/**
 * Closing the channel makes the node child exit (see protocol.ts), even when it runs under
 * /usr/bin/time and the kill only reaches `time`.
 */
function stopChild(child: ChildProcess): void {
  if (child.connected) child.disconnect();
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}

runIfMain(import.meta.url, run);
