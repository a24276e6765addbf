import { createReadStream } from 'node:fs';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { AccountView, PlatformKeysView } from '@imagemart/contracts';
import { CliError } from './cli.errors.js';

export interface ApiOptions {
  api: string;
  apiKey?: string;
}

interface Problem {
  code?: string;
  detail?: string;
}

function describeProblem(status: number, body: unknown): string {
  const p = (typeof body === 'object' && body !== null ? body : {}) as Problem;
  return p.code ? `${p.code}: ${p.detail ?? ''}`.trim() : `HTTP ${status}`;
}

/** The platform's HTTP API, as the CLI uses it. A 5xx or a network failure is transient; a 4xx is not. */
export class ApiClient {
  private readonly base: URL;

  constructor(private readonly options: ApiOptions) {
    try {
      this.base = new URL(options.api.endsWith('/') ? options.api : `${options.api}/`);
    } catch {
      throw new CliError(`--api must be a URL such as http://127.0.0.1:3000 (got ${options.api})`);
    }
  }

  private url(path: string): URL {
    return new URL(path.replace(/^\//, ''), this.base);
  }

  private headers(): Record<string, string> {
    if (!this.options.apiKey)
      throw new CliError('an API key is needed: pass --api-key or set IMAGEMART_API_KEY');
    return { authorization: `Bearer ${this.options.apiKey}` };
  }

  async json<T>(method: string, path: string, body?: unknown, { auth = true } = {}): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json', ...(auth ? this.headers() : {}) };
    if (body !== undefined) headers['content-type'] = 'application/json';
    let res: Response;
    try {
      res = await fetch(this.url(path), {
        method,
        headers,
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
    } catch (err) {
      const cause = (err as { cause?: { message?: string } }).cause?.message ?? (err as Error).message;
      throw new CliError(`cannot reach ${this.base.origin}: ${cause}`, undefined, true, { cause: err });
    }
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    if (!res.ok)
      throw new CliError(
        `${method} ${path}: ${describeProblem(res.status, parsed)}`,
        undefined,
        res.status >= 500,
        undefined,
      );
    return parsed as T;
  }

  me(): Promise<AccountView> {
    return this.json<AccountView>('GET', '/v1/me');
  }

  platformKeys(): Promise<PlatformKeysView> {
    return this.json<PlatformKeysView>('GET', '/v1/platform/keys', undefined, { auth: false });
  }

  /**
   * PUTs a file as one part, streamed from disk with its exact Content-Length (the part is never
   * held in memory). Resolves with the JSON answer.
   */
  putFile<T>(path: string, file: string, size: number, onBytes?: (n: number) => void): Promise<T> {
    const url = this.url(path);
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise<T>((resolve, reject) => {
      const req = send(url, {
        method: 'PUT',
        headers: {
          ...this.headers(),
          'content-type': 'application/octet-stream',
          'content-length': String(size),
          accept: 'application/json',
        },
      });
      const fail = (err: Error) =>
        reject(
          err instanceof CliError
            ? err
            : new CliError(`PUT ${path}: the connection failed (${err.message})`, undefined, true, {
                cause: err,
              }),
        );
      req.on('error', fail);
      req.on('response', (res: IncomingMessage) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', fail);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let body: unknown;
          try {
            body = text ? JSON.parse(text) : undefined;
          } catch {
            body = undefined;
          }
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300) resolve(body as T);
          else
            reject(new CliError(`PUT ${path}: ${describeProblem(status, body)}`, undefined, status >= 500));
        });
      });
      const stream = createReadStream(file, { highWaterMark: 1024 * 1024 });
      stream.on('data', (c) => onBytes?.(c.length));
      stream.on('error', (err) => {
        req.destroy(err);
        fail(err);
      });
      stream.pipe(req);
    });
  }
}
