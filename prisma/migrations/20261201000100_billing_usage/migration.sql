-- Billing, second part: usage records metered from catalog.instance.changed, monthly invoices and
-- credit notes (immutable once finalised, enforced by triggers), and the month-close work list.

-- CreateTable
CREATE TABLE "billing"."usage_record" (
    "instance_id" VARCHAR(19) NOT NULL,
    "account_id" VARCHAR(12) NOT NULL,
    "image_id" VARCHAR(21) NOT NULL,
    "seller_id" VARCHAR(12) NOT NULL,
    "product_code" VARCHAR(25),
    "instance_type" VARCHAR(32) NOT NULL,
    "state" VARCHAR(16) NOT NULL,
    "running_at" TIMESTAMPTZ(3),
    "stopped_at" TIMESTAMPTZ(3),
    "revision" INTEGER NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "usage_record_pkey" PRIMARY KEY ("instance_id"),
    CONSTRAINT "usage_record_revision_check" CHECK ("revision" >= 1),
    CONSTRAINT "usage_record_times_check" CHECK ("stopped_at" IS NULL OR "running_at" IS NULL OR "stopped_at" >= "running_at")
);

-- CreateTable
CREATE TABLE "billing"."invoice" (
    "id" VARCHAR(20) NOT NULL,
    "number" VARCHAR(32) NOT NULL,
    "kind" VARCHAR(16) NOT NULL,
    "account_id" VARCHAR(12) NOT NULL,
    "period_start" TIMESTAMPTZ(3) NOT NULL,
    "period_end" TIMESTAMPTZ(3) NOT NULL,
    "status" VARCHAR(8) NOT NULL DEFAULT 'draft',
    "currency" CHAR(3) NOT NULL,
    "total" DECIMAL(18,6) NOT NULL,
    "platform_fee_percent" DECIMAL(9,6) NOT NULL,
    "platform_fee_fixed" DECIMAL(18,6) NOT NULL,
    "corrects_id" VARCHAR(20),
    "finalized_at" TIMESTAMPTZ(3),
    "paid_at" TIMESTAMPTZ(3),
    "voided_at" TIMESTAMPTZ(3),
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "invoice_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "invoice_kind_check" CHECK ("kind" IN ('invoice', 'credit_note')),
    CONSTRAINT "invoice_status_check" CHECK ("status" IN ('draft', 'open', 'paid', 'void'))
);

-- CreateTable
CREATE TABLE "billing"."invoice_line" (
    "id" UUID NOT NULL,
    "invoice_id" VARCHAR(20) NOT NULL,
    "position" INTEGER NOT NULL,
    "kind" VARCHAR(24) NOT NULL,
    "description" VARCHAR(200) NOT NULL,
    "service_period" TIMESTAMPTZ(3) NOT NULL,
    "product_code" VARCHAR(25),
    "seller_id" VARCHAR(12),
    "subscription_id" VARCHAR(21),
    "instance_type" VARCHAR(32),
    "seconds" BIGINT,
    "unit_price" DECIMAL(18,6),
    "base_amount" DECIMAL(18,6) NOT NULL,
    "seller_amount" DECIMAL(18,6) NOT NULL,
    "amount" DECIMAL(18,6) NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "invoice_line_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "invoice_line_kind_check" CHECK ("kind" IN ('sign_up_fee', 'monthly_fee', 'usage', 'usage_adjustment')),
    CONSTRAINT "invoice_line_amount_check" CHECK ("amount" = "base_amount" + "seller_amount")
);

-- CreateTable: one row per buyer and month once the month is closed for them.
CREATE TABLE "billing"."month_close" (
    "id" VARCHAR(20) NOT NULL,
    "period_start" TIMESTAMPTZ(3) NOT NULL,
    "account_id" VARCHAR(12) NOT NULL,
    "closed_at" TIMESTAMPTZ(3),
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "month_close_pkey" PRIMARY KEY ("id")
);

-- CreateTable: a month whose close has run to the end (the sweep skips it).
CREATE TABLE "billing"."month_close_run" (
    "period_start" TIMESTAMPTZ(3) NOT NULL,
    "completed_at" TIMESTAMPTZ(3),
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "month_close_run_pkey" PRIMARY KEY ("period_start")
);

-- Invoice numbers: IM-YYYYMM-0000001. A rolled-back close can leave a gap in the sequence.
CREATE SEQUENCE "billing"."invoice_number_seq";

