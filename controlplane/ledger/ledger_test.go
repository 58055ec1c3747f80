package ledger

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/switchyard-dev/switchyard/controlplane/store"
	"github.com/switchyard-dev/switchyard/controlplane/store/pgstore"
	"github.com/switchyard-dev/switchyard/internal/acklog"
	"github.com/switchyard-dev/switchyard/internal/kafkaname"
	"github.com/switchyard-dev/switchyard/internal/testenv/kafkatest"
	"github.com/switchyard-dev/switchyard/internal/testenv/pgtest"
	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// migrated is a database with the control plane's schema.
var migrated = pgtest.Template{Name: "controlplane", Setup: pgstore.Migrate}

func newPool(t testing.TB, conn string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), conn)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool
}

// makeAcks returns, for n events of topic top, a retry then a delivery,
// the first at t0 and one event a millisecond apart.
func makeAcks(top string, n int, t0 time.Time) []*acklog.Ack {
	var out []*acklog.Ack
	for i := range n {
		at := t0.Add(time.Duration(i) * time.Millisecond)
		origin := "sy.ten_a." + top + "/0/" + strconv.Itoa(i)
		base := acklog.Ack{
			V: acklog.Version, EventID: fmt.Sprintf("evt_%05d", i), TenantID: "ten_a", TopicID: top,
			PipelineID: "pip_a", Destination: "hook", Origin: origin, NodeID: "nod_a",
			IngestTime: at.Add(-time.Second), EventTime: at.Add(-2 * time.Second),
			Event: &acklog.Attributes{Source: "/s", Type: "order.created"},
		}
		r := base
		r.Attempt, r.Outcome, r.HTTPStatus, r.Error, r.Time = 1, acklog.Retrying, 503, "503 Service Unavailable", at
		r.NextAttemptTime = at.Add(5 * time.Second)
		r.Latency = 3 * time.Millisecond
		d := base
		d.Attempt, d.Outcome, d.HTTPStatus, d.Time = 2, acklog.Delivered, 200, at.Add(5*time.Second)
		d.IngestTime = time.Time{}
		r.ID = acklog.ID(origin, "pip_a", "hook", 1)
		d.ID = acklog.ID(origin, "pip_a", "hook", 2)
		out = append(out, &r, &d)
	}
	return out
}

func count(t testing.TB, pool *pgxpool.Pool, sql string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, pool.QueryRow(context.Background(), sql, args...).Scan(&n))
	return n
}

