-- Outboxes: the relay reads the unpublished events in (created_at, id) order. The index on
-- (published_at, created_at) also holds every published event (they are kept for a week) and ends
-- at created_at, so the relay's query sorted its candidates; under a backlog it sorted the whole
-- backlog to take a batch. A partial index of the unpublished events in the relay's exact order
-- lets it read the first batch and stop. The old index stays for the purge of published events.

CREATE INDEX "outbox_event_unpublished_created_at_id_idx" ON "permission"."outbox_event"("created_at", "id") WHERE "published_at" IS NULL;
CREATE INDEX "outbox_event_unpublished_created_at_id_idx" ON "catalog"."outbox_event"("created_at", "id") WHERE "published_at" IS NULL;
CREATE INDEX "outbox_event_unpublished_created_at_id_idx" ON "billing"."outbox_event"("created_at", "id") WHERE "published_at" IS NULL;
CREATE INDEX "outbox_event_unpublished_created_at_id_idx" ON "bundling"."outbox_event"("created_at", "id") WHERE "published_at" IS NULL;