-- CreateIndex
CREATE INDEX "usage_record_account_id_running_at_idx" ON "billing"."usage_record"("account_id", "running_at");
CREATE INDEX "usage_record_account_id_updated_at_idx" ON "billing"."usage_record"("account_id", "updated_at");
CREATE INDEX "usage_record_running_at_idx" ON "billing"."usage_record"("running_at");
CREATE INDEX "usage_record_seller_id_idx" ON "billing"."usage_record"("seller_id");
CREATE UNIQUE INDEX "invoice_number_key" ON "billing"."invoice"("number");
-- One invoice and at most one credit note per buyer and month: closing a month twice makes no second one.
CREATE UNIQUE INDEX "invoice_account_id_period_start_kind_key" ON "billing"."invoice"("account_id", "period_start", "kind");
CREATE INDEX "invoice_account_id_created_at_id_idx" ON "billing"."invoice"("account_id", "created_at", "id");
CREATE INDEX "invoice_period_start_status_idx" ON "billing"."invoice"("period_start", "status");
CREATE INDEX "invoice_line_invoice_id_position_idx" ON "billing"."invoice_line"("invoice_id", "position");
CREATE INDEX "invoice_line_seller_id_idx" ON "billing"."invoice_line"("seller_id");
CREATE UNIQUE INDEX "month_close_period_start_account_id_key" ON "billing"."month_close"("period_start", "account_id");
CREATE INDEX "month_close_period_start_closed_at_idx" ON "billing"."month_close"("period_start", "closed_at");
CREATE INDEX "month_close_account_id_closed_at_idx" ON "billing"."month_close"("account_id", "closed_at");

-- AddForeignKey
ALTER TABLE "billing"."invoice_line" ADD CONSTRAINT "invoice_line_invoice_id_fkey" FOREIGN KEY ("invoice_id") REFERENCES "billing"."invoice"("id") ON DELETE RESTRICT ON UPDATE RESTRICT;
ALTER TABLE "billing"."invoice" ADD CONSTRAINT "invoice_corrects_id_fkey" FOREIGN KEY ("corrects_id") REFERENCES "billing"."invoice"("id") ON DELETE RESTRICT ON UPDATE RESTRICT;

-- Immutability (docs/pricing.md): once an invoice leaves draft, its lines and amounts never
-- change; the only changes left are open → paid and open → void. Corrections are credit notes.
CREATE FUNCTION "billing"."invoice_line_guard"() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    parent_status VARCHAR(8);
BEGIN
    SELECT "status" INTO parent_status FROM "billing"."invoice"
     WHERE "id" = CASE WHEN TG_OP = 'DELETE' THEN OLD."invoice_id" ELSE NEW."invoice_id" END;
    IF parent_status IS DISTINCT FROM 'draft' THEN
        RAISE EXCEPTION 'invoice lines are immutable once the invoice is finalised' USING ERRCODE = 'check_violation';
    END IF;
    IF TG_OP = 'UPDATE' AND OLD."invoice_id" <> NEW."invoice_id" THEN
        RAISE EXCEPTION 'an invoice line cannot move to another invoice' USING ERRCODE = 'check_violation';
    END IF;
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END $$;

CREATE TRIGGER "invoice_line_guard" BEFORE INSERT OR UPDATE OR DELETE ON "billing"."invoice_line"
    FOR EACH ROW EXECUTE FUNCTION "billing"."invoice_line_guard"();

CREATE FUNCTION "billing"."invoice_guard"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD."status" <> 'draft' THEN
            RAISE EXCEPTION 'a finalised invoice cannot be deleted' USING ERRCODE = 'check_violation';
        END IF;
        RETURN OLD;
    END IF;
    IF OLD."status" = 'draft' THEN
        RETURN NEW;
    END IF;
    IF NEW."id" <> OLD."id" OR NEW."number" <> OLD."number" OR NEW."kind" <> OLD."kind"
       OR NEW."account_id" <> OLD."account_id" OR NEW."period_start" <> OLD."period_start"
       OR NEW."period_end" <> OLD."period_end" OR NEW."currency" <> OLD."currency" OR NEW."total" <> OLD."total"
       OR NEW."platform_fee_percent" <> OLD."platform_fee_percent" OR NEW."platform_fee_fixed" <> OLD."platform_fee_fixed"
       OR NEW."corrects_id" IS DISTINCT FROM OLD."corrects_id" OR NEW."finalized_at" IS DISTINCT FROM OLD."finalized_at" THEN
        RAISE EXCEPTION 'a finalised invoice is immutable' USING ERRCODE = 'check_violation';
    END IF;
    IF NEW."status" <> OLD."status" AND NOT (OLD."status" = 'open' AND NEW."status" IN ('paid', 'void')) THEN
        RAISE EXCEPTION 'invoice status cannot go from % to %', OLD."status", NEW."status" USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER "invoice_guard" BEFORE UPDATE OR DELETE ON "billing"."invoice"
    FOR EACH ROW EXECUTE FUNCTION "billing"."invoice_guard"();
