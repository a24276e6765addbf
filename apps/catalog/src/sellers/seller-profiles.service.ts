import { Injectable } from '@nestjs/common';
import type { SellerProfile } from '@imagemart/database';
import { ErrorCode, type Caller, type SellerProfileBody, type SellerProfileView } from '@imagemart/contracts';
import { DomainException } from '@imagemart/messaging';
import { ListCache } from '../search/list-cache.js';
import { SellerProfilesRepository } from './seller-profiles.repository.js';

/** The name a seller goes by until he sets one. */
export const defaultDisplayName = (accountId: string) => `Seller ${accountId}`;

const toView = (accountId: string, p: SellerProfile | undefined): SellerProfileView =>
  p
    ? { accountId, displayName: p.displayName, about: p.about, website: p.website }
    : { accountId, displayName: defaultDisplayName(accountId), about: '', website: null };

@Injectable()
export class SellerProfilesService {
  constructor(
    private readonly profiles: SellerProfilesRepository,
    private readonly listCache: ListCache,
  ) {}

  async get(accountId: string): Promise<SellerProfileView> {
    return (await this.views([accountId])).get(accountId)!;
  }

  /** Profiles of several sellers in one read; a seller without one gets the default. */
  async views(accountIds: string[]): Promise<Map<string, SellerProfileView>> {
    const rows = new Map((await this.profiles.findMany(accountIds)).map((p) => [p.id, p]));
    return new Map(accountIds.map((id) => [id, toView(id, rows.get(id))]));
  }

  /** A seller sets his own profile; nobody else's (admins included: it speaks in his name). */
  async put(caller: Caller, accountId: string, body: SellerProfileBody): Promise<SellerProfileView> {
    if (caller.accountId !== accountId) {
      throw new DomainException(ErrorCode.UnauthorizedOperation, "A seller profile can be set only by the seller himself.");
    }
    if (!caller.roles.includes('seller')) {
      throw new DomainException(ErrorCode.UnauthorizedOperation, 'Only seller accounts have a seller profile.');
    }
    const profile = await this.profiles.upsert(accountId, body);
    await this.listCache.invalidate();
    return toView(accountId, profile);
  }
}
