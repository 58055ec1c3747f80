package pipeline

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/switchyard-dev/switchyard/dataplane/deliver"
	"github.com/switchyard-dev/switchyard/dataplane/record"
	"github.com/switchyard-dev/switchyard/internal/kafkaname"
	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
)

func TestDeliversEveryEventOnce(t *testing.T) {
	t.Parallel()
	e := newFakeEnv(t)
	top := e.topic("top_a", 2)
	s := newSink(t, nil)
	p := e.pipeline("pip_a", top, s.srv.URL)
	e.publish(p)
	ids := e.events(top, 300, 0, "order.created")
	e.start(e.config(e.webhook))
	waitDelivered(t, s, ids, 30*time.Second)
	// Nothing more arrives: every event exactly once.
	time.Sleep(300 * time.Millisecond)
	n, dups := s.counts(ids)
	require.Equal(t, len(ids), n)
	require.Zero(t, dups)
	require.InDelta(t, 300, e.value("switchyard_pipeline_records_total", "pipeline", "pip_a", "result", ResultDelivered), 0)
	require.InDelta(t, 300, e.value("switchyard_end_to_end_seconds", "pipeline", "pip_a"), 0)
}

func TestFilterAndTransform(t *testing.T) {
	t.Parallel()
	e := newFakeEnv(t)
	top := e.topic("top_a", 2)
	s := newSink(t, nil)
	p := e.pipeline("pip_a", top, s.srv.URL)
	p.Filter = &v1.Filter{EventTypes: []string{"order.*"}, Expression: "int(data.total) % 2 == 0"}
	p.Transform = &v1.Transform{Expression: `{"id": event.id, "double": data.total * 2.0}`}
	e.publish(p)
	orders := e.events(top, 40, 0, "order.created")
	others := e.eventsWithPrefix(top, "x", 10, "user.created")
	var even []string
	for i, id := range orders {
		if i%2 == 0 {
			even = append(even, id)
		}
	}
	e.start(e.config(e.webhook))
	waitDelivered(t, s, even, 30*time.Second)
	require.Eventually(t, func() bool {
		return e.value("switchyard_pipeline_records_total", "pipeline", "pip_a", "result", ResultFiltered) == 30
	}, 10*time.Second, 20*time.Millisecond)
	n, _ := s.counts(append(append([]string{}, orders...), others...))
	require.Equal(t, len(even), n, "only even order events pass the filter")
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, id := range orders {
		if i%2 != 0 {
			continue
		}
		var got map[string]any
		require.NoError(t, json.Unmarshal(s.bodies[id], &got))
		require.Equal(t, map[string]any{"id": id, "double": float64(2 * i)}, got)
	}
}

func TestFlakySinkLosesNothing(t *testing.T) {
	t.Parallel()
	e := newFakeEnv(t)
	top := e.topic("top_a", 2)
	s := newSink(t, flaky(7, 0.3))
	p := e.pipeline("pip_a", top, s.srv.URL)
	e.publish(p)
	ids := e.events(top, 300, 0, "order.created")
	e.start(e.config(e.webhook))
	waitDelivered(t, s, ids, 60*time.Second)
	n, dups := s.counts(ids)
	t.Logf("flaky sink: published %d, delivered %d, lost %d, duplicates %d, requests %d", len(ids), n, len(ids)-n, dups, s.requestCount())
	require.Equal(t, len(ids), n, "lost must be 0")
	require.Positive(t, e.value("switchyard_retries_total", "pipeline", "pip_a", "tier", "100ms"), "failures went through the first tier")
	_, series := e.metric("switchyard_dead_letters_total")
	require.Zero(t, series)
}

