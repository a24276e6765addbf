import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rpcServerDuration } from './metrics.js';
import { startMetricsServer } from './metrics-server.js';

describe('startMetricsServer', () => {
  let server: Awaited<ReturnType<typeof startMetricsServer>>;
  beforeAll(async () => {
    server = await startMetricsServer(0);
  });
  afterAll(async () => {
    await server.close();
  });

  it('serves the process registry at /metrics and nothing else', async () => {
    rpcServerDuration.observe({ pattern: 'test.thing.get', outcome: 'ok' }, 0.002);
    const res = await fetch(`http://127.0.0.1:${server.port}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(await res.text()).toMatch(/imagemart_rpc_server_duration_seconds_count\{pattern="test.thing.get",outcome="ok"\} 1/);
    expect((await fetch(`http://127.0.0.1:${server.port}/`)).status).toBe(404);
  });
});
