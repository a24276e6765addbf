// The part of autocannon's API the benchmarks use (the package ships no types).
declare module 'autocannon' {
  interface Histogram {
    average: number;
    mean: number;
    p50: number;
    p90: number;
    p99: number;
    p99_9: number;
    max: number;
  }
  interface Result {
    latency: Histogram;
    requests: Histogram & { total: number };
    errors: number;
    timeouts: number;
    non2xx: number;
  }
  interface Options {
    url: string;
    connections?: number;
    duration?: number;
    overallRate?: number;
    pipelining?: number;
    method?: string;
    /** Each request may be rewritten before it is sent and sees its answer. */
    requests?: {
      method?: string;
      setupRequest?(req: RequestParams): RequestParams;
      onResponse?(status: number, body: string): void;
    }[];
  }
  interface RequestParams {
    [key: string]: unknown;
    method?: string;
    path?: string;
    headers?: Record<string, string | undefined>;
    body?: string;
  }
  function autocannon(options: Options): Promise<Result>;
  namespace autocannon {
    export type { Result, Options };
  }
  export default autocannon;
}