func TestDeadLettersWhileHealthyPipelineDelivers(t *testing.T) {
	t.Parallel()
	e := newFakeEnv(t)
	top := e.topic("top_a", 2)
	bad := newSink(t, func(string, payload) int { return http.StatusInternalServerError })
	good := newSink(t, nil)
	pb := e.pipeline("pip_bad", top, bad.srv.URL)
	pb.RetryPolicy.MaxAttempts = 3
	pg := e.pipeline("pip_good", top, good.srv.URL)
	e.publish(pb, pg)
	ids := e.events(top, 50, 0, "order.created")
	// A record that is not an event.
	require.NoError(t, e.producer.ProduceSync(t.Context(), &kgo.Record{Topic: top.GetKafkaTopic(), Value: []byte("junk")}).FirstErr())
	e.start(e.config(e.webhook))
	waitDelivered(t, good, ids, 30*time.Second)

	dl := e.readAll(pb.GetDeadLetterTopic(), len(ids)+1, 30*time.Second)
	require.Len(t, dl, len(ids)+1)
	seen := map[string]bool{}
	var malformed int
	for _, r := range dl {
		reason, _ := record.Header(r, kafkaname.HeaderReason)
		pipe, _ := record.Header(r, kafkaname.HeaderPipeline)
		require.Equal(t, "pip_bad", pipe)
		origin, _ := record.Header(r, kafkaname.HeaderOrigin)
		require.Contains(t, origin, top.GetKafkaTopic()+"/")
		if reason == ReasonMalformed {
			malformed++
			require.Equal(t, "junk", string(r.Value))
			continue
		}
		require.Equal(t, ReasonMaxAttempts, reason)
		attempt, _ := record.Header(r, kafkaname.HeaderAttempt)
		require.Equal(t, "3", attempt)
		status, _ := record.Header(r, kafkaname.HeaderLastStatus)
		require.Equal(t, "500", status)
		dest, _ := record.Header(r, kafkaname.HeaderDestination)
		require.Equal(t, "d0", dest)
		_, ok := record.Header(r, kafkaname.HeaderFirstAttempt)
		require.True(t, ok)
		dec, err := record.Decode(r)
		require.NoError(t, err, "a dead letter keeps the original record")
		seen[dec.Event.GetId()] = true
	}
	require.Equal(t, 1, malformed)
	require.Len(t, seen, len(ids))
	bad.mu.Lock()
	require.Equal(t, 3*len(ids), bad.requests, "exactly max_attempts attempts per event")
	bad.mu.Unlock()
	require.InDelta(t, float64(len(ids)), e.value("switchyard_dead_letters_total", "pipeline", "pip_bad", "reason", ReasonMaxAttempts), 0)
	n, dups := good.counts(ids)
	require.Equal(t, len(ids), n)
	require.Zero(t, dups)
}

func TestKeyOrdering(t *testing.T) {
	t.Parallel()
	e := newFakeEnv(t)
	top := e.topic("top_a", 2)
	var stuck atomic.Bool
	stuck.Store(true)
	s := newSink(t, func(_ string, pl payload) int {
		if pl.Key == "k0" && stuck.Load() {
			return http.StatusServiceUnavailable
		}
		return 0
	})
	p := e.pipeline("pip_key", top, s.srv.URL)
	p.Ordering = v1.OrderingMode_ORDERING_MODE_KEY
	e.publish(p)
	const keys, perKey = 6, 30
	ids := e.events(top, keys*perKey, keys, "order.created")
	var others, k0 []string
	for i, id := range ids {
		if i%keys == 0 {
			k0 = append(k0, id)
		} else {
			others = append(others, id)
		}
	}
	e.start(e.config(e.webhook))
	// Every other key finishes while k0 keeps failing.
	waitDelivered(t, s, others, 30*time.Second)
	n, _ := s.counts(k0)
	require.Zero(t, n, "k0 is still failing")
	s.mu.Lock()
	require.Positive(t, s.requests-len(others), "k0 was tried")
	s.mu.Unlock()
	stuck.Store(false)
	waitDelivered(t, s, k0, 30*time.Second)

	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range keys {
		key := "k" + strconv.Itoa(k)
		got := s.order[key]
		require.Len(t, got, perKey, key)
		for i := 1; i < len(got); i++ {
			require.Less(t, got[i-1], got[i], "key %s delivered out of order: %v", key, got)
		}
	}
	require.Positive(t, e.value("switchyard_retries_total", "pipeline", "pip_key", "tier", "key"))
}

func TestRestartLosesNothing(t *testing.T) {
	t.Parallel()
	e := newFakeEnv(t)
	top := e.topic("top_a", 2)
	s := newSink(t, flaky(11, 0.3))
	p := e.pipeline("pip_a", top, s.srv.URL)
	e.publish(p)
	ids := e.events(top, 600, 0, "order.created")
	stop := e.start(e.config(e.webhook))
	require.Eventually(t, func() bool {
		n, _ := s.counts(ids)
		return n >= len(ids)/4
	}, 30*time.Second, 5*time.Millisecond)
	stop()
	mid, _ := s.counts(ids)
	t.Logf("stopped after %d of %d", mid, len(ids))
	e.start(e.config(e.webhook))
	waitDelivered(t, s, ids, 60*time.Second)
	n, dups := s.counts(ids)
	t.Logf("restart: published %d, delivered %d, lost %d, duplicates %d", len(ids), n, len(ids)-n, dups)
	require.Equal(t, len(ids), n)
}

