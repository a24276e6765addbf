-- Billing and Stripe (docs/stripe.md): the Stripe ids of our customers, products, prices, usage
-- meters and subscriptions, the invoices and payment states Stripe reports, and the webhook events already
-- applied. Used only when STRIPE_SECRET_KEY is set; the built-in ledger needs none of it.

-- CreateTable
CREATE TABLE "billing"."stripe_customer" (
    "account_id" VARCHAR(12) NOT NULL,
    "stripe_id" VARCHAR(255) NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "stripe_customer_pkey" PRIMARY KEY ("account_id")
);

-- CreateTable
CREATE TABLE "billing"."stripe_product" (
    "product_code" VARCHAR(25) NOT NULL,
    "stripe_id" VARCHAR(255) NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "stripe_product_pkey" PRIMARY KEY ("product_code")
);

-- CreateTable
CREATE TABLE "billing"."stripe_price" (
    "id" UUID NOT NULL,
    "product_code" VARCHAR(25) NOT NULL,
    "kind" VARCHAR(16) NOT NULL,
    "instance_type" VARCHAR(32) NOT NULL DEFAULT '',
    "currency" CHAR(3) NOT NULL,
    "amount" DECIMAL(18,6) NOT NULL,
    "stripe_id" VARCHAR(255) NOT NULL,
    "active" BOOLEAN NOT NULL DEFAULT true,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "stripe_price_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "stripe_price_kind_check" CHECK ("kind" IN ('monthly_fee', 'sign_up_fee', 'usage')),
    CONSTRAINT "stripe_price_amount_check" CHECK ("amount" >= 0)
);

-- CreateTable
CREATE TABLE "billing"."stripe_meter" (
    "id" UUID NOT NULL,
    "product_code" VARCHAR(25) NOT NULL,
    "instance_type" VARCHAR(32) NOT NULL,
    "event_name" VARCHAR(100) NOT NULL,
    "stripe_id" VARCHAR(255) NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "stripe_meter_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "billing"."stripe_subscription" (
    "subscription_id" VARCHAR(21) NOT NULL,
    "stripe_id" VARCHAR(255) NOT NULL,
    "account_id" VARCHAR(12) NOT NULL,
    "stripe_status" VARCHAR(32) NOT NULL,
    "cancel_at_period_end" BOOLEAN NOT NULL DEFAULT false,
    "last_event_at" TIMESTAMPTZ(3),
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "stripe_subscription_pkey" PRIMARY KEY ("subscription_id")
);

-- CreateTable
CREATE TABLE "billing"."stripe_invoice" (
    "stripe_id" VARCHAR(255) NOT NULL,
    "stripe_subscription_id" VARCHAR(255),
    "stripe_customer_id" VARCHAR(255),
    "status" VARCHAR(32) NOT NULL,
    "currency" CHAR(3) NOT NULL,
    "amount_due" DECIMAL(18,6) NOT NULL,
    "amount_paid" DECIMAL(18,6) NOT NULL,
    "paid_at" TIMESTAMPTZ(3),
    "last_event_at" TIMESTAMPTZ(3) NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "stripe_invoice_pkey" PRIMARY KEY ("stripe_id")
);

-- CreateTable
CREATE TABLE "billing"."stripe_event" (
    "id" VARCHAR(255) NOT NULL,
    "type" VARCHAR(128) NOT NULL,
    "stripe_created_at" TIMESTAMPTZ(3) NOT NULL,
    "outcome" VARCHAR(32) NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "stripe_event_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "stripe_customer_stripe_id_key" ON "billing"."stripe_customer"("stripe_id");

-- CreateIndex
CREATE UNIQUE INDEX "stripe_price_stripe_id_key" ON "billing"."stripe_price"("stripe_id");

-- CreateIndex
CREATE UNIQUE INDEX "stripe_price_product_code_kind_instance_type_currency_amount_key" ON "billing"."stripe_price"("product_code", "kind", "instance_type", "currency", "amount");

-- CreateIndex
CREATE UNIQUE INDEX "stripe_meter_event_name_key" ON "billing"."stripe_meter"("event_name");

-- CreateIndex
CREATE UNIQUE INDEX "stripe_meter_stripe_id_key" ON "billing"."stripe_meter"("stripe_id");

-- CreateIndex
CREATE UNIQUE INDEX "stripe_meter_product_code_instance_type_key" ON "billing"."stripe_meter"("product_code", "instance_type");

-- CreateIndex
CREATE UNIQUE INDEX "stripe_subscription_stripe_id_key" ON "billing"."stripe_subscription"("stripe_id");

-- CreateIndex
CREATE INDEX "stripe_subscription_account_id_idx" ON "billing"."stripe_subscription"("account_id");

-- CreateIndex
CREATE INDEX "stripe_invoice_stripe_subscription_id_idx" ON "billing"."stripe_invoice"("stripe_subscription_id");

-- CreateIndex
CREATE INDEX "stripe_event_created_at_idx" ON "billing"."stripe_event"("created_at");
