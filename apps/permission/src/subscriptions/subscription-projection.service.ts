import { Injectable } from '@nestjs/common';
import {
  BillingPattern,
  ErrorCode,
  type EntitlementCheckRequest,
  type EntitlementCheckResponse,
  type SubscriptionChanged,
} from '@imagemart/contracts';
import { DomainException } from '@imagemart/messaging';
import { DecisionInvalidationBus } from '../decision/decision-invalidation.bus.js';
import { UpstreamClients } from '../upstream/upstream.clients.js';
import { SubscriptionProjectionRepository } from './subscription-projection.repository.js';

/**
 * The permission service's view of billing's subscriptions, kept by `billing.subscription.changed`
 * events; billing itself is asked when the projection does not (yet) say an account is entitled.
 */
@Injectable()
export class SubscriptionProjectionService {
  constructor(
    private readonly subscriptions: SubscriptionProjectionRepository,
    private readonly upstream: UpstreamClients,
    private readonly invalidations: DecisionInvalidationBus,
  ) {}

  async apply(sub: SubscriptionChanged): Promise<boolean> {
    const applied = await this.subscriptions.upsert(sub);
    if (applied) await this.invalidations.invalidate('account', sub.accountId);
    return applied;
  }

  entitledProductCodes(accountId: string): Promise<string[]> {
    return this.subscriptions.entitledProductCodes(accountId);
  }

  /** Billing's own answer: is `accountId` entitled to launch an image with these product codes now? */
  async askBilling(accountId: string, productCodes: string[]): Promise<EntitlementCheckResponse> {
    const request: EntitlementCheckRequest = { accountId, productCodes };
    const answer = await this.upstream.call<EntitlementCheckResponse | undefined>('billing', BillingPattern.entitlementCheck, request);
    if (typeof answer?.entitled !== 'boolean') {
      throw new DomainException(ErrorCode.InternalError, 'Billing gave an entitlement answer that does not match its contract.');
    }
    return answer;
  }
}
