import { BaseRpcContext, type PacketMetadata } from '@nestjs/microservices';

/** Where and how a request reached this replica. */
export interface RedisStreamsDelivery {
  /** The stream entry id (`<ms>-<seq>`). */
  entryId: string;
  stream: string;
  /** This replica's consumer name in the group. */
  consumer: string;
  /** True when the request was taken over from a replica that stopped answering. */
  reclaimed: boolean;
  /** Epoch ms after which the caller has given up; absent for an event. */
  deadline?: number;
}

type RedisStreamsContextArgs = [pattern: string, metadata: PacketMetadata, delivery: RedisStreamsDelivery];

/** The RPC context of the Redis Streams transport; a handler gets it with `@Ctx()`. */
export class RedisStreamsContext extends BaseRpcContext<RedisStreamsContextArgs> {
  getPattern(): string {
    return this.args[0];
  }
  /** Out-of-band values from the caller (the request id among them). */
  getMetadata(): PacketMetadata {
    return this.args[1];
  }
  getDelivery(): RedisStreamsDelivery {
    return this.args[2];
  }
}
