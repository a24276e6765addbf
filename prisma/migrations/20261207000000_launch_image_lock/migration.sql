-- Catalog: a launch holds its image with a shared advisory lock instead of a row lock.
--
-- `catalog.launch_reserve` kept the image available until its commit with `FOR SHARE` on the
-- image's row. A row lock is written into the row: every launch dirtied the image's page and
-- wrote WAL for it, and launches of one image that overlapped made a MultiXact each. Now a launch
-- takes the image's advisory lock in shared mode (class 0x696d67, "img"), and any change that
-- takes an image out of `available` (a deregister, a failure, a delete) takes the same lock
-- exclusively in a trigger, so it still waits for the launches that checked the image before it,
-- and launches that come later wait for it and then read the image's new state.
--
-- Two indexes of catalog.instance go: the list filters by image and by instance type walk the
-- account's own index and filter (an account's instances are few), and every launch and every
-- state change (not HOT: `state` is indexed) wrote to both.

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
    -- race since the caller read it, and one that comes later waits for this lock (the trigger
    -- below). Launches of the image share it; the read after it sees any change that held it.
    PERFORM pg_advisory_xact_lock_shared(6909287, hashtext(v_image_id));
    PERFORM 1 FROM "catalog"."image" WHERE id = v_image_id AND state = 'available';
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

CREATE FUNCTION "catalog"."image_leaves_available"() RETURNS TRIGGER
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(6909287, hashtext(OLD.id));
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER "image_leaves_available"
    BEFORE UPDATE OF state ON "catalog"."image"
    FOR EACH ROW
    WHEN (OLD.state = 'available' AND NEW.state IS DISTINCT FROM 'available')
    EXECUTE FUNCTION "catalog"."image_leaves_available"();

CREATE TRIGGER "image_deleted_while_available"
    BEFORE DELETE ON "catalog"."image"
    FOR EACH ROW
    WHEN (OLD.state = 'available')
    EXECUTE FUNCTION "catalog"."image_leaves_available"();

DROP INDEX "catalog"."instance_account_id_image_id_created_at_idx";
DROP INDEX "catalog"."instance_account_id_instance_type_created_at_idx";
