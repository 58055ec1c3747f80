package ledger

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-dev/switchyard/internal/testenv/pgtest"
)

// BenchmarkWrite measures the ledger's write throughput (batches of 1,000
// acks: COPY into staging, events upsert, deliveries insert with the
// duplicate check) against a raw COPY of the same rows into a plain table
// without indexes, in the same run. It reports both in rows/s and their
// ratio (ledger/copy).
func BenchmarkWrite(b *testing.B) {
	ctx := context.Background()
	pool := newPool(b, pgtest.NewDB(b, migrated))
	_, err := pool.Exec(ctx, `CREATE TABLE raw_copy (`+rawColumns+`)`)
	require.NoError(b, err)
	w := NewWriter(pool)
	const batch = 1000
	t0 := time.Now().UTC()
	var ledgerTime, copyTime time.Duration
	rowsDone := 0
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		acks := makeAcks("top_"+strconv.Itoa(i), batch/2, t0)
		start := time.Now()
		n, err := w.Write(ctx, acks)
		ledgerTime += time.Since(start)
		require.NoError(b, err)
		require.Equal(b, int64(batch), n)

		rows := make([][]any, len(acks))
		for j, a := range acks {
			rows[j], err = row(a)
			require.NoError(b, err)
		}
		start = time.Now()
		_, err = pool.CopyFrom(ctx, pgx.Identifier{"raw_copy"}, stagingColumns, pgx.CopyFromRows(rows))
		copyTime += time.Since(start)
		require.NoError(b, err)
		rowsDone += batch
	}
	ledgerRate := float64(rowsDone) / ledgerTime.Seconds()
	copyRate := float64(rowsDone) / copyTime.Seconds()
	b.ReportMetric(ledgerRate, "ledger_rows/s")
	b.ReportMetric(copyRate, "copy_rows/s")
	b.ReportMetric(ledgerRate/copyRate, "ledger/copy")
}

// rawColumns is the plain table of the baseline: the staging columns.
const rawColumns = `ack_id text, attempt_time timestamptz, tenant_id text, topic_id text, event_id text,
    pipeline_id text, destination text, attempt integer, outcome smallint, reason text,
    http_status integer, latency_us bigint, error text, node_id text,
    next_attempt_time timestamptz, origin text, attributes jsonb, ingest_time timestamptz,
    event_time timestamptz, data bytea, target text`
