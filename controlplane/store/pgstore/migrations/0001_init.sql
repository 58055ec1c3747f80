-- Initial schema of the control plane.

-- config_version holds the single configuration version that every change
-- bumps in its own transaction; data-plane nodes watch it.
CREATE TABLE config_version (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    version   bigint  NOT NULL
);
INSERT INTO config_version (singleton, version) VALUES (true, 0);

CREATE TABLE regions (
    id                 text        PRIMARY KEY,
    name               text        NOT NULL,
    display_name       text        NOT NULL DEFAULT '',
    kafka_brokers      text[]      NOT NULL DEFAULT '{}',
    status             smallint    NOT NULL,
    failover_region_id text,
    version            bigint      NOT NULL DEFAULT 1,
    create_time        timestamptz NOT NULL DEFAULT now(),
    update_time        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT regions_name_key UNIQUE (name),
    CONSTRAINT regions_failover_region_id_fkey FOREIGN KEY (failover_region_id) REFERENCES regions (id),
    CONSTRAINT regions_failover_not_self CHECK (failover_region_id <> id)
);
CREATE INDEX regions_failover_region_id_idx ON regions (failover_region_id);

CREATE TABLE tenants (
    id                      text        PRIMARY KEY,
    name                    text        NOT NULL,
    display_name            text        NOT NULL DEFAULT '',
    -- Quotas and retention: all NULL when the message is unset.
    quota_events_per_second bigint,
    quota_burst             bigint,
    quota_max_event_bytes   bigint,
    retention_days          bigint,
    retention_drop_payloads boolean,
    default_region_id       text,
    version                 bigint      NOT NULL DEFAULT 1,
    create_time             timestamptz NOT NULL DEFAULT now(),
    update_time             timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT tenants_name_key UNIQUE (name),
    CONSTRAINT tenants_default_region_id_fkey FOREIGN KEY (default_region_id) REFERENCES regions (id),
    CONSTRAINT tenants_quotas_all_or_none CHECK (
        num_nulls(quota_events_per_second, quota_burst, quota_max_event_bytes) IN (0, 3)),
    CONSTRAINT tenants_retention_all_or_none CHECK (
        num_nulls(retention_days, retention_drop_payloads) IN (0, 2))
);
CREATE INDEX tenants_default_region_id_idx ON tenants (default_region_id);

CREATE TABLE topics (
    id           text        PRIMARY KEY,
    tenant_id    text        NOT NULL,
    name         text        NOT NULL,
    description  text        NOT NULL DEFAULT '',
    region_id    text,
    partitions   integer     NOT NULL CHECK (partitions > 0),
    retention_ns bigint,
    version      bigint      NOT NULL DEFAULT 1,
    create_time  timestamptz NOT NULL DEFAULT now(),
    update_time  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT topics_tenant_id_name_key UNIQUE (tenant_id, name),
    CONSTRAINT topics_id_tenant_id_key UNIQUE (id, tenant_id),
    CONSTRAINT topics_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES tenants (id),
    CONSTRAINT topics_region_id_fkey FOREIGN KEY (region_id) REFERENCES regions (id)
);
CREATE INDEX topics_region_id_idx ON topics (region_id);

CREATE TABLE pipelines (
    id          text        PRIMARY KEY,
    tenant_id   text        NOT NULL,
    topic_id    text        NOT NULL,
    name        text        NOT NULL,
    paused      boolean     NOT NULL DEFAULT false,
    -- spec is the pipeline's configuration as protojson: description,
    -- filter, transform, destinations (without secrets), retry and
    -- dead-letter policies, ordering.
    spec        jsonb       NOT NULL,
    version     bigint      NOT NULL DEFAULT 1,
    create_time timestamptz NOT NULL DEFAULT now(),
    update_time timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pipelines_tenant_id_name_key UNIQUE (tenant_id, name),
    CONSTRAINT pipelines_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES tenants (id),
    -- The topic must belong to the pipeline's tenant.
    CONSTRAINT pipelines_topic_id_fkey FOREIGN KEY (topic_id, tenant_id) REFERENCES topics (id, tenant_id)
);
CREATE INDEX pipelines_topic_id_idx ON pipelines (topic_id, id);
CREATE INDEX pipelines_paused_idx ON pipelines (paused) WHERE paused;

CREATE TABLE webhook_secrets (
    id          text        PRIMARY KEY,
    pipeline_id text        NOT NULL,
    destination text        NOT NULL,
    secret      text        NOT NULL,
    create_time timestamptz NOT NULL,
    -- NULL for the current secret.
    expire_time timestamptz,
    CONSTRAINT webhook_secrets_pipeline_id_fkey FOREIGN KEY (pipeline_id) REFERENCES pipelines (id) ON DELETE CASCADE
);
CREATE INDEX webhook_secrets_pipeline_idx ON webhook_secrets (pipeline_id, destination, create_time DESC);

CREATE TABLE api_keys (
    id          text        PRIMARY KEY,
    tenant_id   text        NOT NULL,
    name        text        NOT NULL,
    description text        NOT NULL DEFAULT '',
    role        smallint    NOT NULL,
    topic_ids   text[]      NOT NULL DEFAULT '{}',
    prefix      text        NOT NULL DEFAULT '',
    secret_hash bytea       NOT NULL,
    expire_time timestamptz,
    revoke_time timestamptz,
    version     bigint      NOT NULL DEFAULT 1,
    create_time timestamptz NOT NULL DEFAULT now(),
    update_time timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT api_keys_tenant_id_name_key UNIQUE (tenant_id, name),
    CONSTRAINT api_keys_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES tenants (id)
);

CREATE TABLE audit_log (
    id            bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    time          timestamptz NOT NULL DEFAULT now(),
    actor_kind    text        NOT NULL,
    actor_id      text        NOT NULL,
    -- No foreign key: the log outlives what it describes.
    tenant_id     text,
    action        text        NOT NULL,
    resource_type text        NOT NULL,
    resource_id   text        NOT NULL,
    detail        jsonb       NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_tenant_id_idx ON audit_log (tenant_id, id);
CREATE INDEX audit_log_resource_id_idx ON audit_log (resource_id, id);
