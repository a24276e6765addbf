-- Catalog browse and search at scale (see docs/catalog.md, "Cost").

-- A catalog is read far more often than it is written: no pending list in the full-text index,
-- which every search would otherwise scan in full until the next vacuum.
ALTER INDEX "catalog"."image_search_vector_idx" SET (fastupdate = off);

-- The public branch of a list (public and available) in each sort order without a search text;
-- newest already has "image_public_available_created_at_id_idx".
CREATE INDEX "image_public_available_launch_count_id_idx" ON "catalog"."image"("launch_count", "id") WHERE "is_public" AND "state" = 'available';
CREATE INDEX "image_public_available_name_id_idx" ON "catalog"."image"("name" COLLATE "C", "id") WHERE "is_public" AND "state" = 'available';

-- The granted branch: an account's accepted shares, read from the index alone.
CREATE INDEX "launch_grant_account_id_share_state_image_id_idx" ON "catalog"."launch_grant"("account_id", "share_state", "image_id");
