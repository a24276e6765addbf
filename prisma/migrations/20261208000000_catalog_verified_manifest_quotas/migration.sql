-- Catalog: the verified manifest pinned on the image, popularity without the owner's own
-- launches, and what the upload and pending-image expiry reads.
--
-- 1. `manifest_digest` (SHA-256 of the manifest's bytes as the bundler verified them) and
--    `signer_key_id` (the fingerprint of the key its signature verified with: the platform's
--    signing key, or the seller's registered key for a bundle made on the seller's machine) are
--    recorded when an image becomes available. A host launches only from a manifest with that
--    digest, checked against that key (docs/launches.md). Images made available before this have
--    neither, and launch nothing until their bundle is verified again.
-- 2. `catalog.launch_reserve` no longer tallies a launch by the image's owner: `launch_count`
--    (the `popularity` order) counts other accounts' launches only, so a seller cannot lift his
--    own image by launching it (docs/catalog.md).
-- 3. Partial indexes for the expiry sweep (open uploads and pending images without progress).

ALTER TABLE "catalog"."image"
    ADD COLUMN "manifest_digest" CHAR(64),
    ADD COLUMN "signer_key_id" VARCHAR(71);

CREATE INDEX "upload_open_updated_at_idx" ON "catalog"."upload"("updated_at") WHERE "state" = 'open';
CREATE INDEX "image_pending_updated_at_idx" ON "catalog"."image"("updated_at") WHERE "state" = 'pending';

CREATE OR REPLACE FUNCTION "catalog"."launch_reserve"(
    p_account_id    VARCHAR,
    p_reservation   JSONB,   -- one catalog.reservation row, snake_case keys
    p_instances     JSONB,   -- an array of catalog.instance rows
    p_events        JSONB,   -- an array of {id, type, queue, payload, request_id}: outbox rows, in order
    p_running_limit INTEGER
) RETURNS TABLE ("outcome" TEXT, "live" BIGINT, "reservation_id" VARCHAR)
LANGUAGE plpgsql AS $$
DECLARE
    v_count    INTEGER := jsonb_array_length(p_instances);
    v_id       VARCHAR := p_reservation ->> 'id';
    v_image_id VARCHAR := p_reservation ->> 'image_id';
    v_owner_id VARCHAR;
    v_live     BIGINT;
    v_now      TIMESTAMPTZ;
BEGIN
    -- The same lock as every launch of the account takes (class 0x696e73, "ins").
    PERFORM pg_advisory_xact_lock(6909555, hashtext(p_account_id));

    -- A launch with the same id committed first: the same request run twice, or the same client
    -- token (a reservation's id is derived from the account and the token when there is one).
    IF EXISTS (SELECT 1 FROM "catalog"."reservation" r WHERE r.id = v_id) THEN
        RETURN QUERY SELECT 'replay'::TEXT, 0::BIGINT, v_id;
        RETURN;
    END IF;

    SELECT count(*) INTO v_live
      FROM "catalog"."instance"
     WHERE account_id = p_account_id AND state IN ('pending', 'running');
    IF v_live + v_count > p_running_limit THEN
        RETURN QUERY SELECT 'limit'::TEXT, v_live, NULL::VARCHAR;
        RETURN;
    END IF;

    -- The image must still be available when the launch commits: a deregister may have won the
    -- race since the caller read it, and one that comes later waits for this lock (the trigger
    -- image_leaves_available). Launches of the image share it; the read after it sees any change
    -- that held it.
    PERFORM pg_advisory_xact_lock_shared(6909287, hashtext(v_image_id));
    SELECT i.owner_id INTO v_owner_id FROM "catalog"."image" i WHERE i.id = v_image_id AND i.state = 'available';
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'unavailable'::TEXT, v_live, NULL::VARCHAR;
        RETURN;
    END IF;

    INSERT INTO "catalog"."reservation"
    SELECT * FROM jsonb_populate_record(NULL::"catalog"."reservation", p_reservation);

    INSERT INTO "catalog"."instance"
    SELECT * FROM jsonb_populate_recordset(NULL::"catalog"."instance", p_instances);

    -- Popularity counts other accounts' launches: the owner's own are not tallied.
    IF v_owner_id <> p_account_id THEN
        INSERT INTO "catalog"."image_launch_tally" (image_id, launches) VALUES (v_image_id, v_count);
    END IF;

    -- The relay delivers in (created_at, id) order: one microsecond apart keeps the given order.
    v_now := clock_timestamp();
    INSERT INTO "catalog"."outbox_event" (id, type, queue, payload, request_id, created_at, updated_at)
    SELECT (e ->> 'id')::UUID, e ->> 'type', e ->> 'queue', e -> 'payload', e ->> 'request_id',
           v_now + (n * INTERVAL '1 microsecond'), v_now
      FROM jsonb_array_elements(p_events) WITH ORDINALITY AS t(e, n);

    RETURN QUERY SELECT 'created'::TEXT, v_live, v_id;
END
$$;
