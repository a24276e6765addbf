-- Permission: seller signing keys. A seller registers the public keys that sign the manifests of
-- bundles made on his own machine; an upload of such a bundle must be signed by one of his active
-- keys. Keys are unique per account by fingerprint; a revoked key stays (revoked_at), for the record.

-- CreateTable
CREATE TABLE "permission"."signing_key" (
    "id" UUID NOT NULL,
    "account_id" VARCHAR(12) NOT NULL,
    "fingerprint" VARCHAR(71) NOT NULL,
    "name" VARCHAR(128) NOT NULL,
    "algorithm" VARCHAR(16) NOT NULL,
    "key_type" VARCHAR(16) NOT NULL,
    "key_bits" INTEGER,
    "public_key_pem" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,
    "revoked_at" TIMESTAMPTZ(3),

    CONSTRAINT "signing_key_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "signing_key_fingerprint_check" CHECK ("fingerprint" ~ '^sha256:[0-9a-f]{64}$'),
    CONSTRAINT "signing_key_algorithm_check" CHECK ("algorithm" IN ('Ed25519', 'RSA-PSS-SHA256')),
    CONSTRAINT "signing_key_key_type_check" CHECK ("key_type" IN ('rsa', 'ed25519'))
);

-- CreateIndex
CREATE UNIQUE INDEX "signing_key_account_id_fingerprint_key" ON "permission"."signing_key"("account_id", "fingerprint");

-- CreateIndex
CREATE INDEX "signing_key_account_id_created_at_idx" ON "permission"."signing_key"("account_id", "created_at");

-- AddForeignKey
ALTER TABLE "permission"."signing_key" ADD CONSTRAINT "signing_key_account_id_fkey" FOREIGN KEY ("account_id") REFERENCES "permission"."account"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- Catalog: an upload may carry a bundle made on the seller's machine (manifest, signer, part
-- file names) instead of a raw image.
ALTER TABLE "catalog"."upload" ADD COLUMN "bundle" JSONB;
