package ledger

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-dev/switchyard/internal/acklog"
	"github.com/switchyard-dev/switchyard/internal/testenv/pgtest"
)

// agedAcks returns, for each age in days, one delivered ack of an event
// of tenant ten, attempted that many days before now.
func agedAcks(ten string, now time.Time, ages ...int) []*acklog.Ack {
	var out []*acklog.Ack
	for _, age := range ages {
		at := now.AddDate(0, 0, -age)
		origin := fmt.Sprintf("sy.%s.top_%s/0/%d", ten, ten, age)
		out = append(out, &acklog.Ack{
			V: acklog.Version, ID: acklog.ID(origin, "pip_"+ten, "hook", 1),
			EventID: fmt.Sprintf("evt_%d", age), TenantID: ten, TopicID: "top_" + ten,
			PipelineID: "pip_" + ten, Destination: "hook", Origin: origin, NodeID: "nod_a",
			Attempt: 1, Outcome: acklog.Delivered, HTTPStatus: 200, Time: at, IngestTime: at.Add(-time.Second),
			Event: &acklog.Attributes{Source: "/s", Type: "t"},
		})
	}
	return out
}

// partitionDays returns the days of the deliveries partitions, as YYYYMMDD.
func partitionDays(t *testing.T, pool *pgxpool.Pool) []string {
	t.Helper()
	rows, err := pool.Query(t.Context(), `SELECT substr(c.relname, 12) FROM pg_inherits i
		JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'deliveries'::regclass ORDER BY 1`)
	require.NoError(t, err)
	defer rows.Close()
	var out []string
	for rows.Next() {
		var d string
		require.NoError(t, rows.Scan(&d))
		out = append(out, d)
	}
	require.NoError(t, rows.Err())
	return out
}

func TestPruneAppliesRetention(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	pool := newPool(t, pgtest.NewDB(t, migrated))
	l, err := New(Config{Pool: pool, Regions: fakeRegions{}, Logger: testLogger()})
	require.NoError(t, err)
	// ten_a keeps 7 days and no payloads, ten_b 60 days, ten_c the default
	// (30 days).
	_, err = pool.Exec(ctx, `INSERT INTO tenants (id, name, retention_days, retention_drop_payloads) VALUES
		('ten_a', 'a', 7, true), ('ten_b', 'b', 60, false), ('ten_c', 'c', NULL, NULL)`)
	require.NoError(t, err)

	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	ages := []int{1, 10, 45, 90, 200}
	// Written one age at a time, as old acks would come: the writer makes
	// each day's partition (and the next days') on demand.
	for _, ten := range []string{"ten_a", "ten_b", "ten_c"} {
		for _, a := range agedAcks(ten, now, ages...) {
			n, err := l.writer.Write(ctx, []*acklog.Ack{a})
			require.NoError(t, err)
			require.EqualValues(t, 1, n)
		}
	}
	require.Equal(t, 15, count(t, pool, `SELECT count(*) FROM deliveries`))
	day := func(age int) string { return now.AddDate(0, 0, -age).Format("20060102") }
	require.Contains(t, partitionDays(t, pool), day(200))
	require.Contains(t, partitionDays(t, pool), day(90))

	p, err := l.Prune(ctx, now)
	require.NoError(t, err)

	// (a) Partitions of days wholly older than 60 days are gone (200 and
	// 90 days old, and the days made ahead of them); the rest stay.
	cutoff := now.AddDate(0, 0, -60).Format("20060102")
	left := partitionDays(t, pool)
	for _, d := range left {
		require.GreaterOrEqual(t, d, now.AddDate(0, 0, -61).Format("20060102"), "partition %s older than the largest retention", d)
	}
	require.Contains(t, left, day(45))
	require.Contains(t, left, day(1))
	require.NotContains(t, left, day(90))
	require.NotContains(t, left, day(200))
	require.Len(t, p.Partitions, 6, "200 and 90 days old, each with 2 days ahead: %v", p.Partitions)
	for _, d := range p.Partitions {
		require.Less(t, d, cutoff[:4]+"-"+cutoff[4:6]+"-"+cutoff[6:])
	}

	// (b) Each tenant keeps its own days.
	kept := func(ten string) []string {
		rows, err := pool.Query(ctx, `SELECT event_id FROM deliveries WHERE tenant_id = $1 ORDER BY attempt_time DESC`, ten)
		require.NoError(t, err)
		defer rows.Close()
		var ids []string
		for rows.Next() {
			var id string
			require.NoError(t, rows.Scan(&id))
			ids = append(ids, id)
		}
		return ids
	}
	require.Equal(t, []string{"evt_1"}, kept("ten_a"))
	require.Equal(t, []string{"evt_1", "evt_10", "evt_45"}, kept("ten_b"))
	require.Equal(t, []string{"evt_1", "evt_10"}, kept("ten_c"))
	require.EqualValues(t, 3, p.Deliveries, "ten_a's 10 and 45 days old, ten_c's 45 (the rest went with their partitions)")
	// Events go with their last delivery.
	require.Equal(t, 6, count(t, pool, `SELECT count(*) FROM events`))
	require.Zero(t, count(t, pool, `SELECT count(*) FROM events e WHERE NOT EXISTS
		(SELECT 1 FROM deliveries d WHERE d.topic_id = e.topic_id AND d.event_id = e.event_id)`))
	require.EqualValues(t, 9, p.Events)
	// (c) ten_a drops payloads: its events hold attributes only.
	require.Equal(t, 1, count(t, pool, `SELECT count(*) FROM events WHERE tenant_id = 'ten_a' AND attributes = '{"source":"/s","type":"t"}'::jsonb`))

	// A second pass finds nothing to do.
	p, err = l.Prune(ctx, now)
	require.NoError(t, err)
	require.Equal(t, Pruned{}, p)

	// An old ack coming late goes to a partition made again (the writer
	// forgot the dropped one), and the next pass drops it.
	late := agedAcks("ten_b", now, 90)
	late[0].ID = "late"
	n, err := l.writer.Write(ctx, late)
	require.NoError(t, err)
	require.EqualValues(t, 1, n)
	p, err = l.Prune(ctx, now)
	require.NoError(t, err)
	require.Contains(t, p.Partitions, now.AddDate(0, 0, -90).Format(time.DateOnly))
	require.Zero(t, count(t, pool, `SELECT count(*) FROM deliveries WHERE ack_id = 'late'`))
}

func TestRunRetentionPrunesInTheBackground(t *testing.T) {
	t.Parallel()
	pool := newPool(t, pgtest.NewDB(t, migrated))
	l, err := New(Config{Pool: pool, Regions: fakeRegions{}, Logger: testLogger()})
	require.NoError(t, err)
	// No tenant: the default retention applies to partitions.
	now := time.Now().UTC()
	_, err = l.writer.Write(t.Context(), agedAcks("ten_a", now, 1, DefaultRetentionDays+5))
	require.NoError(t, err)
	old := now.AddDate(0, 0, -DefaultRetentionDays-5).Format("20060102")
	require.Contains(t, partitionDays(t, pool), old)

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- l.RunRetention(ctx, time.Hour) }()
	deadline := time.Now().Add(10 * time.Second)
	for slices.Contains(partitionDays(t, pool), old) {
		require.True(t, time.Now().Before(deadline), "the old partition is still there")
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	require.NoError(t, <-done)
	require.Equal(t, 1, count(t, pool, `SELECT count(*) FROM deliveries`))
}
