import { Readable } from 'node:stream';
import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Post, Put, Req } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiConsumes, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { FastifyRequest } from 'fastify';
import { APP_CONFIG } from '@imagemart/config';
import {
  BundleKeys,
  BundlingJobName,
  CatalogPattern,
  CatalogUploadPattern,
  ErrorCode,
  QueueName,
  bundlingJobId,
  createBundleUploadBodySchema,
  createUploadBodySchema,
  imageIdSchema,
  uploadIdSchema,
  uploadPartNumberParamSchema,
  uploadPartSize,
  type BundleProgressView,
  type Caller,
  type CreateBundleUploadBody,
  type CreateUploadBody,
  type ImageView,
  type UploadPartView,
  type UploadView,
} from '@imagemart/contracts';
import { QueueRegistry } from '@imagemart/messaging';
import { requestContext } from '@imagemart/observability';
import { CurrentCaller } from '../auth/caller.decorator.js';
import { openApiSchema, ZodValidationPipe } from '../openapi/zod-validation.pipe.js';
import { ApiProblem } from '../problem/api-problem.js';
import { ServiceClients } from '../rpc/service-clients.js';
import type { StorefrontConfig } from '../storefront.config.js';
import { bundleProgress } from './bundle-progress.js';
import { SellerBundles } from './seller-bundle.js';
import { UploadParts } from './upload-parts.js';

const uploadIdParam = new ZodValidationPipe(uploadIdSchema, ErrorCode.InvalidUploadIDMalformed, 'uploadId');
const partNumberParam = new ZodValidationPipe(uploadPartNumberParamSchema, ErrorCode.InvalidParameterValue, 'partNumber');
const imageIdParam = new ZodValidationPipe(imageIdSchema, ErrorCode.InvalidAMIIDMalformed, 'imageId');
const rawUploadBody = new ZodValidationPipe(createUploadBodySchema);
const bundleUploadBody = new ZodValidationPipe(createBundleUploadBodySchema);
/** A raw image's upload, or with `kind: "bundle"` a seller-made bundle's. */
const uploadBody = {
  transform: (value: unknown): CreateUploadBody | CreateBundleUploadBody =>
    typeof value === 'object' && value !== null && (value as { kind?: unknown }).kind === 'bundle'
      ? bundleUploadBody.transform(value)
      : rawUploadBody.transform(value),
};

/** Where part `n` of an upload goes: beside the manifest's place for a seller-made bundle. */
function partKey(upload: UploadView, partNumber: number): string | undefined {
  const filename = upload.bundle?.partFilenames[partNumber - 1];
  return filename === undefined ? undefined : BundleKeys.part(BundleKeys.manifest(upload.imageId), filename);
}

/**
 * Resumable uploads of raw images (S3-style multipart) and the progress of publishing an image.
 * The catalog owns the upload sessions; this gateway streams each part into the object store.
 */
@ApiTags('uploads')
@ApiBearerAuth()
@Controller('v1')
export class UploadsController {
  constructor(
    private readonly services: ServiceClients,
    private readonly parts: UploadParts,
    private readonly queues: QueueRegistry,
    @Inject(APP_CONFIG) private readonly config: StorefrontConfig,
    private readonly sellerBundles: SellerBundles,
  ) {}

  @Post('uploads')
  @ApiOperation({
    summary:
      "Start an upload (sellers): registers the image (pending; the rules of POST /v1/images) with the raw image's declared " +
      'size and SHA-256, and answers the part size and count. PUT the parts, then complete the upload. With ' +
      '`kind: "bundle"` and a signed `manifest`, the upload is of a bundle made by `imagemart bundle`: the manifest must be ' +
      "signed by one of the account's signing keys, made out to the account, and wrapped for the platform key; the image is " +
      "registered from it and the parts to put are the manifest's. Per seller: 400 UploadLimitExceeded past the open " +
      'uploads or their declared bytes, 400 ResourceLimitExceeded past the pending images; an upload with no part stored ' +
      'for UPLOAD_EXPIRY_MS (24 h) is aborted and its image failed (Upload.Expired).',
  })
  @ApiBody({ schema: { oneOf: [openApiSchema(createUploadBodySchema), openApiSchema(createBundleUploadBodySchema)] } })
  async create(@CurrentCaller() caller: Caller, @Body(uploadBody) body: CreateUploadBody | CreateBundleUploadBody): Promise<UploadView> {
    if ('kind' in body && body.kind === 'bundle') {
      if (!caller.roles.includes('seller')) throw new ApiProblem(ErrorCode.UnauthorizedOperation, 'Only seller accounts upload images.');
      const { upload, bundle } = await this.sellerBundles.check(caller, body);
      return this.services.call('catalog', CatalogUploadPattern.uploadCreate, { caller, upload, bundle });
    }
    return this.services.call('catalog', CatalogUploadPattern.uploadCreate, { caller, upload: body });
  }

  @Get('uploads/:uploadId')
  @ApiOperation({ summary: 'An upload with its stored parts and the part numbers still missing: resume at the first missing one.' })
  get(@CurrentCaller() caller: Caller, @Param('uploadId', uploadIdParam) uploadId: string): Promise<UploadView> {
    return this.services.call('catalog', CatalogUploadPattern.uploadGet, { caller, uploadId });
  }

