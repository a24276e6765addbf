import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter as BullBoardFastifyAdapter } from '@bull-board/fastify';
import { Logger } from '@nestjs/common';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type { FastifyInstance } from 'fastify';
import { ErrorCode, QueueName } from '@imagemart/contracts';
import { QueueRegistry } from '@imagemart/messaging';
import { ApiKeyAuthenticator } from '../auth/api-key.authenticator.js';
import { ApiProblem } from '../problem/api-problem.js';
import { sendProblem } from '../problem/problem.filter.js';

export const QUEUE_DASHBOARD_PATH = '/admin/queues';

/**
 * bull-board for every queue at /admin/queues, for admins only. A browser signs in with HTTP
 * Basic (any user name, an admin's API key as the password); scripts may send Bearer.
 */
export async function mountQueueDashboard(app: NestFastifyApplication): Promise<void> {
  const queues = app.get(QueueRegistry);
  const authenticator = app.get(ApiKeyAuthenticator);
  const logger = new Logger('QueueDashboard');

  const board = new BullBoardFastifyAdapter();
  board.setBasePath(QUEUE_DASHBOARD_PATH);
  createBullBoard({
    queues: Object.values(QueueName).map((name) => new BullMQAdapter(queues.get(name))),
    serverAdapter: board,
    options: { uiConfig: { boardTitle: 'ImageMart queues' } },
  });

  await app.register(async (scope: FastifyInstance) => {
    scope.addHook('onRequest', async (request, reply) => {
      try {
        const caller = await authenticator.authenticate(request.headers.authorization, { allowBasic: true });
        if (!caller.roles.includes('admin')) {
          throw new ApiProblem(ErrorCode.UnauthorizedOperation, 'The queue dashboard is for admins.');
        }
      } catch (err) {
        if (err instanceof ApiProblem && err.code === ErrorCode.AuthFailure) {
          void reply.header('WWW-Authenticate', 'Basic realm="ImageMart queues", charset="UTF-8"');
        }
        sendProblem(reply, request, err, logger);
        return reply;
      }
    });
    await scope.register(board.registerPlugin(), { prefix: QUEUE_DASHBOARD_PATH });
  });
}
