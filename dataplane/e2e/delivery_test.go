package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard-dev/switchyard/dataplane"
	"github.com/switchyard-dev/switchyard/internal/kafkaname"
	"github.com/switchyard-dev/switchyard/internal/netguard"
	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
)

// orderEvent is the payload of the test events.
type orderEvent struct {
	N     int     `json:"n"`
	Key   string  `json:"key"`
	Total float64 `json:"total"`
}

// makeEvents builds n events of alternating types with unique ids; the
// partition key cycles through keys keys.
func makeEvents(prefix string, n, keys int) []*v1.Event {
	out := make([]*v1.Event, n)
	for i := range n {
		typ := "order.created"
		if i%2 == 1 {
			typ = "order.updated"
		}
		key := fmt.Sprintf("k%d", i%keys)
		data, _ := json.Marshal(orderEvent{N: i, Key: key, Total: float64(i)})
		out[i] = &v1.Event{
			Id: fmt.Sprintf("%s-%05d", prefix, i), Source: "/e2e", Type: typ,
			DataContentType: "application/json", Data: data, PartitionKey: key,
		}
	}
	return out
}

func idSet(events []*v1.Event, keep func(*v1.Event) bool) map[string]bool {
	m := make(map[string]bool, len(events))
	for _, e := range events {
		if keep == nil || keep(e) {
			m[e.GetId()] = true
		}
	}
	return m
}

// TestFanOutFilterTransformFlakySink publishes 10,000 events to one topic
// read by three pipelines: one filtered by type, one transformed by CEL, one
// to a sink that fails 30% of requests. Every event that passes a filter
// reaches its sink at least once.
func TestFanOutFilterTransformFlakySink(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{webhookPolicy: netguard.Policy{AllowLoopback: true}})
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	const total = 10_000
	events := makeEvents("fan", total, 97)
	byID := make(map[string]orderEvent, total)
	for _, ev := range events {
		var o orderEvent
		require.NoError(t, json.Unmarshal(ev.GetData(), &o))
		byID[ev.GetId()] = o
	}

	topic := e.createTopic("orders", 6)
	created, reshaped, flaky := newSink(t), newSink(t), newSink(t)
	created.check = func(r *http.Request, _ []byte) error {
		if typ := r.Header.Get("Ce-Type"); typ != "order.created" {
			return fmt.Errorf("filtered pipeline delivered type %q", typ)
		}
		return nil
	}
	reshaped.check = func(r *http.Request, body []byte) error {
		var got map[string]any
		if err := json.Unmarshal(body, &got); err != nil {
			return fmt.Errorf("transformed body is not JSON: %w: %s", err, body)
		}
		id := r.Header.Get("Webhook-Id")
		want := map[string]any{"id": id, "kind": r.Header.Get("Ce-Type"), "double": 2 * byID[id].Total, "key": byID[id].Key}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			return fmt.Errorf("transformed body %v, want %v", got, want)
		}
		return nil
	}
	var rndMu sync.Mutex
	rnd := rand.New(rand.NewPCG(1, 2))
	flaky.respond = func(string, []byte) int {
		rndMu.Lock()
		defer rndMu.Unlock()
		if rnd.Float64() < 0.3 {
			return http.StatusInternalServerError
		}
		return 0
	}

	pc := e.createPipeline(&v1.Pipeline{
		Name: "created-only", TopicId: topic.GetId(),
		Filter:       &v1.Filter{EventTypes: []string{"order.created"}},
		Destinations: []*v1.Destination{webhook("hook", created.url(), 64)},
		RetryPolicy:  fastRetries(20),
	})
	created.secret = secretOf(pc, "hook")
	e.createPipeline(&v1.Pipeline{
		Name: "reshaped", TopicId: topic.GetId(),
		Transform:    &v1.Transform{Expression: `{"id": event.id, "kind": event.type, "double": data.total * 2.0, "key": data.key}`},
		Destinations: []*v1.Destination{webhook("hook", reshaped.url(), 64)},
		RetryPolicy:  fastRetries(20),
	})
	e.createPipeline(&v1.Pipeline{
		Name: "flaky", TopicId: topic.GetId(),
		Destinations: []*v1.Destination{webhook("hook", flaky.url(), 64)},
		RetryPolicy:  fastRetries(50),
	})
	// The default circuit breaker judges the failure rate: a sink failing
	// 30% of requests at random (runs of 5 in a row come every few hundred
	// requests at 64 in flight) keeps it closed.
	node := e.startNodeWith(dataplane.Config{WebhookPolicy: netguard.Policy{AllowLoopback: true}})

	start := time.Now()
	took := e.publishAll(ctx, e.ingestClient(node.Addr(), e.producerKey), "orders", events, 200)
	t.Logf("published %d events in batches of 200 in %v", total, took.Round(time.Millisecond))

	wantCreated := idSet(events, func(ev *v1.Event) bool { return ev.GetType() == "order.created" })
	wantAll := idSet(events, nil)
	remaining := func() time.Duration { d, _ := ctx.Deadline(); return time.Until(d) }
	tc := created.waitAll(t, "created-only", wantCreated, remaining())
	tr := reshaped.waitAll(t, "reshaped", wantAll, remaining())
	tf := flaky.waitAll(t, "flaky", wantAll, remaining())
	elapsed := time.Since(start)

	t.Logf("created-only (filter): %s", tc)
	t.Logf("reshaped (transform):  %s", tr)
	t.Logf("flaky (30%% 500s):      %s requests=%d (%.1f%% retried)", tf, flaky.requests.Load(),
		100*float64(flaky.requests.Load()-int64(tf.unique+tf.duplicates))/float64(flaky.requests.Load()))
	t.Logf("published to all delivered: %v", elapsed.Round(time.Millisecond))
	for name, got := range map[string]tally{"created-only": tc, "reshaped": tr, "flaky": tf} {
		require.Zero(t, got.missing, "%s lost events", name)
		require.Zero(t, got.unexpected, "%s got events it should not have", name)
	}
	require.Equal(t, total/2, tc.expected)
	require.Greater(t, flaky.requests.Load(), int64(total), "the flaky sink must have refused some requests")
}

