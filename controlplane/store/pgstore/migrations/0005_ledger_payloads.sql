-- Event payloads in the ledger, and where a redriven attempt went.

-- The payload as published, from the first ack that carries it; NULL when
-- the tenant drops payloads (RetentionPolicy.drop_payloads), when no ack
-- carried it, or once purged. Never rewritten once set.
ALTER TABLE events ADD COLUMN data bytea;
-- Purges: the events of a tenant that still hold a payload.
CREATE INDEX events_payload_idx ON events (tenant_id) WHERE data IS NOT NULL;

-- The webhook URL or Kafka topic of an attempt a redrive sent to a
-- destination override; '' when it went to the pipeline's destination.
ALTER TABLE deliveries ADD COLUMN target text NOT NULL DEFAULT '';
