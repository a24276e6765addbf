import { Body, Controller, Get, Param, Patch, Post, Put, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { z } from 'zod';
import {
  CatalogPattern,
  ErrorCode,
  accountIdSchema,
  createListingBodySchema,
  listListingsQuerySchema,
  listingIdSchema,
  sellerProfileBodySchema,
  updateListingBodySchema,
  type Caller,
  type CreateListingBody,
  type ListingPage,
  type ListingView,
  type SellerProfileBody,
  type SellerProfileView,
  type UpdateListingBody,
} from '@imagemart/contracts';
import { CurrentCaller, OptionalCaller } from '../auth/caller.decorator.js';
import { OptionalAuth } from '../auth/public.decorator.js';
import { openApiSchema, ZodValidationPipe } from '../openapi/zod-validation.pipe.js';
import { ServiceClients } from '../rpc/service-clients.js';

const listingIdParam = new ZodValidationPipe(listingIdSchema, ErrorCode.InvalidListingIDMalformed, 'listingId');
const accountIdParam = new ZodValidationPipe(accountIdSchema, ErrorCode.InvalidAccountIDMalformed, 'accountId');

@ApiTags('listings')
@ApiBearerAuth()
@Controller('v1')
export class ListingsController {
  constructor(private readonly services: ServiceClients) {}

  @Get('listings')
  @OptionalAuth()
  @ApiOperation({
    summary:
      "Product pages, newest first, with each one's price (null when billing does not answer in time). A listing shows when you may see one of its images, or it is yours.",
  })
  list(
    @OptionalCaller() caller: Caller | null,
    @Query(new ZodValidationPipe(listListingsQuerySchema)) query: z.infer<typeof listListingsQuerySchema>,
  ): Promise<ListingPage> {
    return this.services.call('catalog', CatalogPattern.listingList, { caller, ...query });
  }

  @Post('listings')
  @ApiOperation({ summary: 'Create a listing (sellers). A paid listing gets a product code (prod-…) made by the platform.' })
  @ApiBody({ schema: openApiSchema(createListingBodySchema) })
  create(
    @CurrentCaller() caller: Caller,
    @Body(new ZodValidationPipe(createListingBodySchema)) listing: CreateListingBody,
  ): Promise<ListingView> {
    return this.services.call('catalog', CatalogPattern.listingCreate, { caller, listing });
  }

  @Get('listings/:listingId')
  @OptionalAuth()
  @ApiOperation({ summary: 'A listing with its versions (the images you may see, newest first), its price and its seller.' })
  get(@OptionalCaller() caller: Caller | null, @Param('listingId', listingIdParam) listingId: string): Promise<ListingView> {
    return this.services.call('catalog', CatalogPattern.listingGet, { caller, listingId });
  }

  @Patch('listings/:listingId')
  @ApiOperation({ summary: "Change a listing's texts or categories (its seller). The pricing type is fixed." })
  @ApiBody({ schema: openApiSchema(updateListingBodySchema) })
  update(
    @CurrentCaller() caller: Caller,
    @Param('listingId', listingIdParam) listingId: string,
    @Body(new ZodValidationPipe(updateListingBodySchema)) listing: UpdateListingBody,
  ): Promise<ListingView> {
    return this.services.call('catalog', CatalogPattern.listingUpdate, { caller, listingId, listing });
  }

  @Get('sellers/:accountId')
  @OptionalAuth()
  @ApiOperation({ summary: "A seller's public profile (a default display name until the seller sets one)." })
  seller(@Param('accountId', accountIdParam) accountId: string): Promise<SellerProfileView> {
    return this.services.call('catalog', CatalogPattern.sellerProfileGet, { accountId });
  }

  @Put('sellers/:accountId')
  @ApiOperation({ summary: 'Set your own seller profile: display name, about, website.' })
  @ApiBody({ schema: openApiSchema(sellerProfileBodySchema) })
  putSeller(
    @CurrentCaller() caller: Caller,
    @Param('accountId', accountIdParam) accountId: string,
    @Body(new ZodValidationPipe(sellerProfileBodySchema)) profile: SellerProfileBody,
  ): Promise<SellerProfileView> {
    return this.services.call('catalog', CatalogPattern.sellerProfilePut, { caller, accountId, profile });
  }
}
