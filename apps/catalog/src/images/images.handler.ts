import { Controller } from '@nestjs/common';
import { MessagePattern, Payload } from '@nestjs/microservices';
import {
  CatalogPattern,
  deregisterImageRequestSchema,
  getImageRequestSchema,
  internalGetImageRequestSchema,
  listImagesRequestSchema,
  recordLaunchesRequestSchema,
  registerImageRequestSchema,
  setImageStateRequestSchema,
  updateImageRequestSchema,
  type DeregisterImageRequest,
  type GetImageRequest,
  type ImageChanged,
  type ImagePage,
  type ImageView,
  type InternalGetImageRequest,
  type ListImagesRequest,
  type RecordLaunchesRequest,
  type RegisterImageRequest,
  type SerializedImagePage,
  type SetImageStateRequest,
  type UpdateImageRequest,
} from '@imagemart/contracts';
import { ZodPayloadPipe } from '@imagemart/messaging';
import { ImagesService } from './images.service.js';

@Controller()
export class ImagesHandler {
  constructor(private readonly images: ImagesService) {}

  /** Idempotent: the id derives from the request id, so a second run returns the first one's image. */
  @MessagePattern(CatalogPattern.imageRegister)
  register(@Payload(new ZodPayloadPipe(registerImageRequestSchema)) req: RegisterImageRequest): Promise<ImageView> {
    return this.images.register(req.caller, req.image);
  }

  @MessagePattern(CatalogPattern.imageGet)
  get(@Payload(new ZodPayloadPipe(getImageRequestSchema)) req: GetImageRequest): Promise<ImageView> {
    return this.images.get(req.caller, req.imageId);
  }

  @MessagePattern(CatalogPattern.imageList)
  list(@Payload(new ZodPayloadPipe(listImagesRequestSchema)) req: ListImagesRequest): Promise<ImagePage> {
    const { caller, ...query } = req;
    return this.images.list(caller, query);
  }

  /** The same list as JSON text, with what the gateway checks before it reuses the page. */
  @MessagePattern(CatalogPattern.imageListPage)
  listPage(@Payload(new ZodPayloadPipe(listImagesRequestSchema)) req: ListImagesRequest): Promise<SerializedImagePage> {
    const { caller, ...query } = req;
    return this.images.listSerialized(caller, query);
  }

  @MessagePattern(CatalogPattern.imageUpdate)
  update(@Payload(new ZodPayloadPipe(updateImageRequestSchema)) req: UpdateImageRequest): Promise<ImageView> {
    return this.images.updateDescription(req.caller, req.imageId, req.image.description);
  }

  @MessagePattern(CatalogPattern.imageDeregister)
  deregister(@Payload(new ZodPayloadPipe(deregisterImageRequestSchema)) req: DeregisterImageRequest): Promise<ImageView> {
    return this.images.deregister(req.caller, req.imageId);
  }

  @MessagePattern(CatalogPattern.imageInternalGet)
  internalGet(@Payload(new ZodPayloadPipe(internalGetImageRequestSchema)) req: InternalGetImageRequest): Promise<ImageChanged> {
    return this.images.internalGet(req.imageId);
  }

  @MessagePattern(CatalogPattern.imageSetState)
  setState(@Payload(new ZodPayloadPipe(setImageStateRequestSchema)) req: SetImageStateRequest): Promise<ImageView> {
    return this.images.setState(req);
  }

  /** Adds to a counter: a request that runs twice counts twice (popularity tolerates it). */
  @MessagePattern(CatalogPattern.imageRecordLaunches)
  recordLaunches(
    @Payload(new ZodPayloadPipe(recordLaunchesRequestSchema)) req: RecordLaunchesRequest,
  ): Promise<{ imageId: string; launchCount: number }> {
    return this.images.recordLaunches(req.imageId, req.count);
  }
}
