-- The delivery ledger, written by the ledger (package controlplane/ledger)
-- from the ack log. Neither table is configuration: writes bump no
-- config_version and write no audit rows.

-- One row per event the data plane handled. The first ack of an event
-- creates it; later ones only make ingest_time earlier.
CREATE TABLE events (
    topic_id    text        NOT NULL,
    event_id    text        NOT NULL,
    tenant_id   text        NOT NULL,
    -- CloudEvents attributes without data: source, type, subject,
    -- datacontenttype, dataschema, extensions, partitionkey.
    attributes  jsonb       NOT NULL DEFAULT '{}',
    ingest_time timestamptz NOT NULL,
    event_time  timestamptz,
    PRIMARY KEY (topic_id, event_id)
);
-- ListEvents: a tenant's events, newest first.
CREATE INDEX events_tenant_ingest_idx ON events (tenant_id, ingest_time DESC, topic_id DESC, event_id DESC);

-- One row per ack: an outcome of a pipeline for an event (filtered, or a
-- dead letter before any attempt: destination '' and attempt 0) or one
-- attempt to one destination. outcome holds switchyard.v1.DeliveryStatus
-- numbers (2 retrying, 3 delivered, 4 dead-lettered, 5 filtered).
-- Partitioned by day of attempt_time; the ledger creates the partitions it
-- needs before writing.
CREATE TABLE deliveries (
    ack_id            text        NOT NULL,
    attempt_time      timestamptz NOT NULL,
    tenant_id         text        NOT NULL,
    topic_id          text        NOT NULL,
    event_id          text        NOT NULL,
    pipeline_id       text        NOT NULL,
    destination       text        NOT NULL DEFAULT '',
    attempt           integer     NOT NULL,
    outcome           smallint    NOT NULL,
    reason            text        NOT NULL DEFAULT '',
    http_status       integer     NOT NULL DEFAULT 0,
    latency_us        bigint      NOT NULL DEFAULT 0,
    error             text        NOT NULL DEFAULT '',
    node_id           text        NOT NULL DEFAULT '',
    next_attempt_time timestamptz,
    origin            text        NOT NULL,
    -- A unique index of a partitioned table must hold the partition key;
    -- the ledger also skips an ack id already stored on another day.
    PRIMARY KEY (ack_id, attempt_time)
) PARTITION BY RANGE (attempt_time);
CREATE INDEX deliveries_ack_id_idx ON deliveries (ack_id);
-- GetEvent: every attempt of an event.
CREATE INDEX deliveries_event_idx ON deliveries (topic_id, event_id, attempt_time);
-- ListDeadLetters: a pipeline's dead letters, newest first.
CREATE INDEX deliveries_dead_idx ON deliveries (pipeline_id, attempt_time DESC, ack_id DESC) WHERE outcome = 4;
-- ListEvents by pipeline.
CREATE INDEX deliveries_pipeline_idx ON deliveries (pipeline_id, topic_id, event_id);