func TestWriterIsIdempotent(t *testing.T) {
	t.Parallel()
	pool := newPool(t, pgtest.NewDB(t, migrated))
	w := NewWriter(pool)
	// Across midnight, so two day partitions are written.
	t0 := time.Date(2026, 12, 3, 23, 59, 59, 900e6, time.UTC)
	acks := makeAcks("top_a", 200, t0)
	acks = append(acks, &acklog.Ack{V: 1, ID: "x", PipelineID: "pip_a", Outcome: acklog.DeadLettered,
		TopicID: "top_a", Origin: "o/0/1", Time: t0}) // no event id: skipped
	n, err := w.Write(t.Context(), acks)
	require.NoError(t, err)
	require.Equal(t, int64(400), n)
	// The same acks again, alone and mixed with new ones: no duplicate.
	n, err = w.Write(t.Context(), acks)
	require.NoError(t, err)
	require.Zero(t, n)
	more := makeAcks("top_b", 10, t0)
	n, err = w.Write(t.Context(), append(append([]*acklog.Ack{}, acks[:50]...), append(more, more...)...))
	require.NoError(t, err)
	require.Equal(t, int64(20), n)
	// An ack id written again with another time (a node that handled the
	// record again) is still stored once.
	again := *acks[0]
	again.Time = again.Time.Add(48 * time.Hour)
	n, err = w.Write(t.Context(), []*acklog.Ack{&again})
	require.NoError(t, err)
	require.Zero(t, n)

	require.Equal(t, 420, count(t, pool, "SELECT count(*) FROM deliveries"))
	require.Equal(t, 420, count(t, pool, "SELECT count(DISTINCT ack_id) FROM deliveries"))
	require.Equal(t, 210, count(t, pool, "SELECT count(*) FROM events"))
	// Day partitions, plus the ones made ahead.
	require.GreaterOrEqual(t, count(t, pool, `SELECT count(*) FROM pg_inherits WHERE inhparent = 'deliveries'::regclass`), 4)
	require.Positive(t, count(t, pool, "SELECT count(*) FROM deliveries_20261203"))
	require.Positive(t, count(t, pool, "SELECT count(*) FROM deliveries_20261204"))

	// The row holds the ack.
	var (
		outcome, status int
		latency         int64
		errText, attrs  string
		next            *time.Time
		ingest          time.Time
	)
	require.NoError(t, pool.QueryRow(t.Context(), `SELECT d.outcome, d.http_status, d.latency_us, d.error,
		d.next_attempt_time, e.attributes::text, e.ingest_time
		FROM deliveries d JOIN events e USING (topic_id, event_id) WHERE d.ack_id = $1`, acks[0].ID).
		Scan(&outcome, &status, &latency, &errText, &next, &attrs, &ingest))
	require.Equal(t, int(v1.DeliveryStatus_DELIVERY_STATUS_RETRYING), outcome)
	require.Equal(t, 503, status)
	require.Equal(t, int64(3000), latency)
	require.Equal(t, "503 Service Unavailable", errText)
	require.NotNil(t, next)
	require.JSONEq(t, `{"source":"/s","type":"order.created"}`, attrs)
	require.True(t, acks[0].IngestTime.Equal(ingest), "the earliest ingest time wins")
}

// fakeRegions lists fixed regions.
type fakeRegions struct{ regions []*v1.Region }

func (f fakeRegions) ListRegions(_ context.Context, p store.ListParams) ([]*v1.Region, error) {
	var out []*v1.Region
	for _, r := range f.regions {
		if r.GetId() > p.AfterID && len(out) < p.Limit {
			out = append(out, r)
		}
	}
	return out, nil
}

// ackLog makes a kfake cluster with the ack-log topic and returns its
// brokers and a producer.
func ackLog(t *testing.T) ([]string, *kgo.Client) {
	t.Helper()
	brokers := kafkatest.NewFake(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ProducerLinger(0))
	require.NoError(t, err)
	t.Cleanup(cl.Close)
	_, err = kadm.NewClient(cl).CreateTopic(t.Context(), 3, -1, nil, kafkaname.AckLogTopic)
	require.NoError(t, err)
	return brokers, cl
}

func produce(t *testing.T, cl *kgo.Client, acks []*acklog.Ack) {
	t.Helper()
	recs := make([]*kgo.Record, len(acks))
	for i, a := range acks {
		var err error
		recs[i], err = acklog.Record(a)
		require.NoError(t, err)
	}
	require.NoError(t, cl.ProduceSync(t.Context(), recs...).FirstErr())
}

// run runs l until the test ends.
func run(t *testing.T, l *Ledger) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { require.NoError(t, l.Run(ctx)) })
	t.Cleanup(func() { cancel(); wg.Wait() })
}

func newLedger(t *testing.T, pool *pgxpool.Pool, brokers []string, reg prometheus.Registerer) *Ledger {
	t.Helper()
	l, err := New(Config{
		Pool:        pool,
		Regions:     fakeRegions{[]*v1.Region{{Id: "reg_a", KafkaBrokers: brokers}, {Id: "reg_b", KafkaBrokers: brokers}, {Id: "reg_c"}}},
		KafkaOpts:   []kgo.Opt{kgo.FetchMaxWait(50 * time.Millisecond)},
		MaxBatch:    300,
		LagInterval: 100 * time.Millisecond,
		Registry:    reg,
		Logger:      testLogger(),
	})
	require.NoError(t, err)
	return l
}

