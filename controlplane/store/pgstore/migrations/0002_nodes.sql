-- Data-plane nodes. A node is identified by its region and host name: the
-- same host registering again keeps its id. Nodes are not configuration:
-- changing them neither bumps config_version nor writes audit rows.
CREATE TABLE nodes (
    id             text        PRIMARY KEY,
    region_id      text        NOT NULL,
    hostname       text        NOT NULL,
    version        text        NOT NULL DEFAULT '',
    ingest_url     text        NOT NULL DEFAULT '',
    -- The configuration version the node last reported running.
    config_version bigint      NOT NULL DEFAULT 0,
    register_time  timestamptz NOT NULL DEFAULT now(),
    heartbeat_time timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT nodes_region_id_hostname_key UNIQUE (region_id, hostname),
    -- Nodes of a deleted region go with it.
    CONSTRAINT nodes_region_id_fkey FOREIGN KEY (region_id) REFERENCES regions (id) ON DELETE CASCADE
);
