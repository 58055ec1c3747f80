package pgstore

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
)

// RecheckInterval is how often WaitConfigVersion reads the configuration
// version while it waits for a notification, so a notification that never
// arrives (e.g. sent while the listening connection was being set up by
// another server) only delays a change.
const RecheckInterval = 2 * time.Second

// Snapshot implements store.Store. It reads in one read-only REPEATABLE
// READ transaction, so the version matches the contents.
func (s *Store) Snapshot(ctx context.Context) (*v1.ConfigSnapshot, error) {
	var snap *v1.ConfigSnapshot
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly},
		func(tx pgx.Tx) error {
			var err error
			snap, err = readSnapshot(ctx, tx)
			return err
		})
	if err != nil {
		return nil, fmt.Errorf("read config snapshot: %w", err)
	}
	return snap, nil
}

// readSnapshot reads every part of a snapshot with q.
func readSnapshot(ctx context.Context, q querier) (*v1.ConfigSnapshot, error) {
	snap := &v1.ConfigSnapshot{}
	var now time.Time
	if err := q.QueryRow(ctx, "SELECT version, now() FROM config_version").Scan(&snap.Version, &now); err != nil {
		return nil, fmt.Errorf("version: %w", err)
	}
	snap.CreateTime = ts(&now)

	var err error
	if snap.Regions, err = collect(ctx, q, "regions", "SELECT "+regionColumns+" FROM regions ORDER BY id", scanRegion); err != nil {
		return nil, err
	}
	if snap.Tenants, err = collect(ctx, q, "tenants", "SELECT "+tenantColumns+" FROM tenants ORDER BY id", scanTenant); err != nil {
		return nil, err
	}
	if snap.Topics, err = collect(ctx, q, "topics", "SELECT "+topicColumns+" FROM topics ORDER BY id", scanTopic); err != nil {
		return nil, err
	}
	if snap.Pipelines, err = collect(ctx, q, "pipelines", "SELECT "+pipelineColumns+" FROM pipelines ORDER BY id", scanPipeline); err != nil {
		return nil, err
	}
	if err := attachSecrets(ctx, q, snap.Pipelines...); err != nil {
		return nil, err
	}
	if snap.ApiKeys, err = collect(ctx, q, "API keys", `SELECT id, tenant_id, role, topic_ids, secret_hash, expire_time
		FROM api_keys WHERE revoke_time IS NULL AND (expire_time IS NULL OR expire_time > now())
		ORDER BY id`, scanCredential); err != nil {
		return nil, err
	}

	pipelineIDs := make([]string, len(snap.Pipelines))
	for i, p := range snap.Pipelines {
		pipelineIDs[i] = p.GetId()
	}
	secrets, err := loadSecrets(ctx, q, pipelineIDs)
	if err != nil {
		return nil, err
	}
	// loadSecrets orders by pipeline, destination, newest first.
	var cur *v1.SigningSecrets
	for _, sec := range secrets {
		if cur == nil || cur.PipelineId != sec.PipelineID || cur.Destination != sec.Destination {
			cur = &v1.SigningSecrets{PipelineId: sec.PipelineID, Destination: sec.Destination}
			snap.SigningSecrets = append(snap.SigningSecrets, cur)
		}
		cur.Secrets = append(cur.Secrets, sec.Secret)
	}
	return snap, nil
}

// scanCredential scans the columns of an API key a node checks keys with.
func scanCredential(row pgx.Row) (*v1.ApiKeyCredential, error) {
	var (
		c       v1.ApiKeyCredential
		role    int16
		expires *time.Time
	)
	if err := row.Scan(&c.Id, &c.TenantId, &role, &c.TopicIds, &c.SecretHash, &expires); err != nil {
		return nil, err
	}
	if len(c.TopicIds) == 0 {
		c.TopicIds = nil
	}
	c.Role = v1.ApiKeyRole(role)
	c.ExpireTime = ts(expires)
	return &c, nil
}

// WaitConfigVersion implements store.Store. It holds one connection of the
// pool while it waits, listening on NotifyChannel, and reads the version
// again every RecheckInterval in case a notification was missed. Callers
// that serve many watchers should share one waiter.
func (s *Store) WaitConfigVersion(ctx context.Context, after int64) (v int64, err error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		return 0, fmt.Errorf("wait for config version: acquire connection: %w", err)
	}
	defer releaseListener(ctx, conn)

	if _, err := conn.Exec(ctx, "LISTEN "+NotifyChannel); err != nil {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		return 0, fmt.Errorf("wait for config version: listen: %w", err)
	}
	for {
		// Read after LISTEN: a change committed from here on is notified.
		if err := conn.QueryRow(ctx, "SELECT version FROM config_version").Scan(&v); err != nil {
			if ctx.Err() != nil {
				return 0, ctx.Err()
			}
			return 0, fmt.Errorf("wait for config version: read version: %w", err)
		}
		if v > after {
			return v, nil
		}
		if v, ok, err := waitNotification(ctx, conn.Conn(), after); err != nil || ok {
			return v, err
		}
	}
}

// waitNotification waits up to RecheckInterval for notifications on conn.
// It returns ok with the version of a notification newer than after, or not
// ok when the interval passed.
func waitNotification(ctx context.Context, conn *pgx.Conn, after int64) (int64, bool, error) {
	wctx, cancel := context.WithTimeout(ctx, RecheckInterval)
	defer cancel()
	for {
		n, err := conn.WaitForNotification(wctx)
		switch {
		case ctx.Err() != nil:
			return 0, false, ctx.Err()
		case wctx.Err() != nil:
			return 0, false, nil
		case err != nil:
			return 0, false, fmt.Errorf("wait for config version: %w", err)
		}
		if n.Channel != NotifyChannel {
			continue
		}
		if v, perr := strconv.ParseInt(n.Payload, 10, 64); perr == nil && v > after {
			return v, true, nil
		}
	}
}

// releaseListener stops listening on conn and returns it to the pool, or
// closes it when it cannot be cleaned (so no LISTEN leaks to other users).
func releaseListener(ctx context.Context, conn *pgxpool.Conn) {
	if conn.Conn().IsClosed() {
		conn.Release()
		return
	}
	uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if _, err := conn.Exec(uctx, "UNLISTEN *"); err != nil {
		c := conn.Hijack()
		_ = c.Close(uctx) // best effort: the connection is being thrown away
		return
	}
	// Drop notifications received before UNLISTEN took effect: with a done
	// context WaitForNotification returns only what is already buffered.
	done, dcancel := context.WithCancel(uctx)
	dcancel()
	for {
		if _, err := conn.Conn().WaitForNotification(done); err != nil {
			break
		}
	}
	conn.Release()
}
