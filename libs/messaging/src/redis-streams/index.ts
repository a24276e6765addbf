export {
  RedisStreamsClient,
  createRpcClient,
  sendRpc,
  type RedisStreamsClientOptions,
} from './redis-streams.client.js';
export type { RedisConnection } from './redis-streams.connection.js';
export { RedisStreamsContext, type RedisStreamsDelivery } from './redis-streams.context.js';
export {
  REPLY_TTL_MS,
  rpcReplyKey,
  rpcStreamKey,
  type RpcReply,
  type RpcRequest,
} from './redis-streams.protocol.js';
export {
  REDIS_STREAMS_TRANSPORT,
  RedisStreamsServer,
  type RedisStreamsServerEvents,
  type RedisStreamsServerOptions,
} from './redis-streams.server.js';
