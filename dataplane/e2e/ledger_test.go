package e2e

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-dev/switchyard/internal/netguard"
	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
)

// TestLedgerSurvivesPostgresOutage publishes 5,000 events to a topic with
// one pipeline and makes Postgres refuse every connection to the control
// plane's database for 30 s in the middle of delivery. Deliveries go on
// meanwhile; afterwards the ledger holds exactly one delivered row per event
// and destination, GetEvent shows the whole history of an event, and the
// ledger's lag returns to 0.
//
// It does not run in parallel with the other tests: its figures are about
// the ledger, not about sharing two cores with a 10,000-event fan-out.
func TestLedgerSurvivesPostgresOutage(t *testing.T) {
	e := newEnv(t, envOptions{webhookPolicy: netguard.Policy{AllowLoopback: true}, ledger: true})
	ctx, cancel := context.WithTimeout(t.Context(), 85*time.Second)
	defer cancel()
	const (
		total  = 5000
		outage = 30 * time.Second
		// The sink takes one request per pace: about 125 a second, so
		// delivery lasts about 40 s and the outage falls in its middle.
		pace = 8 * time.Millisecond
	)
	events := makeEvents("led", total, 31)
	sample := events[total/2].GetId()

	topic := e.createTopic("ledgered", 4)
	s := newSink(t)
	var (
		paceMu sync.Mutex
		next   time.Time
		tries  int // requests for the sample event
	)
	s.respond = func(id string, _ []byte) int {
		paceMu.Lock()
		now := time.Now()
		next = next.Add(pace)
		if next.Before(now) {
			next = now
		}
		wait := next.Sub(now)
		refuse := false
		if id == sample {
			tries++
			refuse = tries <= 2 // the sample event's history: 503, 503, 200
		}
		paceMu.Unlock()
		time.Sleep(wait)
		if refuse {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	}
	pipe := e.createPipeline(&v1.Pipeline{
		Name: "ledgered", TopicId: topic.GetId(),
		Destinations: []*v1.Destination{webhook("hook", s.url(), 16)},
		RetryPolicy:  fastRetries(10),
	})
	node := e.startNode(netguard.Policy{AllowLoopback: true})
	e.publishAll(ctx, e.ingestClient(node.Addr(), e.producerKey), "ledgered", events, 250)
	want := idSet(events, nil)

	// The outage starts once a fifth of the events are delivered.
	waitFor(t, ctx, "1,000 deliveries", func() bool { return s.tally(want).unique >= total/5 })
	admin := adminConn(t, e.dsn)
	db := e.pool.Config().ConnConfig.Database
	refuse(t, admin, db, false)
	t.Cleanup(func() { refuse(t, admin, db, true) }) // also when the test fails midway
	before := s.tally(want).unique
	outageStart := time.Now()
	// Postgres refuses the database all along: checked every second.
	for time.Since(outageStart) < outage {
		_, err := e.pool.Exec(ctx, "SELECT 1")
		require.Error(t, err, "Postgres must refuse connections during the outage")
		time.Sleep(time.Second)
	}
	during := s.tally(want).unique - before
	refuse(t, admin, db, true)
	t.Logf("outage: %d events delivered while Postgres refused connections for %v (%d before it)", during, outage, before)
	require.Positive(t, during, "deliveries must go on while Postgres is down")

	got := s.waitAll(t, "ledgered", want, time.Until(deadline(ctx)))
	t.Logf("sink: %s", got)
	allDelivered := time.Now()

	// The ledger catches up: its lag returns to 0 and it holds every
	// delivery once.
	var rows, distinct int
	waitFor(t, ctx, "the ledger to hold every delivery", func() bool {
		err := e.pool.QueryRow(ctx, `SELECT count(*), count(DISTINCT (event_id, destination)) FROM deliveries
			WHERE topic_id = $1 AND pipeline_id = $2 AND outcome = $3`,
			topic.GetId(), pipe.GetId(), int16(v1.DeliveryStatus_DELIVERY_STATUS_DELIVERED)).Scan(&rows, &distinct)
		return err == nil && distinct == total
	})
	waitFor(t, ctx, "ledger lag 0", func() bool { return e.ledger.Lag() == 0 })
	toLagZero := time.Since(outageStart.Add(outage))
	require.Equal(t, total, rows, "exactly one delivered row per event and destination")
	require.Equal(t, total, distinct)
	var eventRows int
	require.NoError(t, e.pool.QueryRow(ctx, `SELECT count(*) FROM events WHERE topic_id = $1`, topic.GetId()).Scan(&eventRows))
	require.Equal(t, total, eventRows)
	var allRows int
	require.NoError(t, e.pool.QueryRow(ctx, `SELECT count(*) FROM deliveries WHERE topic_id = $1`, topic.GetId()).Scan(&allRows))

	// The sample event's history: two refused attempts, then the delivery.
	res, err := e.events.GetEvent(ctx, &v1.GetEventRequest{TopicId: topic.GetId(), EventId: sample})
	require.NoError(t, err)
	rec := res.GetEvent()
	require.Equal(t, sample, rec.GetEvent().GetId())
	require.Equal(t, e.tenant.GetId(), rec.GetTenantId())
	require.Equal(t, "/e2e", rec.GetEvent().GetSource())
	require.Len(t, rec.GetStatuses(), 1)
	require.Equal(t, v1.DeliveryStatus_DELIVERY_STATUS_DELIVERED, rec.GetStatuses()[0].GetStatus())
	require.EqualValues(t, 3, rec.GetStatuses()[0].GetAttempts())
	attempts := res.GetAttempts()
	require.Len(t, attempts, 3)
	for i, a := range attempts {
		require.EqualValues(t, i+1, a.GetAttempt())
		require.Equal(t, pipe.GetId(), a.GetPipelineId())
		require.Equal(t, "hook", a.GetDestination())
		if i < 2 {
			require.Equal(t, v1.DeliveryStatus_DELIVERY_STATUS_RETRYING, a.GetStatus())
			require.EqualValues(t, http.StatusServiceUnavailable, a.GetHttpStatus())
		} else {
			require.Equal(t, v1.DeliveryStatus_DELIVERY_STATUS_DELIVERED, a.GetStatus())
			require.EqualValues(t, http.StatusOK, a.GetHttpStatus())
		}
		if i > 0 {
			require.False(t, a.GetAttemptTime().AsTime().Before(attempts[i-1].GetAttemptTime().AsTime()))
		}
	}

	t.Logf("events=%d delivered_during_outage=%d ledger_rows=%d (delivered=%d distinct=%d events=%d) ledger_rows_total=%.0f",
		total, during, allRows, rows, distinct, eventRows, e.ledger.Rows())
	t.Logf("time to ledger lag 0 after the outage=%v (all delivered %v after it)",
		toLagZero.Round(time.Millisecond), allDelivered.Sub(outageStart.Add(outage)).Round(time.Millisecond))
}

// adminConn connects to the maintenance database of the server of dsn.
func adminConn(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	cfg, err := pgx.ParseConfig(dsn)
	require.NoError(t, err)
	cfg.Database = "postgres"
	conn, err := pgx.ConnectConfig(t.Context(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

// refuse makes Postgres refuse (allow false) new connections to db and
// ends the open ones, or accept them again.
func refuse(t *testing.T, admin *pgx.Conn, db string, allow bool) {
	t.Helper()
	ctx := context.WithoutCancel(t.Context())
	sql := "ALTER DATABASE " + pgx.Identifier{db}.Sanitize() + " ALLOW_CONNECTIONS false"
	if allow {
		sql = "ALTER DATABASE " + pgx.Identifier{db}.Sanitize() + " ALLOW_CONNECTIONS true"
	}
	_, err := admin.Exec(ctx, sql)
	require.NoError(t, err)
	if !allow {
		_, err = admin.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
			WHERE datname = $1 AND pid <> pg_backend_pid()`, db)
		require.NoError(t, err)
	}
}

// waitFor polls cond every 100 ms until it holds, failing the test when
// ctx ends first.
func waitFor(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// deadline is ctx's deadline.
func deadline(ctx context.Context) time.Time {
	d, _ := ctx.Deadline()
	return d
}
