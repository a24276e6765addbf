-- The client's own X-Request-Id beside the platform's request id (the gateway's, in request_id).
ALTER TABLE "permission"."audit_event" ADD COLUMN "client_request_id" VARCHAR(64);
