import { Body, Controller, Get, Param, Put } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiOperation, ApiTags } from '@nestjs/swagger';
import {
  BillingPattern,
  ErrorCode,
  platformPricingBodySchema,
  productCodeSchema,
  productPricingBodySchema,
  type Caller,
  type PlatformPricingBody,
  type PlatformPricingView,
  type ProductPricingBody,
  type ProductPricingView,
} from '@imagemart/contracts';
import { CurrentCaller } from '../auth/caller.decorator.js';
import { OptionalAuth } from '../auth/public.decorator.js';
import { openApiSchema, ZodValidationPipe } from '../openapi/zod-validation.pipe.js';
import { ServiceClients } from '../rpc/service-clients.js';

const productCodeParam = new ZodValidationPipe(productCodeSchema, ErrorCode.InvalidProductCodeMalformed, 'code');

/** Prices: the platform's base rates (admin) and each product's prices (its seller). Money is a decimal string. */
@ApiTags('pricing')
@ApiBearerAuth()
@Controller('v1')
export class PricingController {
  constructor(private readonly services: ServiceClients) {}

  @Get('pricing/instance-types')
  @OptionalAuth()
  @ApiOperation({ summary: 'The base usage rate per instance-hour of each instance type, and the platform fee (anyone).' })
  platform(): Promise<PlatformPricingView> {
    return this.services.call('billing', BillingPattern.platformPricingGet, {});
  }

  @Put('pricing/instance-types')
  @ApiOperation({
    summary:
      'Replace the base rates (admin): the instance types listed are the ones offered. Optionally set the platform fee on seller revenue.',
  })
  @ApiBody({ schema: openApiSchema(platformPricingBodySchema) })
  setPlatform(
    @CurrentCaller() caller: Caller,
    @Body(new ZodValidationPipe(platformPricingBodySchema)) pricing: PlatformPricingBody,
  ): Promise<PlatformPricingView> {
    return this.services.call('billing', BillingPattern.platformPricingPut, { caller, pricing });
  }

  @Get('products/:code/pricing')
  @OptionalAuth()
  @ApiOperation({ summary: "A product's prices (anyone): per instance type base + markup = hourly, the monthly and sign-up fees." })
  product(@Param('code', productCodeParam) productCode: string): Promise<ProductPricingView> {
    return this.services.call('billing', BillingPattern.productPricingGet, { productCode });
  }

  @Put('products/:code/pricing')
  @ApiOperation({
    summary:
      "Set a product's prices (the seller who owns the product code): a markup per instance type (an amount or a percent of the base rate), a monthly fee, a sign-up fee.",
  })
  @ApiBody({ schema: openApiSchema(productPricingBodySchema) })
  setProduct(
    @CurrentCaller() caller: Caller,
    @Param('code', productCodeParam) productCode: string,
    @Body(new ZodValidationPipe(productPricingBodySchema)) pricing: ProductPricingBody,
  ): Promise<ProductPricingView> {
    return this.services.call('billing', BillingPattern.productPricingPut, { caller, productCode, pricing });
  }
}
