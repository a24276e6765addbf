import { Body, Controller, Delete, Get, Header, HttpCode, Param, Patch, Post, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiOkResponse, ApiOperation, ApiQuery, ApiTags } from '@nestjs/swagger';
import {
  ARCHITECTURES,
  CATEGORIES,
  CatalogPattern,
  ErrorCode,
  LISTABLE_STATES,
  SORT_ORDERS,
  imageIdSchema,
  registerImageBodySchema,
  updateImageBodySchema,
  type Caller,
  type ImageView,
  type ListImagesRequest,
  type RegisterImageBody,
  type SerializedImagePage,
  type UpdateImageBody,
} from '@imagemart/contracts';
import { CurrentCaller, OptionalCaller } from '../auth/caller.decorator.js';
import { OptionalAuth } from '../auth/public.decorator.js';
import { openApiSchema, ZodValidationPipe } from '../openapi/zod-validation.pipe.js';
import { ServiceClients } from '../rpc/service-clients.js';
import { ImageListCache } from './image-list.cache.js';
import { ImageQueryPipe } from './image-query.pipe.js';

const imageIdParam = new ZodValidationPipe(imageIdSchema, ErrorCode.InvalidAMIIDMalformed, 'imageId');

const filter = (name: string, description: string, values?: readonly string[]) =>
  ApiQuery({
    name,
    required: false,
    description,
    ...(values ? { schema: { type: 'array', items: { type: 'string', enum: [...values] } } } : {}),
  });

@ApiTags('images')
@ApiBearerAuth()
@Controller('v1')
export class ImagesController {
  constructor(
    private readonly services: ServiceClients,
    private readonly listCache: ImageListCache,
  ) {}

  @Get('images')
  @OptionalAuth()
  @ApiOperation({
    summary:
      'Browse and search images (EC2 DescribeImages filters). Anyone sees public available images; a signed-in account also ' +
      'its own and those shared with it that it accepted. A filter may repeat or list values with commas.',
  })
  @filter('architecture', 'x86_64, arm64, i386', ARCHITECTURES)
  @filter('owner', 'account ids, or self')
  @filter('is-public', 'true or false')
  @filter('executable-by', 'self: own images and those a launch permission names you in (pending or accepted); all: public', ['self', 'all'])
  @filter('product-code', 'prod-…')
  @filter('state', 'pending, available, failed (others see only available)', LISTABLE_STATES)
  @filter('name', 'image name; * matches any run of characters, ? one character')
  @filter('pricing-type', 'free or paid', ['free', 'paid'])
  @filter('category', "the listing's category", CATEGORIES)
  @filter('q', 'free text over the name, descriptions and listing texts (web search syntax: "quoted phrase", or, -not)')
  @filter('sort', 'relevance (the default with q), newest (the default without), name, popularity', SORT_ORDERS)
  @filter('limit', '1 to 100, default 25')
  @filter('cursor', 'nextCursor of the previous page')
  @ApiOkResponse({ description: '{ items: Image[], nextCursor: string | null }' })
  // The catalog's page is passed on as the JSON text it was made as (and kept, see ImageListCache).
  @Header('content-type', 'application/json; charset=utf-8')
  list(
    @OptionalCaller() caller: Caller | null,
    @Query(new ImageQueryPipe()) query: Omit<ListImagesRequest, 'caller'>,
  ): Promise<Buffer> {
    return this.listCache.page(caller, query, () =>
      this.services.call<SerializedImagePage>('catalog', CatalogPattern.imageListPage, { caller, ...query }),
    );
  }

  @Post('images')
  @ApiOperation({
    summary:
      'Register an image record (sellers). It starts pending; publishing its bundle makes it available. Product codes come from ' +
      'the source image, the paid listing, and your own listings.',
  })
  @ApiBody({ schema: openApiSchema(registerImageBodySchema) })
  register(
    @CurrentCaller() caller: Caller,
    @Body(new ZodValidationPipe(registerImageBodySchema)) image: RegisterImageBody,
  ): Promise<ImageView> {
    return this.services.call('catalog', CatalogPattern.imageRegister, { caller, image });
  }

  @Get('images/:imageId')
  @OptionalAuth()
  @ApiOperation({ summary: 'One image. An image you may not see answers 404 InvalidAMIID.NotFound, as a missing one does.' })
  get(@OptionalCaller() caller: Caller | null, @Param('imageId', imageIdParam) imageId: string): Promise<ImageView> {
    return this.services.call('catalog', CatalogPattern.imageGet, { caller, imageId });
  }

  @Patch('images/:imageId')
  @ApiOperation({ summary: "Change an image's description (its owner). An empty description clears it." })
  @ApiBody({ schema: openApiSchema(updateImageBodySchema) })
  update(
    @CurrentCaller() caller: Caller,
    @Param('imageId', imageIdParam) imageId: string,
    @Body(new ZodValidationPipe(updateImageBodySchema)) image: UpdateImageBody,
  ): Promise<ImageView> {
    return this.services.call('catalog', CatalogPattern.imageUpdate, { caller, imageId, image });
  }

  @Delete('images/:imageId')
  @HttpCode(200)
  @ApiOperation({
    summary:
      'Deregister an image (its owner, or an admin): it leaves every list at once; its owner can still read it. Deregistering again answers the same.',
  })
  deregister(@CurrentCaller() caller: Caller, @Param('imageId', imageIdParam) imageId: string): Promise<ImageView> {
    return this.services.call('catalog', CatalogPattern.imageDeregister, { caller, imageId });
  }
}
