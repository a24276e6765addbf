import { Controller } from '@nestjs/common';
import { MessagePattern, Payload } from '@nestjs/microservices';
import {
  BillingPattern,
  platformPricingGetRequestSchema,
  platformPricingPutRequestSchema,
  pricingQuoteRequestSchema,
  productPricingGetRequestSchema,
  productPricingPutRequestSchema,
  type PlatformPricingPutRequest,
  type PlatformPricingView,
  type PricingQuoteRequest,
  type PricingQuoteResponse,
  type ProductPricingGetRequest,
  type ProductPricingPutRequest,
  type ProductPricingView,
} from '@imagemart/contracts';
import { ZodPayloadPipe } from '@imagemart/messaging';
import { PricingService } from './pricing.service.js';

/** Prices. The writes replace a whole state, so running one twice leaves the same prices. */
@Controller()
export class PricingHandler {
  constructor(private readonly pricing: PricingService) {}

  @MessagePattern(BillingPattern.platformPricingGet)
  platform(@Payload(new ZodPayloadPipe(platformPricingGetRequestSchema)) _req: object): Promise<PlatformPricingView> {
    return this.pricing.platformPricing();
  }

  @MessagePattern(BillingPattern.platformPricingPut)
  setPlatform(@Payload(new ZodPayloadPipe(platformPricingPutRequestSchema)) req: PlatformPricingPutRequest): Promise<PlatformPricingView> {
    return this.pricing.setPlatformPricing(req.caller, req.pricing);
  }

  @MessagePattern(BillingPattern.productPricingGet)
  product(@Payload(new ZodPayloadPipe(productPricingGetRequestSchema)) req: ProductPricingGetRequest): Promise<ProductPricingView> {
    return this.pricing.productPricing(req.productCode);
  }

  @MessagePattern(BillingPattern.productPricingPut)
  setProduct(@Payload(new ZodPayloadPipe(productPricingPutRequestSchema)) req: ProductPricingPutRequest): Promise<ProductPricingView> {
    return this.pricing.setProductPricing(req.caller, req.productCode, req.pricing);
  }

  @MessagePattern(BillingPattern.pricingQuote)
  quote(@Payload(new ZodPayloadPipe(pricingQuoteRequestSchema)) req: PricingQuoteRequest): Promise<PricingQuoteResponse> {
    return this.pricing.quote(req.productCodes);
  }
}