func TestPauseAndResume(t *testing.T) {
	t.Parallel()
	e := newFakeEnv(t)
	top := e.topic("top_a", 1)
	s := newSink(t, nil)
	p := e.pipeline("pip_a", top, s.srv.URL)
	e.publish(p)
	e.start(e.config(e.webhook))
	first := e.events(top, 20, 0, "order.created")
	waitDelivered(t, s, first, 30*time.Second)

	paused := proto.CloneOf(p)
	paused.Paused = true
	e.publish(paused)
	later := e.eventsWithPrefix(top, "later", 20, "order.created")
	time.Sleep(500 * time.Millisecond)
	n, _ := s.counts(later)
	require.Zero(t, n, "a paused pipeline delivers nothing")

	e.publish(p)
	waitDelivered(t, s, later, 30*time.Second)
	n, dups := s.counts(append(first, later...))
	require.Equal(t, 40, n)
	require.Zero(t, dups, "pausing commits what was final")
}

// circuitOpen answers every event's first tries as an open circuit breaker
// does — Retryable without sending — then hands over to next.
type circuitOpen struct {
	next    deliver.Deliverer
	refuse  int
	mu      sync.Mutex
	refused map[string]int
}

func (c *circuitOpen) Deliver(ctx context.Context, req *deliver.Request) deliver.Result {
	c.mu.Lock()
	n := c.refused[req.Event.GetId()]
	if n < c.refuse {
		c.refused[req.Event.GetId()] = n + 1
		c.mu.Unlock()
		return deliver.Result{Outcome: deliver.Retryable, Err: deliver.ErrCircuitOpen}
	}
	c.mu.Unlock()
	return c.next.Deliver(ctx, req)
}

// TestOpenCircuitUsesNoAttempts checks that refusals of an open breaker do not
// spend the retry budget: with max_attempts 2, events refused three times
// without being sent are still delivered, in both ordering modes.
func TestOpenCircuitUsesNoAttempts(t *testing.T) {
	t.Parallel()
	for _, mode := range []v1.OrderingMode{v1.OrderingMode_ORDERING_MODE_NONE, v1.OrderingMode_ORDERING_MODE_KEY} {
		t.Run(mode.String(), func(t *testing.T) {
			t.Parallel()
			e := newFakeEnv(t)
			top := e.topic("top_c", 2)
			s := newSink(t, nil)
			p := e.pipeline("pip_c", top, s.srv.URL)
			p.Ordering = mode
			p.RetryPolicy.MaxAttempts = 2
			e.publish(p)
			ids := e.events(top, 40, 4, "order.created")
			e.start(e.config(&circuitOpen{next: e.webhook, refuse: 3, refused: map[string]int{}}))
			waitDelivered(t, s, ids, 30*time.Second)
			_, series := e.metric("switchyard_dead_letters_total")
			require.Zero(t, series, "no event may be dead-lettered for refusals that sent nothing")
		})
	}
}

// TestStartsAtPipelineCreation checks where a new pipeline starts: records
// published well before it existed are skipped, everything published after
// is delivered, including records published while its consumer is still
// joining (a time-based seek would skip those on partitions that were still
// empty).
func TestStartsAtPipelineCreation(t *testing.T) {
	t.Parallel()
	e := newFakeEnv(t)
	top := e.topic("top_s", 4)
	var old []string
	var recs []*kgo.Record
	for i := range 20 {
		id := "evt_old_" + strconv.Itoa(i)
		rec := record.Encode(testTenant, top.GetId(), &v1.Event{Id: id, Source: "test", Type: "order.created",
			Time: timestamppb.Now(), DataContentType: "application/json", Data: []byte(`{}`)})
		rec.Topic = top.GetKafkaTopic()
		rec.Timestamp = time.Now().Add(-time.Hour)
		recs = append(recs, rec)
		old = append(old, id)
	}
	require.NoError(t, e.producer.ProduceSync(t.Context(), recs...).FirstErr())

	s := newSink(t, nil)
	p := e.pipeline("pip_s", top, s.srv.URL)
	p.CreateTime = timestamppb.Now()
	e.publish(p)
	e.start(e.config(e.webhook))
	fresh := e.publishEvents(top, "new", 40, 0, "order.created")
	waitDelivered(t, s, fresh, 30*time.Second)
	n, _ := s.counts(old)
	require.Zero(t, n, "records older than the pipeline are not delivered")
	require.Eventually(t, func() bool {
		return e.value("switchyard_pipeline_records_total", "pipeline", "pip_s", "result", ResultBeforePipeline) == float64(len(old))
	}, 10*time.Second, 50*time.Millisecond)
}
