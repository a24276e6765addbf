-- Catalog: instances launched from images. One launch request is one reservation (`r-` id) holding
-- its N instances; a client token makes a launch idempotent per account. Every change of an
-- instance publishes `catalog.instance.changed` through the catalog's outbox in its transaction.

-- CreateTable
CREATE TABLE "catalog"."reservation" (
    "id" VARCHAR(19) NOT NULL,
    "account_id" VARCHAR(12) NOT NULL,
    "client_token" VARCHAR(64),
    "request_digest" CHAR(64) NOT NULL,
    "image_id" VARCHAR(21) NOT NULL,
    "instance_type" VARCHAR(32) NOT NULL,
    "instance_count" INTEGER NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "reservation_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "reservation_id_check" CHECK ("id" ~ '^r-[0-9a-f]{17}$'),
    CONSTRAINT "reservation_request_digest_check" CHECK ("request_digest" ~ '^[0-9a-f]{64}$'),
    CONSTRAINT "reservation_instance_count_check" CHECK ("instance_count" >= 1)
);

-- CreateTable
CREATE TABLE "catalog"."instance" (
    "id" VARCHAR(19) NOT NULL,
    "reservation_id" VARCHAR(19) NOT NULL,
    "launch_index" INTEGER NOT NULL,
    "account_id" VARCHAR(12) NOT NULL,
    "image_id" VARCHAR(21) NOT NULL,
    "seller_id" VARCHAR(12) NOT NULL,
    "product_code" VARCHAR(25),
    "instance_type" VARCHAR(32) NOT NULL,
    "state" VARCHAR(16) NOT NULL DEFAULT 'pending',
    "state_reason_code" VARCHAR(64) NOT NULL,
    "state_reason_message" VARCHAR(1024) NOT NULL,
    "state_changed_at" TIMESTAMPTZ(3) NOT NULL,
    "running_at" TIMESTAMPTZ(3),
    "stopped_at" TIMESTAMPTZ(3),
    "manifest_location" VARCHAR(1024),
    "revision" INTEGER NOT NULL DEFAULT 1,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "instance_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "instance_id_check" CHECK ("id" ~ '^i-[0-9a-f]{17}$'),
    CONSTRAINT "instance_state_check" CHECK ("state" IN ('pending', 'running', 'shutting-down', 'terminated')),
    CONSTRAINT "instance_launch_index_check" CHECK ("launch_index" >= 0),
    CONSTRAINT "instance_times_check" CHECK ("stopped_at" IS NULL OR "running_at" IS NULL OR "stopped_at" >= "running_at")
);

-- CreateIndex: one reservation per account and client token (the launch's idempotency key).
CREATE UNIQUE INDEX "reservation_account_id_client_token_key" ON "catalog"."reservation"("account_id", "client_token");

-- CreateIndex
CREATE INDEX "reservation_account_id_created_at_idx" ON "catalog"."reservation"("account_id", "created_at");

-- CreateIndex
CREATE UNIQUE INDEX "instance_reservation_id_launch_index_key" ON "catalog"."instance"("reservation_id", "launch_index");

-- CreateIndex: the list (newest first) and its filters, always within one account.
CREATE INDEX "instance_account_id_created_at_id_idx" ON "catalog"."instance"("account_id", "created_at", "id");

-- CreateIndex
CREATE INDEX "instance_account_id_state_created_at_idx" ON "catalog"."instance"("account_id", "state", "created_at");

-- CreateIndex
CREATE INDEX "instance_account_id_image_id_created_at_idx" ON "catalog"."instance"("account_id", "image_id", "created_at");

-- CreateIndex
CREATE INDEX "instance_account_id_instance_type_created_at_idx" ON "catalog"."instance"("account_id", "instance_type", "created_at");

-- CreateIndex: counting an account's live (pending or running) instances for its quota.
CREATE INDEX "instance_account_id_live_idx" ON "catalog"."instance"("account_id") WHERE "state" IN ('pending', 'running');

-- CreateIndex
CREATE INDEX "instance_image_id_idx" ON "catalog"."instance"("image_id");

-- AddForeignKey
ALTER TABLE "catalog"."instance" ADD CONSTRAINT "instance_reservation_id_fkey" FOREIGN KEY ("reservation_id") REFERENCES "catalog"."reservation"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
