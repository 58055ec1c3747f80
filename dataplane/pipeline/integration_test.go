package pipeline

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard-dev/switchyard/dataplane/deliver"
	"github.com/switchyard-dev/switchyard/internal/testenv/kafkatest"
)

// TestRealBroker runs two pipelines on one topic of a real Kafka: one to a
// healthy sink, one to a sink failing 30% of requests (through the retry
// tiers), behind the delivery router.
func TestRealBroker(t *testing.T) {
	t.Parallel()
	e := newEnv(t, kafkatest.RealBrokers(t))
	top := e.topic("top_a", 4)
	good := newSink(t, nil)
	flakySink := newSink(t, flaky(13, 0.3))
	pg := e.pipeline("pip_good", top, good.srv.URL)
	pf := e.pipeline("pip_flaky", top, flakySink.srv.URL)
	e.publish(pg, pf)
	router := deliver.NewRouter(e.webhook, nil, nil)
	// Short enough that an open circuit does not exhaust max_attempts.
	router.BreakerCooldown = 100 * time.Millisecond
	t.Cleanup(router.Close)
	ids := e.events(top, 2000, 0, "order.created")
	e.start(e.config(router))
	waitDelivered(t, good, ids, 60*time.Second)
	waitDelivered(t, flakySink, ids, 120*time.Second)
	for name, s := range map[string]*sink{"always-200": good, "30%-failing": flakySink} {
		n, dups := s.counts(ids)
		t.Logf("real broker, %s sink: published %d, delivered %d, lost %d, duplicates %d, requests %d",
			name, len(ids), n, len(ids)-n, dups, s.requestCount())
		require.Equal(t, len(ids), n, "lost must be 0")
	}
	_, series := e.metric("switchyard_dead_letters_total")
	require.Zero(t, series, "nothing was dead-lettered")
	// The lag gauge reaches 0 once everything is committed.
	require.Eventually(t, func() bool {
		v, n := e.metric("switchyard_pipeline_lag", "pipeline", "pip_good")
		return n == 1 && v == 0
	}, 30*time.Second, 100*time.Millisecond)
}

// BenchmarkEndToEnd measures records per second through one worker to a
// loopback sink answering 200, on the real broker.
func BenchmarkEndToEnd(b *testing.B) {
	brokers := kafkatest.RealBrokers(b)
	e := newEnv(b, brokers)
	top := e.topic("top_b", 4)
	s := newSink(b, nil)
	p := e.pipeline("pip_bench", top, s.srv.URL)
	e.publish(p)
	ids := e.events(top, b.N, 0, "order.created")
	b.ResetTimer()
	start := time.Now()
	stop := e.start(e.config(e.webhook))
	deadline, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	for deadline.Err() == nil {
		if n, _ := s.counts(ids); n == len(ids) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	b.StopTimer()
	stop()
	n, _ := s.counts(ids)
	require.Equal(b, len(ids), n)
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "records/s")
}
