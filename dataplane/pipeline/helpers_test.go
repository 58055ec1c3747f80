package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/switchyard-dev/switchyard/dataplane/deliver"
	"github.com/switchyard-dev/switchyard/dataplane/record"
	"github.com/switchyard-dev/switchyard/dataplane/snapshot"
	"github.com/switchyard-dev/switchyard/internal/netguard"
	"github.com/switchyard-dev/switchyard/internal/testenv/kafkatest"
	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
)

const (
	testRegion = "reg_test"
	testTenant = "ten_test"
	testSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" // 24 bytes
)

// testEnv is a Kafka (kfake or real), a producer, a snapshot holder and
// short retry tiers of one test.
type testEnv struct {
	t        testing.TB
	brokers  []string
	producer *kgo.Client
	holder   *snapshot.Holder
	tiers    []Tier
	webhook  *deliver.Webhook
	reg      *prometheus.Registry
	metrics  *Metrics
	version  int64
	raw      *v1.ConfigSnapshot
}

func newEnv(t testing.TB, brokers []string) *testEnv {
	t.Helper()
	p, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ProducerLinger(0))
	require.NoError(t, err)
	t.Cleanup(p.Close)
	wh, err := deliver.NewWebhook(deliver.WebhookConfig{Policy: netguard.Policy{AllowLoopback: true}})
	require.NoError(t, err)
	t.Cleanup(wh.Close)
	e := &testEnv{t: t, brokers: brokers, producer: p, holder: &snapshot.Holder{}, webhook: wh, reg: prometheus.NewRegistry()}
	e.metrics = NewMetrics(e.reg)
	for _, d := range []time.Duration{100 * time.Millisecond, 300 * time.Millisecond} {
		e.tiers = append(e.tiers, Tier{Delay: d, Topic: kafkatest.Topic(t, brokers, 2), Group: kafkatest.Group(t)})
	}
	e.raw = &v1.ConfigSnapshot{Regions: []*v1.Region{{Id: testRegion, Name: "test"}},
		Tenants: []*v1.Tenant{{Id: testTenant, Name: "test"}}}
	return e
}

func newFakeEnv(t *testing.T) *testEnv {
	t.Helper()
	return newEnv(t, kafkatest.NewFake(t))
}

// topic creates a tenant topic and adds it to the configuration.
func (e *testEnv) topic(id string, partitions int32) *v1.Topic {
	top := &v1.Topic{Id: id, TenantId: testTenant, Name: id, RegionId: testRegion,
		KafkaTopic: kafkatest.Topic(e.t, e.brokers, partitions), Partitions: uint32(partitions)}
	e.raw.Topics = append(e.raw.Topics, top)
	return top
}

// pipeline returns a pipeline on top delivering to the webhook urls, with
// its own group and dead-letter topic, and a fast retry policy.
func (e *testEnv) pipeline(id string, top *v1.Topic, urls ...string) *v1.Pipeline {
	p := &v1.Pipeline{
		Id: id, TenantId: testTenant, Name: id, TopicId: top.GetId(),
		RetryPolicy: &v1.RetryPolicy{
			MaxAttempts:    50,
			MaxAge:         durationpb.New(time.Hour),
			InitialBackoff: durationpb.New(20 * time.Millisecond),
			MaxBackoff:     durationpb.New(250 * time.Millisecond),
			Multiplier:     2,
			Jitter:         v1.Jitter_JITTER_EQUAL,
		},
		Ordering:        v1.OrderingMode_ORDERING_MODE_NONE,
		ConsumerGroup:   kafkatest.Group(e.t),
		DeadLetterTopic: kafkatest.Topic(e.t, e.brokers, 1),
	}
	for i, u := range urls {
		name := "d" + strconv.Itoa(i)
		p.Destinations = append(p.Destinations, &v1.Destination{Name: name,
			Kind: &v1.Destination_Webhook{Webhook: &v1.WebhookDestination{Url: u}}})
		e.raw.SigningSecrets = append(e.raw.SigningSecrets,
			&v1.SigningSecrets{PipelineId: id, Destination: name, Secrets: []string{testSecret}})
	}
	return p
}

// publish sets the configuration: topics and signing secrets added so far
// plus the given pipelines.
func (e *testEnv) publish(pipelines ...*v1.Pipeline) {
	e.version++
	raw := &v1.ConfigSnapshot{Version: e.version, Regions: e.raw.Regions, Tenants: e.raw.Tenants, Topics: e.raw.Topics,
		SigningSecrets: e.raw.SigningSecrets, Pipelines: pipelines}
	require.True(e.t, e.holder.Set(snapshot.New(raw)))
}

// config returns a runner configuration over the environment.
func (e *testEnv) config(d deliver.Deliverer) Config {
	return Config{
		Brokers:        e.brokers,
		ClientOpts:     testClientOpts(),
		Snapshots:      e.holder,
		RegionID:       testRegion,
		Deliverer:      d,
		Producer:       e.producer,
		Tiers:          e.tiers,
		CommitInterval: 100 * time.Millisecond,
		DrainTimeout:   2 * time.Second,
		Metrics:        e.metrics,
		Logger:         testLogger(),
	}
}

// start runs a runner until the returned stop is called (or the test ends).
func (e *testEnv) start(cfg Config) (stop func()) {
	e.t.Helper()
	r, err := New(cfg)
	require.NoError(e.t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				require.NoError(e.t, err)
			case <-time.After(60 * time.Second):
				e.t.Fatal("runner did not stop")
			}
		})
	}
	e.t.Cleanup(stop)
	return stop
}

// payload is the data of a test event.
type payload struct {
	Key   string `json:"key"`
	Seq   int    `json:"seq"`
	Total int    `json:"total"`
}

