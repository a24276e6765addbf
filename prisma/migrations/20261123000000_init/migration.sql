-- CreateSchema
CREATE SCHEMA IF NOT EXISTS "billing";

-- CreateSchema
CREATE SCHEMA IF NOT EXISTS "bundling";

-- CreateSchema
CREATE SCHEMA IF NOT EXISTS "catalog";

-- CreateSchema
CREATE SCHEMA IF NOT EXISTS "permission";

-- CreateEnum
CREATE TYPE "permission"."Role" AS ENUM ('buyer', 'seller', 'admin');

-- CreateEnum
CREATE TYPE "permission"."AccountStatus" AS ENUM ('active', 'suspended');

-- CreateTable
CREATE TABLE "permission"."account" (
    "id" VARCHAR(12) NOT NULL,
    "name" VARCHAR(128) NOT NULL,
    "email" VARCHAR(254) NOT NULL,
    "roles" "permission"."Role"[],
    "status" "permission"."AccountStatus" NOT NULL DEFAULT 'active',
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "account_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "permission"."api_key" (
    "id" VARCHAR(20) NOT NULL,
    "account_id" VARCHAR(12) NOT NULL,
    "name" VARCHAR(128) NOT NULL,
    "prefix" VARCHAR(16) NOT NULL,
    "hash" CHAR(64) NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,
    "last_used_at" TIMESTAMPTZ(3),
    "revoked_at" TIMESTAMPTZ(3),

    CONSTRAINT "api_key_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "permission"."audit_event" (
    "id" UUID NOT NULL,
    "actor_id" VARCHAR(12),
    "action" VARCHAR(64) NOT NULL,
    "resource_type" VARCHAR(32) NOT NULL,
    "resource_id" VARCHAR(64) NOT NULL,
    "request_id" VARCHAR(64),
    "details" JSONB NOT NULL DEFAULT '{}',
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "audit_event_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "permission"."outbox_event" (
    "id" UUID NOT NULL,
    "type" VARCHAR(128) NOT NULL,
    "queue" VARCHAR(64) NOT NULL,
    "payload" JSONB NOT NULL,
    "request_id" VARCHAR(64),
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "last_error" TEXT,
    "created_at" TIMESTAMPTZ(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,
    "published_at" TIMESTAMPTZ(3),

    CONSTRAINT "outbox_event_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "catalog"."outbox_event" (
    "id" UUID NOT NULL,
    "type" VARCHAR(128) NOT NULL,
    "queue" VARCHAR(64) NOT NULL,
    "payload" JSONB NOT NULL,
    "request_id" VARCHAR(64),
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "last_error" TEXT,
    "created_at" TIMESTAMPTZ(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,
    "published_at" TIMESTAMPTZ(3),

    CONSTRAINT "outbox_event_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "billing"."outbox_event" (
    "id" UUID NOT NULL,
    "type" VARCHAR(128) NOT NULL,
    "queue" VARCHAR(64) NOT NULL,
    "payload" JSONB NOT NULL,
    "request_id" VARCHAR(64),
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "last_error" TEXT,
    "created_at" TIMESTAMPTZ(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,
    "published_at" TIMESTAMPTZ(3),

    CONSTRAINT "outbox_event_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "bundling"."outbox_event" (
    "id" UUID NOT NULL,
    "type" VARCHAR(128) NOT NULL,
    "queue" VARCHAR(64) NOT NULL,
    "payload" JSONB NOT NULL,
    "request_id" VARCHAR(64),
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "last_error" TEXT,
    "created_at" TIMESTAMPTZ(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,
    "published_at" TIMESTAMPTZ(3),

    CONSTRAINT "outbox_event_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "account_email_key" ON "permission"."account"("email");

-- CreateIndex
CREATE INDEX "account_created_at_id_idx" ON "permission"."account"("created_at", "id");

-- CreateIndex
CREATE UNIQUE INDEX "api_key_hash_key" ON "permission"."api_key"("hash");

-- CreateIndex
CREATE INDEX "api_key_account_id_created_at_idx" ON "permission"."api_key"("account_id", "created_at");

-- CreateIndex
CREATE INDEX "audit_event_resource_type_resource_id_created_at_idx" ON "permission"."audit_event"("resource_type", "resource_id", "created_at");

-- CreateIndex
CREATE INDEX "audit_event_actor_id_created_at_idx" ON "permission"."audit_event"("actor_id", "created_at");

-- CreateIndex
CREATE INDEX "outbox_event_published_at_created_at_idx" ON "permission"."outbox_event"("published_at", "created_at");

-- CreateIndex
CREATE INDEX "outbox_event_published_at_created_at_idx" ON "catalog"."outbox_event"("published_at", "created_at");

-- CreateIndex
CREATE INDEX "outbox_event_published_at_created_at_idx" ON "billing"."outbox_event"("published_at", "created_at");

-- CreateIndex
CREATE INDEX "outbox_event_published_at_created_at_idx" ON "bundling"."outbox_event"("published_at", "created_at");

-- AddForeignKey
ALTER TABLE "permission"."api_key" ADD CONSTRAINT "api_key_account_id_fkey" FOREIGN KEY ("account_id") REFERENCES "permission"."account"("id") ON DELETE CASCADE ON UPDATE CASCADE;
