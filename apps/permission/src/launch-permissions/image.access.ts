import { Injectable } from '@nestjs/common';
import type { PermissionImage } from '@imagemart/database';
import { ErrorCode, type Caller } from '@imagemart/contracts';
import { DomainException } from '@imagemart/messaging';
import { isAdmin } from '../accounts/account.access.js';
import { ImageProjectionService, imageNotFound } from '../images/image-projection.service.js';
import { LaunchPermissionsRepository } from './launch-permissions.repository.js';

/**
 * Who may act on an image's launch permissions and audit trail: its owner and admins. Anyone else
 * who can see the image (it is public, or shared with them) is refused; to anyone who cannot, the
 * image does not exist, exactly as an unknown id, so ids cannot be probed. A deregistered image
 * does not exist for anyone.
 */
@Injectable()
export class ImageAccess {
  constructor(
    private readonly images: ImageProjectionService,
    private readonly launchPermissions: LaunchPermissionsRepository,
  ) {}

  async requireOwnerOrAdmin(
    caller: Caller,
    imageId: string,
    refusal: typeof ErrorCode.AuthFailure | typeof ErrorCode.UnauthorizedOperation = ErrorCode.AuthFailure,
  ): Promise<PermissionImage> {
    const image = await this.images.findCurrent(imageId);
    if (!image || image.state === 'deregistered') throw imageNotFound(imageId);
    if (image.ownerId === caller.accountId || isAdmin(caller)) return image;
    if (await this.canSee(caller.accountId, image)) {
      throw new DomainException(
        refusal,
        refusal === ErrorCode.AuthFailure
          ? `Not authorized for image:${imageId}`
          : `You are not authorized to perform this operation on image:${imageId}`,
      );
    }
    throw imageNotFound(imageId);
  }

  /**
   * Whether a non-owner may see the image at all: the catalog's rule for reading an image by id
   * (an available image that is public, or whose launch permission names the account with a share
   * it has not rejected). Whoever may not see it gets the answer a missing image gets.
   */
  async canSee(accountId: string, image: PermissionImage): Promise<boolean> {
    if (image.state !== 'available') return false;
    const [setting, grant] = await Promise.all([
      this.launchPermissions.findSetting(image.id),
      this.launchPermissions.findGrant(image.id, accountId),
    ]);
    return setting.isPublic || (grant !== null && grant.shareState !== 'rejected');
  }
}
