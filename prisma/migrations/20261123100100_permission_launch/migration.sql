-- Launch permissions, shares and the projections the launch decision reads.

-- CreateEnum
CREATE TYPE "permission"."PermissionShareState" AS ENUM ('pending', 'accepted', 'rejected');

-- CreateTable
CREATE TABLE "permission"."image" (
    "id" VARCHAR(21) NOT NULL,
    "owner_id" VARCHAR(12) NOT NULL,
    "state" VARCHAR(16) NOT NULL,
    "product_codes" VARCHAR(25)[],
    "revision" INTEGER NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "image_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "permission"."subscription" (
    "id" VARCHAR(64) NOT NULL,
    "account_id" VARCHAR(12) NOT NULL,
    "product_code" VARCHAR(25) NOT NULL,
    "status" VARCHAR(16) NOT NULL,
    "entitled" BOOLEAN NOT NULL,
    "revision" INTEGER NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "subscription_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "permission"."launch_setting" (
    "id" VARCHAR(21) NOT NULL,
    "is_public" BOOLEAN NOT NULL DEFAULT false,
    "revision" INTEGER NOT NULL DEFAULT 0,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "launch_setting_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "permission"."launch_grant" (
    "id" UUID NOT NULL,
    "image_id" VARCHAR(21) NOT NULL,
    "account_id" VARCHAR(12) NOT NULL,
    "share_state" "permission"."PermissionShareState" NOT NULL DEFAULT 'pending',
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "launch_grant_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "image_owner_id_idx" ON "permission"."image"("owner_id");

-- CreateIndex
CREATE INDEX "subscription_account_id_product_code_idx" ON "permission"."subscription"("account_id", "product_code");

-- CreateIndex
CREATE UNIQUE INDEX "launch_grant_image_id_account_id_key" ON "permission"."launch_grant"("image_id", "account_id");

-- CreateIndex
CREATE INDEX "launch_grant_account_id_created_at_image_id_idx" ON "permission"."launch_grant"("account_id", "created_at", "image_id");

-- CreateIndex
CREATE INDEX "audit_event_created_at_id_idx" ON "permission"."audit_event"("created_at", "id");
