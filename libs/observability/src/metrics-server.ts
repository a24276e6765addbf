import { createServer, type Server } from 'node:http';
import { once } from 'node:events';
import { metricsRegistry } from './metrics.js';

/**
 * A bare HTTP listener for `GET /metrics`, for the processes that have no HTTP server of their
 * own (the RPC services and the worker). Everything else answers 404.
 */
export async function startMetricsServer(port: number, host = '127.0.0.1'): Promise<{ port: number; close: () => Promise<void> }> {
  const server: Server = createServer((req, res) => {
    if (req.method !== 'GET' || req.url?.split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    metricsRegistry.metrics().then(
      (body) => res.writeHead(200, { 'content-type': metricsRegistry.contentType }).end(body),
      () => res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics failed\n'),
    );
  });
  server.listen(port, host);
  await once(server, 'listening');
  const address = server.address();
  return {
    port: typeof address === 'object' && address ? address.port : port,
    close: () => new Promise<void>((done) => server.close(() => done())),
  };
}
