-- Billing, first part: platform pricing, product pricing, subscriptions.

-- CreateEnum
CREATE TYPE "billing"."MarkupKind" AS ENUM ('amount', 'percent');

-- CreateEnum
CREATE TYPE "billing"."SubscriptionStatus" AS ENUM ('active', 'past_due', 'canceled');

-- CreateTable
CREATE TABLE "billing"."instance_type_rate" (
    "id" VARCHAR(32) NOT NULL,
    "currency" CHAR(3) NOT NULL,
    "hourly" DECIMAL(18,6) NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "instance_type_rate_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "instance_type_rate_hourly_check" CHECK ("hourly" >= 0)
);

-- CreateTable
CREATE TABLE "billing"."platform_fee" (
    "id" VARCHAR(16) NOT NULL,
    "currency" CHAR(3) NOT NULL,
    "percent" DECIMAL(9,6) NOT NULL,
    "fixed_per_buyer" DECIMAL(18,6) NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "platform_fee_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "platform_fee_amounts_check" CHECK ("percent" >= 0 AND "percent" <= 100 AND "fixed_per_buyer" >= 0)
);

-- CreateTable
CREATE TABLE "billing"."product_pricing" (
    "id" VARCHAR(25) NOT NULL,
    "seller_id" VARCHAR(12) NOT NULL,
    "currency" CHAR(3) NOT NULL,
    "monthly_fee" DECIMAL(18,6) NOT NULL,
    "sign_up_fee" DECIMAL(18,6) NOT NULL,
    "revision" INTEGER NOT NULL DEFAULT 1,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "product_pricing_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "product_pricing_fees_check" CHECK ("monthly_fee" >= 0 AND "sign_up_fee" >= 0)
);

-- CreateTable
CREATE TABLE "billing"."product_instance_type_price" (
    "id" UUID NOT NULL,
    "product_code" VARCHAR(25) NOT NULL,
    "instance_type" VARCHAR(32) NOT NULL,
    "markup_kind" "billing"."MarkupKind" NOT NULL,
    "markup" DECIMAL(18,6) NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "product_instance_type_price_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "product_instance_type_price_markup_check" CHECK ("markup" >= 0)
);

-- CreateTable
CREATE TABLE "billing"."subscription" (
    "id" VARCHAR(21) NOT NULL,
    "account_id" VARCHAR(12) NOT NULL,
    "product_code" VARCHAR(25) NOT NULL,
    "seller_id" VARCHAR(12) NOT NULL,
    "status" "billing"."SubscriptionStatus" NOT NULL DEFAULT 'active',
    "cancel_at_period_end" BOOLEAN NOT NULL DEFAULT false,
    "current_period_start" TIMESTAMPTZ(3) NOT NULL,
    "current_period_end" TIMESTAMPTZ(3) NOT NULL,
    "canceled_at" TIMESTAMPTZ(3),
    "ended_at" TIMESTAMPTZ(3),
    "revision" INTEGER NOT NULL DEFAULT 1,
    "request_id" VARCHAR(64),
    "cancel_request_id" VARCHAR(64),
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "subscription_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "product_pricing_seller_id_idx" ON "billing"."product_pricing"("seller_id");

-- CreateIndex
CREATE UNIQUE INDEX "product_instance_type_price_product_code_instance_type_key" ON "billing"."product_instance_type_price"("product_code", "instance_type");

-- CreateIndex
CREATE INDEX "subscription_account_id_created_at_id_idx" ON "billing"."subscription"("account_id", "created_at", "id");

-- CreateIndex
CREATE INDEX "subscription_account_id_product_code_idx" ON "billing"."subscription"("account_id", "product_code");

-- CreateIndex
CREATE INDEX "subscription_status_current_period_end_idx" ON "billing"."subscription"("status", "current_period_end");

-- At most one subscription per account and product that has not ended (not expressible in the
-- Prisma schema): a second subscribe while one is active or past due is a conflict.
CREATE UNIQUE INDEX "subscription_account_id_product_code_live_key" ON "billing"."subscription"("account_id", "product_code") WHERE "status" <> 'canceled';

-- AddForeignKey
ALTER TABLE "billing"."product_instance_type_price" ADD CONSTRAINT "product_instance_type_price_product_code_fkey" FOREIGN KEY ("product_code") REFERENCES "billing"."product_pricing"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- Default prices (docs/pricing.md): US East on-demand Linux rates per instance-hour, and the
-- DevPay fee of 3% + 0.30 per buyer per bill. An admin changes them with PUT /v1/pricing/instance-types.
INSERT INTO "billing"."instance_type_rate" ("id", "currency", "hourly", "updated_at") VALUES
    ('t3.micro', 'USD', 0.0104, CURRENT_TIMESTAMP),
    ('t3.small', 'USD', 0.0208, CURRENT_TIMESTAMP),
    ('m5.large', 'USD', 0.096, CURRENT_TIMESTAMP),
    ('c5.xlarge', 'USD', 0.17, CURRENT_TIMESTAMP);

INSERT INTO "billing"."platform_fee" ("id", "currency", "percent", "fixed_per_buyer", "updated_at") VALUES
    ('platform', 'USD', 3, 0.30, CURRENT_TIMESTAMP);
