import { Injectable, type OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { FastifyInstance } from 'fastify';
import { decodeJsonBody } from '../hardening/json-body.js';

/** The one route whose JSON body is handed over unparsed: Stripe signs the exact bytes. */
export const STRIPE_WEBHOOK_ROUTE = '/v1/webhooks/stripe';

/**
 * Fastify's JSON parser, except on the Stripe webhook route, which gets the raw body as a
 * Buffer: re-serialising parsed JSON would not reproduce the bytes the signature covers. Every
 * other route parses JSON as before (Fastify's own parser, same errors, same limits). Every JSON
 * body, the webhook's included, must first be UTF-8 strictly (hardening/json-body.ts).
 */
@Injectable()
export class StripeWebhookBody implements OnModuleInit {
  constructor(private readonly adapterHost: HttpAdapterHost) {}

  onModuleInit(): void {
    const fastify = this.adapterHost.httpAdapter.getInstance<FastifyInstance>();
    // As the Nest adapter registers it (a buffer, the app's body limit, Fastify's default parser).
    const { bodyLimit, onProtoPoisoning, onConstructorPoisoning } = fastify.initialConfig;
    const parseJson = fastify.getDefaultJsonParser(
      onProtoPoisoning ?? 'error',
      onConstructorPoisoning ?? 'error',
    );
    fastify.removeContentTypeParser('application/json');
    fastify.addContentTypeParser(
      'application/json',
      { parseAs: 'buffer', bodyLimit },
      (request, body, done) => {
        let text: string;
        try {
          text = decodeJsonBody(request, body);
        } catch (err) {
          done(err as Error, undefined);
          return;
        }
        if (request.routeOptions.url === STRIPE_WEBHOOK_ROUTE) {
          done(null, body);
          return;
        }
        // Fastify's parser answers through `done`, synchronously.
        void parseJson(request, text, done);
      },
    );
  }
}
