import type { Queue } from 'bullmq';
import { createQueue, type QueueConnectionOptions } from '../bullmq/index.js';

/** One BullMQ producer per queue name for the whole process, opened on first use. */
export class QueueRegistry {
  private readonly queues = new Map<string, Queue>();

  constructor(private readonly connection: QueueConnectionOptions) {}

  get(name: string): Queue {
    let queue = this.queues.get(name);
    if (!queue) {
      queue = createQueue(name, this.connection);
      this.queues.set(name, queue);
    }
    return queue;
  }

  async close(): Promise<void> {
    await Promise.all([...this.queues.values()].map((q) => q.close()));
    this.queues.clear();
  }
}
