import { Injectable } from '@nestjs/common';
import type { EntitlementCheckResponse } from '@imagemart/contracts';
import { SubscriptionsRepository } from '../subscriptions/subscriptions.repository.js';

@Injectable()
export class EntitlementsService {
  constructor(private readonly subscriptions: SubscriptionsRepository) {}

  /**
   * An account is entitled to launch an image when it holds an entitling subscription (active or
   * past_due) to every product code the image carries; an image with none needs none. The answer
   * names the subscription to the first code.
   */
  async check(accountId: string, productCodes: string[]): Promise<EntitlementCheckResponse> {
    const codes = [...new Set(productCodes)];
    if (codes.length === 0) return { entitled: true, subscriptionId: null };
    const held = new Map((await this.subscriptions.entitling(accountId, codes)).map((s) => [s.productCode, s.id]));
    const entitled = codes.every((c) => held.has(c));
    return { entitled, subscriptionId: entitled ? (held.get(codes[0]) ?? null) : null };
  }
}
