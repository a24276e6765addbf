/**
 * The bench's baseline: the least a Redis request/response can cost. BLPOP a request list,
 * RPUSH the answer onto the caller's reply list; no framework, no stream, no ack.
 * Settings: REDIS_URL, PREFIX. Tells its parent `{ type: 'ready' }` once listening.
 */
import { Redis } from 'ioredis';

const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const requests = `${process.env.PREFIX ?? 'bench'}:baseline:requests`;
const reader = new Redis(url, { maxRetriesPerRequest: null });
const writer = new Redis(url);
let running = true;

process.on('SIGTERM', () => {
  running = false;
  reader.disconnect();
  writer.disconnect();
});

await Promise.all([reader.ping(), writer.ping()]);
process.send?.({ type: 'ready' });
while (running) {
  const item = await reader.blpop(requests, 1).catch(() => null);
  if (!item) continue;
  const request = JSON.parse(item[1]) as { id: string; replyTo: string; imageId: string };
  const reply = {
    id: request.id,
    imageId: request.imageId,
    name: 'debian-12',
    architecture: 'x86_64',
    state: 'available',
  };
  await writer.rpush(request.replyTo, JSON.stringify(reply));
}
