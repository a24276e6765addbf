import { Controller } from '@nestjs/common';
import { MessagePattern, Payload } from '@nestjs/microservices';
import {
  CatalogUploadPattern,
  createUploadRequestSchema,
  recordUploadPartRequestSchema,
  uploadRequestSchema,
  type CreateUploadRequest,
  type RecordUploadPartRequest,
  type UploadPartView,
  type UploadRequest,
  type UploadView,
} from '@imagemart/contracts';
import { ZodPayloadPipe } from '@imagemart/messaging';
import { UploadsService } from './uploads.service.js';

/** Every pattern is read-only or idempotent: a reclaimed request that runs twice answers the same. */
@Controller()
export class UploadsHandler {
  constructor(private readonly uploads: UploadsService) {}

  /** The image's and the upload's ids derive from the request id: a second run finds the first's. */
  @MessagePattern(CatalogUploadPattern.uploadCreate)
  create(@Payload(new ZodPayloadPipe(createUploadRequestSchema)) req: CreateUploadRequest): Promise<UploadView> {
    return this.uploads.create(req.caller, req.upload, req.bundle);
  }

  @MessagePattern(CatalogUploadPattern.uploadGet)
  get(@Payload(new ZodPayloadPipe(uploadRequestSchema)) req: UploadRequest): Promise<UploadView> {
    return this.uploads.get(req.caller, req.uploadId);
  }

  /** An upsert of the part's record. */
  @MessagePattern(CatalogUploadPattern.uploadRecordPart)
  recordPart(@Payload(new ZodPayloadPipe(recordUploadPartRequestSchema)) req: RecordUploadPartRequest): Promise<UploadPartView> {
    const { caller, ...part } = req;
    return this.uploads.recordPart(caller, part);
  }

  @MessagePattern(CatalogUploadPattern.uploadComplete)
  complete(@Payload(new ZodPayloadPipe(uploadRequestSchema)) req: UploadRequest): Promise<UploadView> {
    return this.uploads.complete(req.caller, req.uploadId);
  }

  @MessagePattern(CatalogUploadPattern.uploadAbort)
  abort(@Payload(new ZodPayloadPipe(uploadRequestSchema)) req: UploadRequest): Promise<UploadView> {
    return this.uploads.abort(req.caller, req.uploadId);
  }
}
