import { SingleBar } from 'cli-progress';

/** Progress of a long step: a bar on a terminal, plain lines (every 10 %) when stderr is a file or a pipe. */
export interface Progress {
  update(done: number): void;
  stop(): void;
}

const MiB = 1024 * 1024;
export const formatBytes = (n: number) => (n >= MiB ? `${(n / MiB).toFixed(1)} MiB` : `${n} B`);

export function startProgress(
  label: string,
  total: number,
  stream: NodeJS.WriteStream = process.stderr,
): Progress {
  if (stream.isTTY) {
    const bar = new SingleBar({
      stream,
      format: `${label} [{bar}] {percentage}% | {doneText} of {totalText}`,
      hideCursor: true,
      clearOnComplete: false,
    });
    bar.start(Math.max(total, 1), 0, { doneText: formatBytes(0), totalText: formatBytes(total) });
    return {
      update: (done) => bar.update(Math.min(done, Math.max(total, 1)), { doneText: formatBytes(done) }),
      stop: () => bar.stop(),
    };
  }
  let lastStep = -1;
  const line = (done: number) => {
    const percent = total === 0 ? 100 : Math.floor((done / total) * 100);
    const step = Math.floor(percent / 10);
    if (step === lastStep) return;
    lastStep = step;
    stream.write(`${label}: ${percent}% (${formatBytes(done)} of ${formatBytes(total)})\n`);
  };
  line(0);
  return { update: line, stop: () => undefined };
}
