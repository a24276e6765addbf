-- Catalog: images, listings, seller profiles, the projection of launch permissions, and full-text
-- search over an image's name and description and its listing's title, summary and description.

-- CreateTable
CREATE TABLE "catalog"."image" (
    "id" VARCHAR(21) NOT NULL,
    "owner_id" VARCHAR(12) NOT NULL,
    "name" VARCHAR(128) NOT NULL,
    "description" VARCHAR(255),
    "version" VARCHAR(64),
    "architecture" VARCHAR(16) NOT NULL,
    "virtualization_type" VARCHAR(16) NOT NULL,
    "root_device_type" VARCHAR(16) NOT NULL,
    "root_device_name" VARCHAR(32),
    "block_device_mappings" JSONB NOT NULL DEFAULT '[]',
    "kernel_id" VARCHAR(21),
    "ramdisk_id" VARCHAR(21),
    "platform" VARCHAR(16) NOT NULL,
    "platform_details" VARCHAR(128) NOT NULL,
    "product_codes" VARCHAR(25)[] DEFAULT ARRAY[]::VARCHAR(25)[],
    "listing_id" VARCHAR(21),
    "source_image_id" VARCHAR(21),
    "state" VARCHAR(16) NOT NULL DEFAULT 'pending',
    "state_reason_code" VARCHAR(64),
    "state_reason_message" VARCHAR(1024),
    "manifest_location" VARCHAR(1024),
    "image_size" BIGINT,
    "revision" INTEGER NOT NULL DEFAULT 1,
    "is_public" BOOLEAN NOT NULL DEFAULT false,
    "lp_revision" INTEGER NOT NULL DEFAULT 0,
    "launch_count" BIGINT NOT NULL DEFAULT 0,
    "search_vector" tsvector,
    "created_at" TIMESTAMPTZ(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,
    "deregistered_at" TIMESTAMPTZ(3),

    CONSTRAINT "image_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "image_id_check" CHECK ("id" ~ '^ami-[0-9a-f]{17}$'),
    CONSTRAINT "image_architecture_check" CHECK ("architecture" IN ('x86_64', 'arm64', 'i386')),
    CONSTRAINT "image_virtualization_type_check" CHECK ("virtualization_type" IN ('hvm', 'paravirtual')),
    CONSTRAINT "image_root_device_type_check" CHECK ("root_device_type" IN ('ebs', 'instance-store')),
    CONSTRAINT "image_platform_check" CHECK ("platform" IN ('linux', 'windows')),
    CONSTRAINT "image_state_check" CHECK ("state" IN ('pending', 'available', 'failed', 'deregistered')),
    CONSTRAINT "image_product_codes_check" CHECK ("product_codes" IS NOT NULL)
);

-- CreateTable
CREATE TABLE "catalog"."launch_grant" (
    "id" UUID NOT NULL,
    "image_id" VARCHAR(21) NOT NULL,
    "account_id" VARCHAR(12) NOT NULL,
    "share_state" VARCHAR(16) NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "launch_grant_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "launch_grant_share_state_check" CHECK ("share_state" IN ('pending', 'accepted', 'rejected'))
);

-- CreateTable
CREATE TABLE "catalog"."listing" (
    "id" VARCHAR(21) NOT NULL,
    "seller_id" VARCHAR(12) NOT NULL,
    "title" VARCHAR(128) NOT NULL,
    "summary" VARCHAR(255) NOT NULL,
    "description" VARCHAR(8000) NOT NULL,
    "categories" VARCHAR(32)[] DEFAULT ARRAY[]::VARCHAR(32)[],
    "pricing_type" VARCHAR(8) NOT NULL,
    "product_code" VARCHAR(25),
    "created_at" TIMESTAMPTZ(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "listing_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "listing_id_check" CHECK ("id" ~ '^lst-[0-9a-f]{17}$'),
    CONSTRAINT "listing_pricing_type_check" CHECK (
        ("pricing_type" = 'free' AND "product_code" IS NULL) OR ("pricing_type" = 'paid' AND "product_code" IS NOT NULL)
    )
);

-- CreateTable
CREATE TABLE "catalog"."seller_profile" (
    "id" VARCHAR(12) NOT NULL,
    "display_name" VARCHAR(64) NOT NULL,
    "about" VARCHAR(2000) NOT NULL DEFAULT '',
    "website" VARCHAR(255),
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "seller_profile_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "image_owner_id_state_idx" ON "catalog"."image"("owner_id", "state");

-- CreateIndex
CREATE INDEX "image_created_at_id_idx" ON "catalog"."image"("created_at", "id");

-- CreateIndex
CREATE INDEX "image_launch_count_id_idx" ON "catalog"."image"("launch_count", "id");

-- CreateIndex
CREATE INDEX "image_listing_id_idx" ON "catalog"."image"("listing_id");

-- An image's name is unique for its owner among the images that are not deregistered.
CREATE UNIQUE INDEX "image_owner_id_name_key" ON "catalog"."image"("owner_id", "name") WHERE "state" <> 'deregistered';

-- Sort by name: byte order, the same in the index, the ORDER BY and the page token.
CREATE INDEX "image_name_id_idx" ON "catalog"."image"("name" COLLATE "C", "id");

-- The browse page's most common reading: public and available.
CREATE INDEX "image_public_available_created_at_id_idx" ON "catalog"."image"("created_at", "id") WHERE "is_public" AND "state" = 'available';

-- CreateIndex
CREATE INDEX "image_product_codes_idx" ON "catalog"."image" USING GIN ("product_codes");

-- CreateIndex
CREATE INDEX "image_search_vector_idx" ON "catalog"."image" USING GIN ("search_vector");

-- CreateIndex
CREATE UNIQUE INDEX "launch_grant_image_id_account_id_key" ON "catalog"."launch_grant"("image_id", "account_id");

-- CreateIndex
CREATE INDEX "launch_grant_account_id_share_state_idx" ON "catalog"."launch_grant"("account_id", "share_state");

-- CreateIndex
CREATE UNIQUE INDEX "listing_product_code_key" ON "catalog"."listing"("product_code");

-- CreateIndex
CREATE INDEX "listing_seller_id_created_at_idx" ON "catalog"."listing"("seller_id", "created_at");

-- CreateIndex
CREATE INDEX "listing_created_at_id_idx" ON "catalog"."listing"("created_at", "id");

-- CreateIndex
CREATE INDEX "listing_categories_idx" ON "catalog"."listing" USING GIN ("categories");

-- Full-text search. The weights: the image's name and the listing's title (A), the listing's
-- summary (B), the descriptions (C). English stemming; a search is websearch_to_tsquery('english', q).
CREATE FUNCTION "catalog"."image_search_document"(
    image_name TEXT, image_description TEXT, listing_title TEXT, listing_summary TEXT, listing_description TEXT
) RETURNS tsvector LANGUAGE sql IMMUTABLE AS $$
    SELECT setweight(to_tsvector('english'::regconfig, coalesce(image_name, '')), 'A')
        || setweight(to_tsvector('english'::regconfig, coalesce(listing_title, '')), 'A')
        || setweight(to_tsvector('english'::regconfig, coalesce(listing_summary, '')), 'B')
        || setweight(to_tsvector('english'::regconfig, coalesce(image_description, '')), 'C')
        || setweight(to_tsvector('english'::regconfig, coalesce(listing_description, '')), 'C')
$$;

-- An image's document, whenever the image is written.
CREATE FUNCTION "catalog"."image_search_vector_refresh"() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    l RECORD;
BEGIN
    SELECT title, summary, description INTO l FROM "catalog"."listing" WHERE id = NEW.listing_id;
    NEW.search_vector := "catalog"."image_search_document"(NEW.name, NEW.description, l.title, l.summary, l.description);
    RETURN NEW;
END
$$;

CREATE TRIGGER "image_search_vector_refresh"
    BEFORE INSERT OR UPDATE OF "name", "description", "listing_id" ON "catalog"."image"
    FOR EACH ROW EXECUTE FUNCTION "catalog"."image_search_vector_refresh"();

-- A listing's texts changed: the documents of its images follow.
CREATE FUNCTION "catalog"."listing_search_vector_refresh"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE "catalog"."image" SET search_vector = "catalog"."image_search_document"(name, description, NEW.title, NEW.summary, NEW.description)
     WHERE listing_id = NEW.id;
    RETURN NULL;
END
$$;

CREATE TRIGGER "listing_search_vector_refresh"
    AFTER UPDATE OF "title", "summary", "description" ON "catalog"."listing"
    FOR EACH ROW EXECUTE FUNCTION "catalog"."listing_search_vector_refresh"();