// TestDeadLetters: a sink answering 500 forever gets each event the policy's
// number of times, then the event is dead-lettered with the reason; a
// healthy pipeline on the same topic is not affected.
func TestDeadLetters(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{webhookPolicy: netguard.Policy{AllowLoopback: true}})
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	const total, attempts = 200, 3
	events := makeEvents("dlq", total, 13)

	topic := e.createTopic("payments", 4)
	broken, healthy := newSink(t), newSink(t)
	broken.respond = func(string, []byte) int { return http.StatusInternalServerError }
	doomed := e.createPipeline(&v1.Pipeline{
		Name: "doomed", TopicId: topic.GetId(),
		Destinations: []*v1.Destination{webhook("broken", broken.url(), 32)},
		RetryPolicy:  fastRetries(attempts),
	})
	e.createPipeline(&v1.Pipeline{
		Name: "healthy", TopicId: topic.GetId(),
		Destinations: []*v1.Destination{webhook("fine", healthy.url(), 32)},
	})
	// A breaker that never opens, so that every attempt reaches the sink
	// and the count of attempts per event can be checked there. (With the
	// default breaker, five 500s in a row open the circuit, and the
	// attempts it refuses count towards max_attempts.)
	node := e.startNodeWith(dataplane.Config{WebhookPolicy: netguard.Policy{AllowLoopback: true}, BreakerThreshold: 1_000_000})

	start := time.Now()
	e.publishAll(ctx, e.ingestClient(node.Addr(), e.producerKey), "payments", events, 200)
	th := healthy.waitAll(t, "healthy", idSet(events, nil), 30*time.Second)
	t.Logf("healthy pipeline beside a failing one: %s in %v", th, time.Since(start).Round(time.Millisecond))

	dl := consumeDeadLetters(t, e.brokers, doomed.GetDeadLetterTopic(), total, 45*time.Second)
	t.Logf("dead letters: %d of %d events in %v; failing sink saw %d requests", len(dl), total,
		time.Since(start).Round(time.Millisecond), broken.requests.Load())
	seen := make(map[string]bool)
	for _, r := range dl {
		id := header(r, kafkaname.HeaderCEPrefix+"id")
		require.True(t, strings.HasPrefix(id, "dlq-"), "dead letter without the event's id: %v", r.Headers)
		seen[id] = true
		require.Equal(t, "max_attempts", header(r, kafkaname.HeaderReason))
		require.Equal(t, strconv.Itoa(attempts), header(r, kafkaname.HeaderAttempt))
		require.Equal(t, "500", header(r, kafkaname.HeaderLastStatus))
		require.Contains(t, header(r, kafkaname.HeaderLastError), "500")
		require.Equal(t, doomed.GetId(), header(r, kafkaname.HeaderPipeline))
		require.Equal(t, "broken", header(r, kafkaname.HeaderDestination))
		require.NotEmpty(t, header(r, kafkaname.HeaderOrigin))
		require.NotEmpty(t, r.Value, "the payload is kept")
	}
	require.Len(t, seen, total, "every event dead-lettered")
	perEvent := broken.attemptsPerID()
	require.Len(t, perEvent, total)
	for id, n := range perEvent {
		require.Equal(t, attempts, n, "attempts of %s at the failing sink", id)
	}
	require.Zero(t, healthy.tally(idSet(events, nil)).missing)
}

