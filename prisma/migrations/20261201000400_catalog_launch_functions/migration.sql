-- Catalog: a launch and an instance's state change, each in one statement.
--
-- A launch used to be a dozen round trips inside one transaction (lock, replay check, count,
-- reservation, instances, outbox rows, the image's counter). `catalog.launch_reserve` does the
-- same work in the database in one call, under the same per-account advisory lock, so the
-- transaction is as short as its writes. The caller builds every row (ids, times, event payloads)
-- and passes them as JSON; the function decides and writes, and answers what it did.

CREATE FUNCTION "catalog"."launch_reserve"(
    p_account_id    VARCHAR,
    p_reservation   JSONB,   -- one catalog.reservation row, snake_case keys
    p_instances     JSONB,   -- an array of catalog.instance rows
    p_events        JSONB,   -- an array of {id, type, queue, payload, request_id}: outbox rows, in order
    p_running_limit INTEGER
) RETURNS TABLE ("outcome" TEXT, "live" BIGINT, "reservation_id" VARCHAR)
LANGUAGE plpgsql AS $$
DECLARE
    v_count    INTEGER := jsonb_array_length(p_instances);
    v_token    VARCHAR := p_reservation ->> 'client_token';
    v_existing VARCHAR;
    v_live     BIGINT;
    v_now      TIMESTAMPTZ;
BEGIN
    -- The same lock as every launch of the account takes (class 0x696e73, "ins").
    PERFORM pg_advisory_xact_lock(6909555, hashtext(p_account_id));

    -- A launch with the same id (the same request run twice) or client token committed first.
    SELECT r.id INTO v_existing
      FROM "catalog"."reservation" r
     WHERE r.id = p_reservation ->> 'id'
        OR (v_token IS NOT NULL AND r.account_id = p_account_id AND r.client_token = v_token)
     LIMIT 1;
    IF FOUND THEN
        RETURN QUERY SELECT 'replay'::TEXT, 0::BIGINT, v_existing;
        RETURN;
    END IF;

    SELECT count(*) INTO v_live
      FROM "catalog"."instance"
     WHERE account_id = p_account_id AND state IN ('pending', 'running');
    IF v_live + v_count > p_running_limit THEN
        RETURN QUERY SELECT 'limit'::TEXT, v_live, NULL::VARCHAR;
        RETURN;
    END IF;

    -- The image must still be available when the launch commits (a deregister may have won the
    -- race since the caller read it); its row lock is held only for the inserts below.
    UPDATE "catalog"."image"
       SET launch_count = launch_count + v_count, updated_at = now()
     WHERE id = p_reservation ->> 'image_id' AND state = 'available';
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'unavailable'::TEXT, v_live, NULL::VARCHAR;
        RETURN;
    END IF;

    INSERT INTO "catalog"."reservation"
    SELECT * FROM jsonb_populate_record(NULL::"catalog"."reservation", p_reservation);

    INSERT INTO "catalog"."instance"
    SELECT * FROM jsonb_populate_recordset(NULL::"catalog"."instance", p_instances);

    -- The relay delivers in (created_at, id) order: one microsecond apart keeps the given order.
    v_now := clock_timestamp();
    INSERT INTO "catalog"."outbox_event" (id, type, queue, payload, request_id, created_at, updated_at)
    SELECT (e ->> 'id')::UUID, e ->> 'type', e ->> 'queue', e -> 'payload', e ->> 'request_id',
           v_now + (n * INTERVAL '1 microsecond'), v_now
      FROM jsonb_array_elements(p_events) WITH ORDINALITY AS t(e, n);

    RETURN QUERY SELECT 'created'::TEXT, v_live, (p_reservation ->> 'id')::VARCHAR;
END
$$;

-- An instance's state change, written only if the row is still at the revision the caller read
-- (optimistic: no lock is held between reading and writing), together with its outbox rows.
-- Answers true when it wrote, false when someone changed the instance first.
CREATE FUNCTION "catalog"."instance_change"(
    p_instance JSONB,  -- the whole next version of the catalog.instance row, revision included
    p_expected INTEGER, -- the revision the change was computed from
    p_events   JSONB    -- outbox rows, in order, as for launch_reserve
) RETURNS BOOLEAN
LANGUAGE plpgsql AS $$
DECLARE
    v_next "catalog"."instance" := jsonb_populate_record(NULL::"catalog"."instance", p_instance);
    v_now  TIMESTAMPTZ;
BEGIN
    UPDATE "catalog"."instance"
       SET state = v_next.state,
           state_reason_code = v_next.state_reason_code,
           state_reason_message = v_next.state_reason_message,
           state_changed_at = v_next.state_changed_at,
           running_at = v_next.running_at,
           stopped_at = v_next.stopped_at,
           revision = v_next.revision,
           updated_at = v_next.updated_at
     WHERE id = v_next.id AND revision = p_expected;
    IF NOT FOUND THEN
        RETURN FALSE;
    END IF;

    v_now := clock_timestamp();
    INSERT INTO "catalog"."outbox_event" (id, type, queue, payload, request_id, created_at, updated_at)
    SELECT (e ->> 'id')::UUID, e ->> 'type', e ->> 'queue', e -> 'payload', e ->> 'request_id',
           v_now + (n * INTERVAL '1 microsecond'), v_now
      FROM jsonb_array_elements(p_events) WITH ORDINALITY AS t(e, n)
    ON CONFLICT (id) DO NOTHING;
    RETURN TRUE;
END
$$;
