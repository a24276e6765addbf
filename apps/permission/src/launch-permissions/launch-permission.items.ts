import { ErrorCode, LAUNCH_PERMISSION_GROUPS, type LaunchPermissionItemInput } from '@imagemart/contracts';
import { DomainException } from '@imagemart/messaging';

/** A request's launch permission items, checked: the accounts named and whether the group `all` is. */
export interface LaunchPermissionItems {
  accountIds: string[];
  all: boolean;
}

const ACCOUNT_ID = /^\d{12}$/;

const invalidItem = (value: string, type: 'userId' | 'group') =>
  new DomainException(
    ErrorCode.InvalidAMIAttributeItemValue,
    `Invalid attribute item value "${value}" for ${type} item type.`,
    [{ path: type, message: type === 'userId' ? 'must be 12 digits' : `must be one of: ${LAUNCH_PERMISSION_GROUPS.join(', ')}` }],
  );

/**
 * Checks every item before anything changes: one malformed account id or unknown group refuses
 * the whole request with EC2's `InvalidAMIAttributeItemValue`. Repeated items count once.
 */
export function parseLaunchPermissionItems(items: LaunchPermissionItemInput[]): LaunchPermissionItems {
  const accountIds = new Set<string>();
  let all = false;
  for (const item of items) {
    if ('userId' in item) {
      if (!ACCOUNT_ID.test(item.userId)) throw invalidItem(item.userId, 'userId');
      accountIds.add(item.userId);
    } else {
      if (!(LAUNCH_PERMISSION_GROUPS as readonly string[]).includes(item.group)) throw invalidItem(item.group, 'group');
      all = true;
    }
  }
  return { accountIds: [...accountIds].sort(), all };
}
