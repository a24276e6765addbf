-- Catalog: resumable uploads of raw images. An upload registers its image (pending) and collects
-- its parts, which the gateway streams into the object store at `uploads/<upload id>/part-<n>`;
-- completing it hands the parts to the bundler through the outbox (`catalog.upload.completed`).

-- CreateTable
CREATE TABLE "catalog"."upload" (
    "id" VARCHAR(21) NOT NULL,
    "image_id" VARCHAR(21) NOT NULL,
    "owner_id" VARCHAR(12) NOT NULL,
    "size" BIGINT NOT NULL,
    "sha256" CHAR(64) NOT NULL,
    "compression" VARCHAR(8) NOT NULL,
    "part_size" INTEGER NOT NULL,
    "part_count" INTEGER NOT NULL,
    "state" VARCHAR(16) NOT NULL DEFAULT 'open',
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,
    "completed_at" TIMESTAMPTZ(3),
    "aborted_at" TIMESTAMPTZ(3),

    CONSTRAINT "upload_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "upload_id_check" CHECK ("id" ~ '^upl-[0-9a-f]{17}$'),
    CONSTRAINT "upload_sha256_check" CHECK ("sha256" ~ '^[0-9a-f]{64}$'),
    CONSTRAINT "upload_compression_check" CHECK ("compression" IN ('zstd', 'gzip')),
    CONSTRAINT "upload_state_check" CHECK ("state" IN ('open', 'complete', 'aborted')),
    CONSTRAINT "upload_size_check" CHECK ("size" >= 0 AND "part_size" > 0 AND "part_count" >= 1)
);

-- CreateTable
CREATE TABLE "catalog"."upload_part" (
    "id" UUID NOT NULL,
    "upload_id" VARCHAR(21) NOT NULL,
    "part_number" INTEGER NOT NULL,
    "size" INTEGER NOT NULL,
    "sha256" CHAR(64) NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "upload_part_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "upload_part_number_check" CHECK ("part_number" >= 1 AND "size" >= 0)
);

-- CreateIndex
CREATE UNIQUE INDEX "upload_image_id_key" ON "catalog"."upload"("image_id");

-- CreateIndex
CREATE INDEX "upload_owner_id_created_at_idx" ON "catalog"."upload"("owner_id", "created_at");

-- CreateIndex
CREATE UNIQUE INDEX "upload_part_upload_id_part_number_key" ON "catalog"."upload_part"("upload_id", "part_number");

-- AddForeignKey
ALTER TABLE "catalog"."upload_part" ADD CONSTRAINT "upload_part_upload_id_fkey" FOREIGN KEY ("upload_id") REFERENCES "catalog"."upload"("id") ON DELETE CASCADE ON UPDATE CASCADE;
