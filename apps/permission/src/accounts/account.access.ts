import { ErrorCode, type Caller } from '@imagemart/contracts';
import { DomainException } from '@imagemart/messaging';

export const isAdmin = (caller: Caller) => caller.roles.includes('admin');

export function assertAdmin(caller: Caller, action: string): void {
  if (!isAdmin(caller)) {
    throw new DomainException(ErrorCode.UnauthorizedOperation, `You are not authorized to ${action}.`);
  }
}

/**
 * An account may act on itself; an admin on any account. Anyone else is told the account does
 * not exist, exactly as for an id that is unknown, so ids cannot be probed.
 */
export function assertSelfOrAdmin(caller: Caller, accountId: string): void {
  if (caller.accountId !== accountId && !isAdmin(caller)) throw accountNotFound(accountId);
}

export const accountNotFound = (accountId: string) =>
  new DomainException(ErrorCode.InvalidAccountIDNotFound, `The account ID '${accountId}' does not exist`);
