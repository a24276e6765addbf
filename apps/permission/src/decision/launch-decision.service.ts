import { Injectable } from '@nestjs/common';
import type { LaunchDecision, LaunchDecisionReason } from '@imagemart/contracts';
import { ImageProjectionRepository } from '../images/image-projection.repository.js';
import { ImageProjectionService } from '../images/image-projection.service.js';
import { SubscriptionProjectionService } from '../subscriptions/subscription-projection.service.js';
import { DecisionCache, type AccountFacts, type ImageFacts } from './decision-cache.js';
import { DecisionInvalidationBus } from './decision-invalidation.bus.js';

const allow = (reason: LaunchDecisionReason): LaunchDecision => ({ allowed: true, reason });
const deny = (reason: LaunchDecisionReason): LaunchDecision => ({ allowed: false, reason });

/**
 * May this account launch this image? The one place every service asks (`permission.launch.decide`).
 *
 * In order: an image nobody knows is `image-not-found`; one that is not `available` cannot be
 * launched by anyone (`image-not-available`; a `pending` one is checked with the catalog first,
 * since its event may lag the moment it became available); its owner may (`owner`); anyone else needs the
 * group `all` (`public`) or a launch permission naming the account (`launch-permission`), else
 * `no-launch-permission`; and for an image with product codes, an entitling subscription to every
 * one of them (`subscription`), else `no-subscription`. The state of a share does not matter: the
 * launch permission holds whether the share is pending, accepted or rejected.
 */
@Injectable()
export class LaunchDecisionService {
  constructor(
    private readonly cache: DecisionCache,
    private readonly invalidations: DecisionInvalidationBus,
    private readonly images: ImageProjectionRepository,
    private readonly imageProjection: ImageProjectionService,
    private readonly subscriptions: SubscriptionProjectionService,
  ) {}

  async decide(accountId: string, imageId: string): Promise<LaunchDecision> {
    // Whatever changed before this request was sent is reflected in what the decision reads.
    if (this.cache.enabled) await this.invalidations.catchUp(imageId, accountId);
    let image = await this.imageFacts(imageId);
    if (!image) return deny('image-not-found');
    if (image.state === 'pending' && this.imageProjection.shouldRecheckPending(imageId)) {
      // Just published, perhaps: the catalog's event that says so may still be on its way, and
      // a seller who sees the image available must be able to launch it at once. Ask the catalog
      // (at most once a few seconds per image: by then the event has come).
      await this.imageProjection.fetch(imageId);
      image = await this.imageFacts(imageId);
      if (!image) return deny('image-not-found');
    }
    if (image.state !== 'available') return deny('image-not-available');
    if (image.ownerId === accountId) return allow('owner');
    if (!image.isPublic && !image.grantees.has(accountId)) return deny('no-launch-permission');
    if (image.productCodes.length === 0) return allow(image.isPublic ? 'public' : 'launch-permission');
    return (await this.entitled(accountId, image.productCodes)) ? allow('subscription') : deny('no-subscription');
  }

  private imageFacts(imageId: string): Promise<ImageFacts | undefined> {
    return this.cache.images.load(imageId, async () => {
      const facts = await this.images.facts(imageId);
      if (facts) return facts;
      // Not projected yet: the catalog knows. Keeping it invalidates this load, so it is read again.
      if (!(await this.imageProjection.fetch(imageId))) return undefined;
      return (await this.images.facts(imageId)) ?? undefined;
    });
  }

  private async entitled(accountId: string, productCodes: string[]): Promise<boolean> {
    const account = await this.cache.accounts.load(
      accountId,
      async (): Promise<AccountFacts> => ({
        entitledProductCodes: new Set(await this.subscriptions.entitledProductCodes(accountId)),
        billingAnswers: new Map(),
      }),
    );
    if (productCodes.every((code) => account?.entitledProductCodes.has(code))) return true;

    // The projection says no; billing may know better (a subscription made a moment ago).
    const key = [...productCodes].sort().join(',');
    const known = this.cache.accounts.peek(accountId)?.billingAnswers.get(key);
    if (known !== undefined) return known;
    const { value, tainted } = await this.cache.accounts.track(accountId, () =>
      this.subscriptions.askBilling(accountId, productCodes),
    );
    const current = this.cache.accounts.peek(accountId);
    if (!tainted && current !== undefined && current === account) current.billingAnswers.set(key, value.entitled);
    return value.entitled;
  }
}
