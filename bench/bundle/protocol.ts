/**
 * What the bundle benchmark and its two children (bundle.fixture.ts, verify.fixture.ts) say to
 * each other over the IPC channel: the parent sends one `run` message, the child answers one
 * `result` (or `error`) message and exits.
 */

export interface RunMessage {
  type: 'run';
  storeRoot: string;
  /** The uploaded image, as an object of the store (the bundle child reads it with store.get). */
  imageKey: string;
  /** The image's id: the worker's handler stores its bundle under `bundles/<imageId>/`. */
  imageId: string;
  /** What the upload declares, as in the bundle job: the handler checks both. */
  imageSize: number;
  imageSha256: string;
  /** PEM: the platform's wrapping key pair and signing key pair. */
  wrappingPublicKey: string;
  wrappingPrivateKey: string;
  signingPublicKey: string;
  signingPrivateKey: string;
  /**
   * Bundle child: `store` puts every part and the manifest into the store (the worker's path);
   * `discard` drops them, to tell the pipeline's own speed from the store's.
   */
  sink: 'store' | 'discard';
  /** Part uploads (bundle) and part reads ahead (verify) in flight: the worker's BUNDLER_PART_CONCURRENCY. */
  partConcurrency: number;
}

export interface ChildStats {
  /** Wall time of the work itself, from the first byte read to the result (no start-up). */
  seconds: number;
  /** CPU time of the child during the work (all threads: main, libuv pool). */
  cpuUserSeconds: number;
  cpuSystemSeconds: number;
  /** process.resourceUsage().maxRSS at the end, in KiB. */
  maxRssKiB: number;
  /** RSS after start-up (imports, keys), before the work: what the work adds sits on top. */
  startRssKiB: number;
}

export interface BundleResultMessage extends ChildStats {
  type: 'result';
  imageDigest: string;
  imageSize: number;
  bundledSize: number;
  parts: number;
  /** Seconds spent inside store.put for parts (summed over calls; two may overlap). */
  putSeconds: number;
  manifestKey: string;
}

export interface VerifyResultMessage extends ChildStats {
  type: 'result';
  digest: string;
  size: number;
}

export interface ErrorMessage {
  type: 'error';
  message: string;
}


/** Receives the parent's `run` message, runs `work`, sends its result, and exits. */
export function serveOnce<R extends { type: 'result' }>(work: (run: RunMessage) => Promise<R>): void {
  // The parent went away (killed, or failed): nothing to report to, stop at once.
  const orphaned = () => process.exit(1);
  process.once('disconnect', orphaned);
  const reply = (message: R | ErrorMessage, code: number) => {
    process.send!(message, () => {
      process.off('disconnect', orphaned);
      process.exit(code);
    });
  };
  process.once('message', (message: RunMessage) => {
    work(message).then(
      (result) => reply(result, 0),
      (error: unknown) =>
        reply(
          { type: 'error', message: error instanceof Error ? (error.stack ?? error.message) : String(error) },
          1,
        ),
    );
  });
}

export function stats(started: number, cpuBefore: NodeJS.CpuUsage, startRssKiB: number): ChildStats {
  const cpu = process.cpuUsage(cpuBefore);
  return {
    seconds: (performance.now() - started) / 1000,
    cpuUserSeconds: cpu.user / 1e6,
    cpuSystemSeconds: cpu.system / 1e6,
    maxRssKiB: process.resourceUsage().maxRSS,
    startRssKiB,
  };
}
