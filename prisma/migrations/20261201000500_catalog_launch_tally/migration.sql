-- Catalog: launch counts without writing the image's row on every launch.
--
-- `catalog.launch_reserve` used to add each launch to `catalog.image.launch_count`. That row is
-- hot (every launch of a popular image writes it), and the update was never HOT: `launch_count`
-- is indexed for the popularity order, so each launch inserted into every index of the image,
-- both GIN indexes included, and held the row's lock until its commit was on disk. A launch now
-- appends its count to `catalog.image_launch_tally`, and `catalog.fold_launch_tally()` adds the
-- tallies to the images' counters every LAUNCH_COUNT_FOLD_INTERVAL_MS (docs/launches.md).
--
-- The image's availability at commit is kept with a shared row lock (FOR SHARE): launches of an
-- image do not wait for each other, and a deregister waits for the launches that checked the
-- image before it (or they see it deregistered, if it committed first).

CREATE TABLE "catalog"."image_launch_tally" (
    "id" BIGSERIAL NOT NULL,
    "image_id" VARCHAR(21) NOT NULL,
    "launches" INTEGER NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "image_launch_tally_pkey" PRIMARY KEY ("id")
);

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
    -- race since the caller read it, and one that comes later waits for this lock.
    PERFORM 1 FROM "catalog"."image" WHERE id = v_image_id AND state = 'available' FOR SHARE;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'unavailable'::TEXT, v_live, NULL::VARCHAR;
        RETURN;
    END IF;

    INSERT INTO "catalog"."reservation"
    SELECT * FROM jsonb_populate_record(NULL::"catalog"."reservation", p_reservation);

    INSERT INTO "catalog"."instance"
    SELECT * FROM jsonb_populate_recordset(NULL::"catalog"."instance", p_instances);

    INSERT INTO "catalog"."image_launch_tally" (image_id, launches) VALUES (v_image_id, v_count);

    -- The relay delivers in (created_at, id) order: one microsecond apart keeps the given order.
    v_now := clock_timestamp();
    INSERT INTO "catalog"."outbox_event" (id, type, queue, payload, request_id, created_at, updated_at)
    SELECT (e ->> 'id')::UUID, e ->> 'type', e ->> 'queue', e -> 'payload', e ->> 'request_id',
           v_now + (n * INTERVAL '1 microsecond'), v_now
      FROM jsonb_array_elements(p_events) WITH ORDINALITY AS t(e, n);

    RETURN QUERY SELECT 'created'::TEXT, v_live, v_id;
END
$$;

-- Adds the launch tallies to the images' counters and deletes them; answers how many images
-- moved. Only images whose row it can lock at once are folded (SKIP LOCKED): an image a launch or
-- a seller holds right now is left for the next fold, so a fold never waits and never deadlocks,
-- and two catalog processes folding at once share the work without counting anything twice.
CREATE FUNCTION "catalog"."fold_launch_tally"() RETURNS INTEGER
LANGUAGE plpgsql AS $$
DECLARE
    v_images INTEGER;
BEGIN
    WITH free AS (
        SELECT i.id
          FROM "catalog"."image" i
         WHERE i.id IN (SELECT DISTINCT t.image_id FROM "catalog"."image_launch_tally" t)
         ORDER BY i.id
           FOR NO KEY UPDATE SKIP LOCKED
    ), taken AS (
        DELETE FROM "catalog"."image_launch_tally" t
         USING free
         WHERE t.image_id = free.id
        RETURNING t.image_id, t.launches
    ), summed AS (
        SELECT image_id, sum(launches) AS launches FROM taken GROUP BY image_id
    )
    UPDATE "catalog"."image" i
       SET launch_count = i.launch_count + s.launches, updated_at = now()
      FROM summed s
     WHERE i.id = s.image_id;
    GET DIAGNOSTICS v_images = ROW_COUNT;
    RETURN v_images;
END
$$;
