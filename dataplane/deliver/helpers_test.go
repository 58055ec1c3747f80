package deliver_test

import (
	"crypto/rand"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/switchyard-dev/switchyard/dataplane/deliver"
	"github.com/switchyard-dev/switchyard/internal/netguard"
	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
)

// loopback allows the httptest servers tests talk to.
var loopback = netguard.Policy{AllowLoopback: true}

// newSecret returns a fresh signing secret.
func newSecret(t testing.TB) string {
	t.Helper()
	key := make([]byte, 32)
	_, err := rand.Read(key)
	require.NoError(t, err)
	return "whsec_" + base64.StdEncoding.EncodeToString(key)
}

// newWebhook builds a Webhook closed when the test ends.
func newWebhook(t testing.TB, cfg deliver.WebhookConfig) *deliver.Webhook {
	t.Helper()
	w, err := deliver.NewWebhook(cfg)
	require.NoError(t, err)
	t.Cleanup(w.Close)
	return w
}

// webhookDest is a webhook destination named name posting to url.
func webhookDest(name, url string) *v1.Destination {
	return &v1.Destination{
		Name: name,
		Kind: &v1.Destination_Webhook{Webhook: &v1.WebhookDestination{Url: url}},
	}
}

// withTimeout sets a webhook destination's timeout.
func withTimeout(d *v1.Destination, timeout time.Duration) *v1.Destination {
	d.GetWebhook().Timeout = durationpb.New(timeout)
	return d
}

// testEvent is a complete event with a JSON payload.
func testEvent(id string) *v1.Event {
	return &v1.Event{
		Id:     id,
		Source: "/orders",
		Type:   "com.example.order.created",
		Time:   timestamppb.New(time.Date(2026, 12, 3, 10, 4, 5, 123456789, time.UTC)),
		Data:   []byte(`{"order":"o-42","total":1299}`),
	}
}

// webhookReq is a delivery request of a test event to dest.
func webhookReq(dest *v1.Destination, secrets ...string) *deliver.Request {
	return &deliver.Request{
		TenantID:    "ten_test",
		PipelineID:  "pip_test",
		Destination: dest,
		Secrets:     secrets,
		Event:       testEvent("evt_1"),
		Attempt:     1,
	}
}

// captured is a request a capture server received.
type captured struct {
	header http.Header
	body   []byte
}

// captureServer answers every request with status and records it.
type captureServer struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []captured
	hits atomic.Int64
}

func newCaptureServer(t testing.TB, status int) *captureServer {
	t.Helper()
	cs := &captureServer{}
	cs.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		cs.mu.Lock()
		cs.reqs = append(cs.reqs, captured{header: r.Header.Clone(), body: body})
		cs.mu.Unlock()
		cs.hits.Add(1)
		w.WriteHeader(status)
	}))
	t.Cleanup(cs.Close)
	return cs
}

func (cs *captureServer) last(t testing.TB) captured {
	t.Helper()
	cs.mu.Lock()
	defer cs.mu.Unlock()
	require.NotEmpty(t, cs.reqs, "the server received no request")
	return cs.reqs[len(cs.reqs)-1]
}

// metricValue returns the value of the series of metric name with labels,
// and whether it exists.
func metricValue(t testing.TB, reg *prometheus.Registry, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, lp := range m.GetLabel() {
				got[lp.GetName()] = lp.GetValue()
			}
			for k, v := range labels {
				if got[k] != v {
					continue series
				}
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue(), true
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue(), true
			case m.GetHistogram() != nil:
				return float64(m.GetHistogram().GetSampleCount()), true
			}
		}
	}
	return 0, false
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// kafkaDest is a Kafka destination named name producing to topic.
func kafkaDest(name, topic string) *v1.Destination {
	return &v1.Destination{
		Name: name,
		Kind: &v1.Destination_Kafka{Kafka: &v1.KafkaDestination{Topic: topic}},
	}
}
