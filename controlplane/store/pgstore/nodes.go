package pgstore

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchyard-dev/switchyard/controlplane/store"
	"github.com/switchyard-dev/switchyard/internal/ids"
	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
)

const nodeColumns = `id, region_id, hostname, version, ingest_url, config_version, register_time, heartbeat_time`

func scanNode(row pgx.Row) (*v1.Node, error) {
	var (
		n                   v1.Node
		registered, beating time.Time
	)
	if err := row.Scan(&n.Id, &n.RegionId, &n.Hostname, &n.Version, &n.IngestUrl, &n.ConfigVersion,
		&registered, &beating); err != nil {
		return nil, err
	}
	n.RegisterTime = ts(&registered)
	n.HeartbeatTime = ts(&beating)
	return &n, nil
}

// RegisterNode implements store.Store. A given n.Id is used only when the
// node is new; an existing (region, hostname) keeps its id.
func (s *Store) RegisterNode(ctx context.Context, n *v1.Node) (*v1.Node, error) {
	if n.GetRegionId() == "" || n.GetHostname() == "" {
		return nil, fmt.Errorf("register node: region id and hostname are required")
	}
	id, err := objectID(ids.Node, n.GetId())
	if err != nil {
		return nil, fmt.Errorf("register node: %w", err)
	}
	out, err := scanNode(s.pool.QueryRow(ctx, `INSERT INTO nodes
			(id, region_id, hostname, version, ingest_url, config_version, register_time, heartbeat_time)
		VALUES ($1, $2, $3, $4, $5, $6, now(), now())
		ON CONFLICT ON CONSTRAINT nodes_region_id_hostname_key DO UPDATE SET
			version = excluded.version, ingest_url = excluded.ingest_url,
			config_version = excluded.config_version,
			register_time = excluded.register_time, heartbeat_time = excluded.heartbeat_time
		RETURNING `+nodeColumns,
		id, n.GetRegionId(), n.GetHostname(), n.GetVersion(), n.GetIngestUrl(), n.GetConfigVersion()))
	if err != nil {
		return nil, translate(err, "register node", constraintErrors{
			"nodes_region_id_fkey": func() error {
				return fmt.Errorf("register node: region %s: %w", n.GetRegionId(), store.ErrNotFound)
			},
		})
	}
	return out, nil
}

// Heartbeat implements store.Store.
func (s *Store) Heartbeat(ctx context.Context, nodeID string, configVersion int64) error {
	tag, err := s.pool.Exec(ctx, `UPDATE nodes SET heartbeat_time = now(), config_version = $2 WHERE id = $1`,
		nodeID, configVersion)
	if err != nil {
		return fmt.Errorf("heartbeat of node %s: %w", nodeID, err)
	}
	if tag.RowsAffected() == 0 {
		return notFound("node", nodeID)
	}
	return nil
}

// ListNodes implements store.Store.
func (s *Store) ListNodes(ctx context.Context, regionID string) ([]*v1.Node, error) {
	return collect(ctx, s.pool, "nodes", "SELECT "+nodeColumns+` FROM nodes
		WHERE $1 = '' OR region_id = $1 ORDER BY id`, scanNode, regionID)
}