// events publishes n events to top, keyed round-robin by keys (the event id
// when keys is 0), and returns their ids in publish order.
func (e *testEnv) events(top *v1.Topic, n, keys int, typ string) []string {
	e.t.Helper()
	return e.publishEvents(top, "", n, keys, typ)
}

// eventsWithPrefix publishes n unkeyed events whose ids start with prefix.
func (e *testEnv) eventsWithPrefix(top *v1.Topic, prefix string, n int, typ string) []string {
	e.t.Helper()
	return e.publishEvents(top, prefix, n, 0, typ)
}

func (e *testEnv) publishEvents(top *v1.Topic, prefix string, n, keys int, typ string) []string {
	e.t.Helper()
	ids := make([]string, 0, n)
	recs := make([]*kgo.Record, 0, n)
	for i := range n {
		id := fmt.Sprintf("evt_%s%s_%05d", prefix, top.GetId(), i)
		pl := payload{Seq: i, Total: i}
		if keys > 0 {
			pl.Key = "k" + strconv.Itoa(i%keys)
		}
		data, err := json.Marshal(pl)
		require.NoError(e.t, err)
		ev := &v1.Event{Id: id, Source: "test", Type: typ, Time: timestamppb.Now(),
			DataContentType: "application/json", Data: data, PartitionKey: pl.Key}
		rec := record.Encode(testTenant, top.GetId(), ev)
		rec.Topic = top.GetKafkaTopic()
		recs = append(recs, rec)
		ids = append(ids, id)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(e.t, e.producer.ProduceSync(ctx, recs...).FirstErr())
	return ids
}

// readAll reads every record of a topic until n arrived or the timeout.
func (e *testEnv) readAll(topic string, n int, timeout time.Duration) []*kgo.Record {
	e.t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
	require.NoError(e.t, err)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n && ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		fs.EachRecord(func(r *kgo.Record) { out = append(out, r) })
	}
	return out
}

// sink is an HTTP endpoint recording what it receives. fail decides, per
// request, the status to answer (0 means 200).
type sink struct {
	srv  *httptest.Server
	mu   sync.Mutex
	fail func(id string, pl payload) int
	// got counts successful deliveries per event id; order lists them per
	// key, in the order answered 200.
	got      map[string]int
	order    map[string][]int
	requests int
	bodies   map[string][]byte
}

func newSink(t testing.TB, fail func(id string, pl payload) int) *sink {
	s := &sink{fail: fail, got: make(map[string]int), order: make(map[string][]int), bodies: make(map[string][]byte)}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *sink) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	id := r.Header.Get("Webhook-Id")
	var pl payload
	_ = json.Unmarshal(body, &pl)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	status := 0
	if s.fail != nil {
		status = s.fail(id, pl)
	}
	if status != 0 && status != http.StatusOK {
		w.WriteHeader(status)
		return
	}
	s.got[id]++
	s.order[pl.Key] = append(s.order[pl.Key], pl.Seq)
	s.bodies[id] = body
	w.WriteHeader(http.StatusOK)
}

// counts returns how many of ids were delivered, and the duplicates.
func (s *sink) counts(ids []string) (delivered, dups int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		if n := s.got[id]; n > 0 {
			delivered++
			dups += n - 1
		}
	}
	return delivered, dups
}

// flaky returns a fail function answering 500 to a fraction of requests,
// from a seeded source (called under the sink's lock).
func flaky(seed uint64, fraction float64) func(string, payload) int {
	rnd := rand.New(rand.NewPCG(seed, seed))
	return func(string, payload) int {
		if rnd.Float64() < fraction {
			return http.StatusInternalServerError
		}
		return 0
	}
}

// waitDelivered waits until every id reached s.
func waitDelivered(t *testing.T, s *sink, ids []string, timeout time.Duration) {
	t.Helper()
	ok := assert.Eventually(t, func() bool {
		n, _ := s.counts(ids)
		return n == len(ids)
	}, timeout, 20*time.Millisecond)
	if !ok {
		n, dups := s.counts(ids)
		s.mu.Lock()
		req := s.requests
		s.mu.Unlock()
		t.Fatalf("not every event was delivered: %d of %d (%d duplicates, %d requests)", n, len(ids), dups, req)
	}
}

// metric returns the sum of the values of the series of name whose labels
// include labels (counters, gauges; histograms give their sample count),
// and how many series matched.
func (e *testEnv) metric(name string, labels ...string) (float64, int) {
	e.t.Helper()
	mfs, err := e.reg.Gather()
	require.NoError(e.t, err)
	var sum float64
	var n int
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, lp := range m.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for i := 0; i+1 < len(labels); i += 2 {
				if have[labels[i]] != labels[i+1] {
					continue series
				}
			}
			n++
			switch {
			case m.GetCounter() != nil:
				sum += m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				sum += m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				sum += float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return sum, n
}

// value is metric without the series count.
func (e *testEnv) value(name string, labels ...string) float64 {
	v, _ := e.metric(name, labels...)
	return v
}

// testLogger discards logs unless SWITCHYARD_TEST_LOG is set.
func testLogger() *slog.Logger {
	if os.Getenv("SWITCHYARD_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// testClientOpts are the Kafka client options of test runners.
func testClientOpts() []kgo.Opt {
	opts := []kgo.Opt{kgo.FetchMaxWait(100 * time.Millisecond)}
	if os.Getenv("SWITCHYARD_TEST_KGO_LOG") != "" {
		opts = append(opts, kgo.WithLogger(kgo.BasicLogger(os.Stderr, kgo.LogLevelInfo, nil)))
	}
	return opts
}

// requestCount returns the requests received so far.
func (s *sink) requestCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}
