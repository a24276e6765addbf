import { Controller } from '@nestjs/common';
import { MessagePattern, Payload } from '@nestjs/microservices';
import {
  CatalogPattern,
  createListingRequestSchema,
  getListingRequestSchema,
  getProductRequestSchema,
  listListingsRequestSchema,
  updateListingRequestSchema,
  type CreateListingRequest,
  type GetListingRequest,
  type GetProductRequest,
  type ListListingsRequest,
  type ListingPage,
  type ListingView,
  type ProductView,
  type UpdateListingRequest,
} from '@imagemart/contracts';
import { ZodPayloadPipe } from '@imagemart/messaging';
import { ListingsService } from './listings.service.js';

@Controller()
export class ListingsHandler {
  constructor(private readonly listings: ListingsService) {}

  /** Idempotent: the id derives from the request id, so a second run returns the first one's listing. */
  @MessagePattern(CatalogPattern.listingCreate)
  create(@Payload(new ZodPayloadPipe(createListingRequestSchema)) req: CreateListingRequest): Promise<ListingView> {
    return this.listings.create(req.caller, req.listing);
  }

  @MessagePattern(CatalogPattern.listingUpdate)
  update(@Payload(new ZodPayloadPipe(updateListingRequestSchema)) req: UpdateListingRequest): Promise<ListingView> {
    return this.listings.update(req.caller, req.listingId, req.listing);
  }

  @MessagePattern(CatalogPattern.listingGet)
  get(@Payload(new ZodPayloadPipe(getListingRequestSchema)) req: GetListingRequest): Promise<ListingView> {
    return this.listings.get(req.caller, req.listingId);
  }

  @MessagePattern(CatalogPattern.listingList)
  list(@Payload(new ZodPayloadPipe(listListingsRequestSchema)) req: ListListingsRequest): Promise<ListingPage> {
    const { caller, ...query } = req;
    return this.listings.list(caller, query);
  }

  @MessagePattern(CatalogPattern.productGet)
  product(@Payload(new ZodPayloadPipe(getProductRequestSchema)) req: GetProductRequest): Promise<ProductView> {
    return this.listings.product(req.productCode);
  }
}
