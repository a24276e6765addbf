import { Agent, request as httpRequest } from 'node:http';

export interface OpenLoopRequest {
  method: 'GET' | 'POST';
  path: string;
  headers?: Record<string, string>;
  body?: string;
}

export interface OpenLoopOptions {
  /** Base URL of the server. */
  base: string;
  /** Requests a second, sent on schedule whatever the answers do. */
  rate: number;
  durationS: number;
  /** At most this many connections (the clients); a request due while all are busy waits for one, and its wait counts. */
  connections: number;
  /** The i-th request. */
  next: (i: number) => OpenLoopRequest;
  /** Whether an answer is right; a wrong one counts as an error. */
  check: (status: number, body: string) => boolean;
}

export interface OpenLoopResult {
  p50_ms: number;
  p99_ms: number;
  p999_ms: number;
  max_ms: number;
  /** Answers a second over the run. */
  rps: number;
  requests: number;
  errors: number;
  /** The first wrong answer, for the report. */
  sample: string;
}

/**
 * A fixed-rate run: an open loop that sends a request every 1/rate s whatever the answers do and
 * times each from when it was due, so a slow answer cannot hide the ones queued behind it (a
 * closed loop, like autocannon's connections, waits and under-reports). autocannon's
 * `overallRate` paces each connection separately, so its connections fire in bursts.
 */
export async function openLoop(options: OpenLoopOptions): Promise<OpenLoopResult> {
  const url = new URL(options.base);
  const agent = new Agent({ keepAlive: true, maxSockets: options.connections });
  const latencies: number[] = [];
  let errors = 0;
  let sample = '';
  const started = performance.now();
  const total = Math.round(options.rate * options.durationS);
  const inFlight: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const due = started + (i * 1000) / options.rate;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
    const r = options.next(i);
    inFlight.push(
      new Promise<void>((resolve) => {
        const req = httpRequest(
          { host: url.hostname, port: url.port, method: r.method, path: r.path, agent, headers: r.headers ?? {} },
          (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () => {
              latencies.push(performance.now() - due);
              const body = Buffer.concat(chunks).toString();
              if (!options.check(res.statusCode ?? 0, body)) {
                errors++;
                sample ||= `${res.statusCode} ${body.slice(0, 300)}`;
              }
              resolve();
            });
          },
        );
        req.on('error', (err) => {
          errors++;
          sample ||= err.message;
          resolve();
        });
        req.end(r.body);
      }),
    );
  }
  await Promise.all(inFlight);
  const elapsedS = (performance.now() - started) / 1000;
  agent.destroy();
  latencies.sort((a, b) => a - b);
  const at = (q: number) => Math.round(latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0);
  return {
    p50_ms: at(0.5),
    p99_ms: at(0.99),
    p999_ms: at(0.999),
    max_ms: Math.round(latencies.at(-1) ?? 0),
    rps: Math.round(latencies.length / elapsedS),
    requests: latencies.length,
    errors,
    sample,
  };
}