func TestLedgerReplayedAcksLeaveOneRowEach(t *testing.T) {
	t.Parallel()
	pool := newPool(t, pgtest.NewDB(t, migrated))
	brokers, cl := ackLog(t)
	acks := makeAcks("top_a", 500, time.Now().UTC())
	produce(t, cl, acks)
	produce(t, cl, acks) // the ack log replayed
	reg := prometheus.NewRegistry()
	l := newLedger(t, pool, brokers, reg)
	run(t, l)
	require.Eventually(t, func() bool {
		return count(t, pool, "SELECT count(*) FROM deliveries") == len(acks) && l.Lag() == 0
	}, 30*time.Second, 50*time.Millisecond)
	require.Equal(t, 500, count(t, pool, "SELECT count(*) FROM events"))
	require.InDelta(t, float64(len(acks)), l.Rows(), 0)
	// The lag gauge is exported, one series per cluster (two regions share
	// one; a region without brokers has none).
	mfs, err := reg.Gather()
	require.NoError(t, err)
	names := map[string]int{}
	for _, mf := range mfs {
		names[mf.GetName()] = len(mf.GetMetric())
	}
	require.Equal(t, map[string]int{"switchyard_ledger_lag": 1, "switchyard_ledger_rows_total": 1}, names)

	// Offsets were committed: all 2000 records.
	offs, err := kadm.NewClient(cl).FetchOffsets(t.Context(), DefaultGroup)
	require.NoError(t, err)
	var committed int64
	offs.Each(func(o kadm.OffsetResponse) { committed += o.At })
	require.Equal(t, int64(2*len(acks)), committed)
}

func TestLedgerWaitsForPostgres(t *testing.T) {
	t.Parallel()
	conn := pgtest.NewDB(t, migrated)
	pool := newPool(t, conn)
	brokers, cl := ackLog(t)

	// Postgres refuses the ledger's database: no new connection is allowed
	// and the pool's are terminated.
	cfg, err := pgx.ParseConfig(conn)
	require.NoError(t, err)
	db := cfg.Database
	cfg.Database = "postgres"
	admin, err := pgx.ConnectConfig(t.Context(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, admin.Close(context.Background())) })
	setAllowed := func(allow bool) {
		_, err := admin.Exec(context.Background(), fmt.Sprintf("ALTER DATABASE %s WITH ALLOW_CONNECTIONS %t", pgx.Identifier{db}.Sanitize(), allow))
		require.NoError(t, err)
		if !allow {
			_, err = admin.Exec(context.Background(), "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", db)
			require.NoError(t, err)
		}
	}
	setAllowed(false)
	t.Cleanup(func() { setAllowed(true) })

	// More acks than a batch (300): the lag counts all of them, not only
	// the batch the writer is stuck on, and grows as more come.
	acks := makeAcks("top_a", 500, time.Now().UTC())
	produce(t, cl, acks)
	l := newLedger(t, pool, brokers, nil)
	run(t, l)

	// The ledger read a batch and retries it; nothing is committed.
	require.Eventually(t, func() bool { return l.Lag() == float64(len(acks)) }, 10*time.Second, 20*time.Millisecond)
	more := makeAcks("top_b", 200, time.Now().UTC())
	produce(t, cl, more)
	require.Eventually(t, func() bool { return l.Lag() == float64(len(acks)+len(more)) }, 10*time.Second, 20*time.Millisecond)
	acks = append(acks, more...)
	time.Sleep(time.Second)
	offs, err := kadm.NewClient(cl).FetchOffsets(t.Context(), DefaultGroup)
	require.NoError(t, err)
	offs.Each(func(o kadm.OffsetResponse) {
		require.LessOrEqual(t, o.At, int64(0), "committed while Postgres was down")
	})
	require.Zero(t, l.Rows())

	setAllowed(true)
	require.Eventually(t, func() bool { return l.Lag() == 0 && l.Rows() == float64(len(acks)) }, 30*time.Second, 50*time.Millisecond)
	require.Equal(t, len(acks), count(t, pool, "SELECT count(*) FROM deliveries"))
}

func TestConfig(t *testing.T) {
	t.Parallel()
	_, err := New(Config{})
	require.ErrorContains(t, err, "Pool is required")
	require.ErrorContains(t, err, "Regions is required")
}