// TestKeyOrdering: with ORDERING_MODE_KEY every key's events arrive in
// publish order, while one key's deliveries fail until every other key has
// been delivered — which also shows that a failing key holds back only
// itself.
func TestKeyOrdering(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{webhookPolicy: netguard.Policy{AllowLoopback: true}})
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	const keys, perKey = 20, 50
	events := make([]*v1.Event, 0, keys*perKey)
	for seq := range perKey {
		for k := range keys {
			data, _ := json.Marshal(map[string]any{"key": fmt.Sprintf("k%d", k), "seq": seq})
			events = append(events, &v1.Event{
				Id: fmt.Sprintf("ord-k%d-%03d", k, seq), Source: "/e2e", Type: "order.step",
				Data: data, DataContentType: "application/json", PartitionKey: fmt.Sprintf("k%d", k),
			})
		}
	}
	topic := e.createTopic("steps", 3) // fewer partitions than keys: keys share partitions

	s := newSink(t)
	var mu sync.Mutex
	next := make(map[string]int) // key -> next sequence number expected
	othersDone := false
	stuckAttempts := 0
	var violations []string
	s.respond = func(_ string, body []byte) int {
		var p struct {
			Key string `json:"key"`
			Seq int    `json:"seq"`
		}
		_ = json.Unmarshal(body, &p)
		mu.Lock()
		defer mu.Unlock()
		if p.Key == "k0" && !othersDone {
			stuckAttempts++
			return http.StatusServiceUnavailable
		}
		switch {
		case p.Seq > next[p.Key]:
			violations = append(violations, fmt.Sprintf("%s: seq %d before %d", p.Key, p.Seq, next[p.Key]))
		case p.Seq == next[p.Key]:
			next[p.Key]++
		}
		// A redelivery of an earlier sequence (at least once) is fine.
		if !othersDone {
			done := true
			for k := 1; k < keys; k++ {
				done = done && next[fmt.Sprintf("k%d", k)] == perKey
			}
			othersDone = done
		}
		return 0
	}
	e.createPipeline(&v1.Pipeline{
		Name: "in-order", TopicId: topic.GetId(), Ordering: v1.OrderingMode_ORDERING_MODE_KEY,
		Destinations: []*v1.Destination{webhook("hook", s.url(), 32)},
		RetryPolicy:  fastRetries(100),
	})
	node := e.startNode(netguard.Policy{AllowLoopback: true})

	start := time.Now()
	e.publishAll(ctx, e.ingestClient(node.Addr(), e.producerKey), "steps", events, 200)
	d, _ := ctx.Deadline()
	got := s.waitAll(t, "in-order", idSet(events, nil), time.Until(d))
	mu.Lock()
	defer mu.Unlock()
	t.Logf("KEY ordering: %d keys x %d events: %s; key k0 refused %d times while the others went on; %v",
		keys, perKey, got, stuckAttempts, time.Since(start).Round(time.Millisecond))
	require.Empty(t, violations, "per-key order broken")
	require.True(t, othersDone)
	require.Positive(t, stuckAttempts)
	for k := range keys {
		require.Equal(t, perKey, next[fmt.Sprintf("k%d", k)], "key k%d", k)
	}
}
