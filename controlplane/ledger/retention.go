package ledger

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// DefaultRetentionDays is how many days the ledger keeps a tenant's history
// when the tenant sets no retention policy (or sets 0 days).
const DefaultRetentionDays = 30

// DefaultRetentionInterval is how often RunRetention prunes the ledger.
const DefaultRetentionInterval = time.Hour

// Pruned reports what one pass of Prune removed.
type Pruned struct {
	// Partitions are the deliveries partitions dropped, by day
	// (YYYY-MM-DD), oldest first.
	Partitions []string
	// Deliveries and Events are the rows deleted one by one (rows of
	// dropped partitions are not counted).
	Deliveries, Events int64
	// Payloads are the event payloads purged (tenants that drop payloads,
	// or that no longer exist).
	Payloads int64
}

// RunRetention prunes the ledger (Prune) now and then every interval
// (DefaultRetentionInterval when interval is not positive) until ctx ends,
// and returns nil. A failed pass is logged and tried again at the next
// tick.
func (l *Ledger) RunRetention(ctx context.Context, interval time.Duration) error {
	if interval <= 0 {
		interval = DefaultRetentionInterval
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		p, err := l.Prune(ctx, time.Now())
		switch {
		case err != nil && ctx.Err() == nil:
			l.cfg.Logger.Warn("ledger: retention pass failed; trying again later", "in", interval, "err", err)
		case err == nil && (len(p.Partitions) > 0 || p.Deliveries > 0 || p.Events > 0 || p.Payloads > 0):
			l.cfg.Logger.Info("ledger: retention pass", "partitions_dropped", p.Partitions,
				"deliveries_deleted", p.Deliveries, "events_deleted", p.Events, "payloads_purged", p.Payloads)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// Prune applies the tenants' retention policies (v1.RetentionPolicy) to the
// ledger as of now:
//
//   - the deliveries partitions of days wholly older than the largest
//     retention of any tenant are dropped;
//   - a tenant's delivery rows older than its own retention days are
//     deleted, and so are its events ingested before then that no delivery
//     row refers to any more;
//   - events no delivery row refers to and ingested before the largest
//     retention are deleted, whoever their tenant (a deleted tenant's
//     history goes with its partitions).
//
// A tenant without a policy, or with 0 days, keeps DefaultRetentionDays;
// with no tenant at all the largest retention is DefaultRetentionDays.
//
// It also purges the payloads of tenants that drop payloads
// (drop_payloads), and of tenants that no longer exist. Turning
// drop_payloads on purges at once (the tenant update does it in its
// transaction); this is the backstop.
func (l *Ledger) Prune(ctx context.Context, now time.Time) (Pruned, error) {
	var out Pruned
	purged, err := PurgePayloads(ctx, l.cfg.Pool)
	if err != nil {
		return out, err
	}
	out.Payloads = purged
	rows, err := l.cfg.Pool.Query(ctx, `SELECT id, COALESCE(retention_days, 0) FROM tenants`)
	if err != nil {
		return out, fmt.Errorf("ledger: reading retention policies: %w", err)
	}
	byDays := make(map[int][]string) // tenant ids by retention days
	largest := 0
	for rows.Next() {
		var (
			id   string
			days int64
		)
		if err := rows.Scan(&id, &days); err != nil {
			rows.Close()
			return out, fmt.Errorf("ledger: reading retention policies: %w", err)
		}
		d := retentionDays(days)
		byDays[d] = append(byDays[d], id)
		largest = max(largest, d)
	}
	if err := rows.Err(); err != nil {
		return out, fmt.Errorf("ledger: reading retention policies: %w", err)
	}
	if largest == 0 {
		largest = DefaultRetentionDays
	}
	now = now.UTC()

	// (a) Whole days older than the largest retention.
	cutoff := now.AddDate(0, 0, -largest)
	if out.Partitions, err = l.dropPartitions(ctx, cutoff); err != nil {
		return out, err
	}

	// (b) Each tenant's own retention, fewest days first.
	days := make([]int, 0, len(byDays))
	for d := range byDays {
		days = append(days, d)
	}
	slices.Sort(days)
	for _, d := range days {
		ids := byDays[d]
		before := now.AddDate(0, 0, -d)
		tag, err := l.cfg.Pool.Exec(ctx, `DELETE FROM deliveries WHERE tenant_id = ANY($1) AND attempt_time < $2`, ids, before)
		if err != nil {
			return out, fmt.Errorf("ledger: deleting deliveries older than %d days: %w", d, err)
		}
		out.Deliveries += tag.RowsAffected()
		n, err := l.deleteOrphanEvents(ctx, `e.tenant_id = ANY($1) AND e.ingest_time < $2`, ids, before)
		if err != nil {
			return out, err
		}
		out.Events += n
	}
	n, err := l.deleteOrphanEvents(ctx, `e.ingest_time < $1`, cutoff)
	if err != nil {
		return out, err
	}
	out.Events += n
	return out, nil
}

// PurgePayloads removes the stored payloads of the events of every tenant
// that drops payloads (RetentionPolicy.drop_payloads) or that the tenants
// table no longer holds, and returns how many it removed.
func PurgePayloads(ctx context.Context, db interface {
	Exec(context.Context, string, ...any) (pgconn.CommandTag, error)
}) (int64, error) {
	tag, err := db.Exec(ctx, `UPDATE events e SET data = NULL WHERE e.data IS NOT NULL
		AND NOT EXISTS (SELECT 1 FROM tenants t WHERE t.id = e.tenant_id AND t.retention_drop_payloads IS NOT TRUE)`)
	if err != nil {
		return 0, fmt.Errorf("ledger: purging payloads: %w", err)
	}
	return tag.RowsAffected(), nil
}

// retentionDays is the retention of a tenant's retention_days column.
func retentionDays(days int64) int {
	if days <= 0 {
		return DefaultRetentionDays
	}
	return int(min(days, 100*366))
}

// deleteOrphanEvents deletes the events matching where (over alias e) that
// no delivery row refers to.
func (l *Ledger) deleteOrphanEvents(ctx context.Context, where string, args ...any) (int64, error) {
	tag, err := l.cfg.Pool.Exec(ctx, `DELETE FROM events e WHERE `+where+`
		AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.topic_id = e.topic_id AND d.event_id = e.event_id)`, args...)
	if err != nil {
		return 0, fmt.Errorf("ledger: deleting events: %w", err)
	}
	return tag.RowsAffected(), nil
}

// dropPartitions drops the deliveries partitions whose day ends at or
// before cutoff and returns their days, oldest first.
func (l *Ledger) dropPartitions(ctx context.Context, cutoff time.Time) ([]string, error) {
	rows, err := l.cfg.Pool.Query(ctx, `SELECT c.relname FROM pg_inherits i
		JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = 'deliveries'::regclass`)
	if err != nil {
		return nil, fmt.Errorf("ledger: listing deliveries partitions: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("ledger: listing deliveries partitions: %w", err)
	}
	slices.Sort(names)
	var dropped []string
	for _, name := range names {
		start, err := time.Parse("20060102", strings.TrimPrefix(name, "deliveries_"))
		if err != nil || !strings.HasPrefix(name, "deliveries_") {
			continue // not one of the writer's partitions
		}
		if start.AddDate(0, 0, 1).After(cutoff) {
			continue
		}
		if _, err := l.cfg.Pool.Exec(ctx, `DROP TABLE IF EXISTS `+pgx.Identifier{name}.Sanitize()); err != nil {
			return dropped, fmt.Errorf("ledger: dropping partition %s: %w", name, err)
		}
		day := start.Format(time.DateOnly)
		l.writer.forget(day)
		dropped = append(dropped, day)
	}
	return dropped, nil
}
