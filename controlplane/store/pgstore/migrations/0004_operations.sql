-- Long-running operations (dead-letter redrives and replays) started by
-- EventService. Operations are not configuration: changing them neither
-- bumps config_version nor writes audit rows.
CREATE TABLE operations (
    id          text        PRIMARY KEY,
    tenant_id   text        NOT NULL,
    -- switchyard.v1.OperationKind and OperationState numbers.
    kind        smallint    NOT NULL,
    state       smallint    NOT NULL,
    pipeline_id text        NOT NULL,
    total       bigint      NOT NULL DEFAULT 0,
    done        bigint      NOT NULL DEFAULT 0,
    error       text        NOT NULL DEFAULT '',
    create_time timestamptz NOT NULL DEFAULT now(),
    end_time    timestamptz
);
CREATE INDEX operations_tenant_idx ON operations (tenant_id, id);