  @Put('uploads/:uploadId/parts/:partNumber')
  @ApiConsumes('application/octet-stream')
  @ApiBody({ schema: { type: 'string', format: 'binary' }, description: 'The bytes of the part; Content-Length is required.' })
  @ApiOperation({
    summary:
      'Put one part (a raw body with its exact Content-Length: the part size, the last part the rest). A part put again ' +
      'replaces it. A body of the wrong length is refused with 400 and nothing is kept.',
  })
  async putPart(
    @CurrentCaller() caller: Caller,
    @Param('uploadId', uploadIdParam) uploadId: string,
    @Param('partNumber', partNumberParam) partNumber: number,
    @Req() request: FastifyRequest,
  ): Promise<UploadPartView> {
    const body = request.body;
    if (!(body instanceof Readable)) {
      throw new ApiProblem(ErrorCode.UnsupportedMediaType, 'A part is sent as application/octet-stream.');
    }
    const upload = await this.services.call<UploadView>('catalog', CatalogUploadPattern.uploadGet, { caller, uploadId });
    if (upload.state !== 'open') {
      throw new ApiProblem(ErrorCode.IncorrectState, `The upload '${uploadId}' is ${upload.state}: it takes no more parts.`);
    }
    if (partNumber > upload.partCount) {
      throw new ApiProblem(ErrorCode.InvalidParameterValue, `The upload has ${upload.partCount} parts: there is no part ${partNumber}.`, [
        { path: 'partNumber', message: `must be 1 to ${upload.partCount}` },
      ]);
    }
    const size = uploadPartSize(upload, partNumber);
    const declared = Number(request.headers['content-length']);
    if (declared !== size) {
      throw new ApiProblem(ErrorCode.InvalidParameterValue, `Part ${partNumber} of this upload has ${size} bytes; this body has ${declared}.`, [
        { path: 'body', message: `must be ${size} bytes` },
      ]);
    }
    const key = partKey(upload, partNumber);
    const stored = await this.parts.put(uploadId, partNumber, body, size, key);
    // Streaming a part may take longer than the request's RPC budget: recording it gets its own.
    const withBudget = <T>(call: () => Promise<T>) =>
      requestContext.run(
        { ...(requestContext.get() ?? { requestId: String(request.id) }), deadline: Date.now() + this.config.RPC_TIMEOUT_MS },
        call,
      );
    try {
      return await withBudget(() =>
        this.services.call<UploadPartView>('catalog', CatalogUploadPattern.uploadRecordPart, { caller, uploadId, partNumber, ...stored }),
      );
    } catch (err) {
      if (err instanceof ApiProblem && err.code === ErrorCode.IncorrectState) {
        // Aborted meanwhile: the part belongs to no upload, so it goes. (Completed meanwhile: the
        // part of that number is the bundle's source now, and stays.)
        const now = await withBudget(() => this.services.call<UploadView>('catalog', CatalogUploadPattern.uploadGet, { caller, uploadId }));
        if (now.state === 'aborted') await this.parts.deletePart(uploadId, partNumber, key);
      }
      throw err;
    }
  }

  @Post('uploads/:uploadId/complete')
  @HttpCode(200)
  @ApiOperation({
    summary:
      'Complete an upload: every part must be there (else 400 naming the missing ones). The image is then bundled and ' +
      'verified; follow it at GET /v1/images/{imageId}/bundle. Completing again answers the same. A seller-made ' +
      "bundle whose signing key was revoked since the upload began: 400 InvalidManifest.SignerRevoked.",
  })
  complete(@CurrentCaller() caller: Caller, @Param('uploadId', uploadIdParam) uploadId: string): Promise<UploadView> {
    return this.services.call('catalog', CatalogUploadPattern.uploadComplete, { caller, uploadId });
  }

  @Delete('uploads/:uploadId')
  @HttpCode(200)
  @ApiOperation({
    summary:
      'Abort an open upload: its parts are removed and its image is deregistered (its name is free again). Aborting again ' +
      'answers the same; a complete upload cannot be aborted (deregister the image).',
  })
  async abort(@CurrentCaller() caller: Caller, @Param('uploadId', uploadIdParam) uploadId: string): Promise<UploadView> {
    const upload = await this.services.call<UploadView>('catalog', CatalogUploadPattern.uploadAbort, { caller, uploadId });
    await this.parts.deleteUpload(uploadId);
    // A seller-made bundle's parts went beside its manifest's place (the image's delete job also clears it).
    if (upload.kind === 'bundle') await this.parts.deletePrefix(BundleKeys.prefix(upload.imageId));
    return upload;
  }

  @Get('images/:imageId/bundle')
  @ApiOperation({
    summary:
      "How far publishing an image has come (its owner): the image's state, the bundling or verifying phase, bytes done, " +
      'percent over the whole flow, and the reason of a failed image.',
  })
  async bundle(@CurrentCaller() caller: Caller, @Param('imageId', imageIdParam) imageId: string): Promise<BundleProgressView> {
    const image = await this.services.call<ImageView>('catalog', CatalogPattern.imageGet, { caller, imageId });
    if (image.ownerId !== caller.accountId && !caller.roles.includes('admin')) {
      // Someone else's image: its bundle is none of the caller's business, as for a missing one.
      throw new ApiProblem(ErrorCode.InvalidAMIIDNotFound, `The image id '${imageId}' does not exist.`);
    }
    const queue = this.queues.get(QueueName.bundling);
    const [bundleJob, verifyJob] = await Promise.all([
      queue.getJob(bundlingJobId(BundlingJobName.bundle, imageId)),
      queue.getJob(bundlingJobId(BundlingJobName.verify, imageId)),
    ]);
    return bundleProgress(image, bundleJob?.progress, verifyJob?.progress);
  }
}
