package e2e

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/switchyard-dev/switchyard/controlplane"
	"github.com/switchyard-dev/switchyard/controlplane/ledger"
	"github.com/switchyard-dev/switchyard/controlplane/store/pgstore"
	"github.com/switchyard-dev/switchyard/dataplane"
	"github.com/switchyard-dev/switchyard/dataplane/pipeline"
	"github.com/switchyard-dev/switchyard/internal/ids"
	"github.com/switchyard-dev/switchyard/internal/kafkaname"
	"github.com/switchyard-dev/switchyard/internal/netguard"
	"github.com/switchyard-dev/switchyard/internal/testenv/kafkatest"
	"github.com/switchyard-dev/switchyard/internal/testenv/pgtest"
	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
	"github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1/switchyardv1connect"
)

const (
	operatorToken = "e2e-operator-token-0123456789abcdef"
	nodeToken     = "e2e-node-token-0123456789abcdef"
)

var schema = pgtest.Template{Name: "controlplane", Setup: pgstore.Migrate}

func TestMain(m *testing.M) {
	pgtest.Main(m)
}

// env is a control plane over its own database, a region on the real Kafka
// broker, a tenant with a producer key, and operator clients.
type env struct {
	t           *testing.T
	brokers     []string
	cpURL       string
	region      *v1.Region
	tenant      *v1.Tenant
	producerKey string
	// ns makes retry-tier topics and groups unique to the test.
	ns    string
	tiers []pipeline.Tier

	// dsn and pool are the control plane's database.
	dsn  string
	pool *pgxpool.Pool
	// ledger runs beside the control plane when envOptions.ledger is set.
	ledger *ledger.Ledger

	topics    switchyardv1connect.TopicServiceClient
	events    switchyardv1connect.EventServiceClient
	pipelines switchyardv1connect.PipelineServiceClient
	keys      switchyardv1connect.ApiKeyServiceClient
	hc        *http.Client
}

// envOptions vary an env.
type envOptions struct {
	// webhookPolicy is the control plane's: which webhook URLs it accepts.
	webhookPolicy netguard.Policy
	// maxEventBytes is the tenant's payload quota; 0 means the default.
	maxEventBytes uint32
	// ledger runs the delivery ledger beside the control plane, as the
	// server does, in a consumer group of the test's own that starts at
	// the ack log's current end (the shared broker's log holds other
	// tests' acks).
	ledger bool
}

func newEnv(t *testing.T, opts envOptions) *env {
	t.Helper()
	brokers := kafkatest.RealBrokers(t)
	ctx := t.Context()

	dsn := pgtest.NewDB(t, schema)
	pool, err := pgxpool.New(ctx, dsn)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	cp, err := controlplane.New(controlplane.Config{
		Store:         pgstore.New(pool),
		OperatorToken: operatorToken,
		NodeToken:     nodeToken,
		Logger:        testLogger(t, slog.LevelWarn),
		WebhookPolicy: opts.webhookPolicy,
		Events:        ledger.NewReader(pool),
	})
	require.NoError(t, err)
	hs := httptest.NewUnstartedServer(cp.Handler())
	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	hs.Config.Protocols = protocols
	hs.Start()
	t.Cleanup(hs.Close)
	t.Cleanup(cp.Close) // runs first: ends the config streams

	hc := &http.Client{Transport: &http.Transport{}, Timeout: 30 * time.Second}
	t.Cleanup(hc.CloseIdleConnections)
	auth := connect.WithInterceptors(bearer(operatorToken))
	e := &env{
		t: t, brokers: brokers, cpURL: hs.URL, hc: hc, dsn: dsn, pool: pool,
		topics:    switchyardv1connect.NewTopicServiceClient(hc, hs.URL, auth),
		events:    switchyardv1connect.NewEventServiceClient(hc, hs.URL, auth),
		pipelines: switchyardv1connect.NewPipelineServiceClient(hc, hs.URL, auth),
		keys:      switchyardv1connect.NewApiKeyServiceClient(hc, hs.URL, auth),
	}
	regions := switchyardv1connect.NewRegionServiceClient(hc, hs.URL, auth)
	tenants := switchyardv1connect.NewTenantServiceClient(hc, hs.URL, auth)

	reg, err := regions.CreateRegion(ctx, &v1.CreateRegionRequest{Region: &v1.Region{Name: "e2e", KafkaBrokers: brokers}})
	require.NoError(t, err)
	e.region = reg.GetRegion()
	ten, err := tenants.CreateTenant(ctx, &v1.CreateTenantRequest{Tenant: &v1.Tenant{
		Name: "acme", DefaultRegionId: e.region.GetId(),
		Quotas: &v1.TenantQuotas{EventsPerSecond: 1_000_000, Burst: 1_000_000, MaxEventBytes: opts.maxEventBytes},
	}})
	require.NoError(t, err)
	e.tenant = ten.GetTenant()
	key, err := e.keys.CreateApiKey(ctx, &v1.CreateApiKeyRequest{TenantId: e.tenant.GetId(), ApiKey: &v1.ApiKey{
		Name: "producer", Role: v1.ApiKeyRole_API_KEY_ROLE_PRODUCER,
	}})
	require.NoError(t, err)
	e.producerKey = key.GetSecret()

	// Short retry tiers, unique to this test: a shared broker must not mix
	// the retries of two tests.
	id := ids.New("x") // time-ordered: its random part is the end
	e.ns = "e2e" + strings.ToLower(id[len(id)-12:])
	for _, d := range []time.Duration{200 * time.Millisecond, time.Second, 3 * time.Second} {
		e.tiers = append(e.tiers, pipeline.Tier{Delay: d, Topic: kafkaname.RetryTopic(d) + "." + e.ns, Group: kafkaname.RetryGroup(d) + "." + e.ns})
	}
	t.Cleanup(e.cleanupKafka)
	if opts.ledger {
		e.startLedger()
	}
	return e
}

// startLedger runs the delivery ledger over the env's database until the
// test ends. Its consumer group is the test's own and starts at the ack
// log's current end.
func (e *env) startLedger() {
	e.t.Helper()
	ctx := e.t.Context()
	group := ledger.DefaultGroup + "." + e.ns
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.brokers...))
	require.NoError(e.t, err)
	defer cl.Close()
	adm := kadm.NewClient(cl)
	// The topic the nodes provision, made here first when the broker is new.
	if _, err := adm.CreateTopic(ctx, 8, -1, nil, kafkaname.AckLogTopic); err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		require.NoError(e.t, err)
	}
	ends, err := adm.ListEndOffsets(ctx, kafkaname.AckLogTopic)
	require.NoError(e.t, err)
	require.NoError(e.t, ends.Error())
	offsets := make(kadm.Offsets)
	ends.Each(func(o kadm.ListedOffset) {
		offsets.Add(kadm.Offset{Topic: o.Topic, Partition: o.Partition, At: o.Offset, LeaderEpoch: -1})
	})
	committed, err := adm.CommitOffsets(ctx, group, offsets)
	require.NoError(e.t, err)
	require.NoError(e.t, committed.Error())

	l, err := ledger.New(ledger.Config{
		Pool:           e.pool,
		Regions:        pgstore.New(e.pool),
		Group:          group,
		RegionInterval: time.Second,
		KafkaOpts:      []kgo.Opt{kgo.SessionTimeout(6 * time.Second)},
		Registry:       prometheus.NewRegistry(),
		Logger:         testLogger(e.t, nodeLogLevel()),
	})
	require.NoError(e.t, err)
	e.ledger = l
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 1)
	go func() { done <- l.Run(runCtx) }()
	e.t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				e.t.Errorf("ledger: %v", err)
			}
		case <-time.After(30 * time.Second):
			e.t.Errorf("ledger did not stop within 30s")
		}
	})
}

// cleanupKafka deletes the test's topics and consumer groups from the
// shared broker.
func (e *env) cleanupKafka() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.brokers...))
	if err != nil {
		return
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	prefix := kafkaname.Prefix + e.tenant.GetId() + "."
	mine := func(name string) bool { return strings.HasPrefix(name, prefix) || strings.HasSuffix(name, "."+e.ns) }
	if groups, err := adm.ListGroups(ctx); err == nil {
		var names []string
		for _, g := range groups.Groups() {
			if mine(g) {
				names = append(names, g)
			}
		}
		if len(names) > 0 {
			_, _ = adm.DeleteGroups(ctx, names...)
		}
	}
	if topics, err := adm.ListTopics(ctx); err == nil {
		var names []string
		for _, name := range topics.Names() {
			if mine(name) {
				names = append(names, name)
			}
		}
		if len(names) > 0 {
			_, _ = adm.DeleteTopics(ctx, names...)
		}
	}
}

// createTopic creates a topic of the tenant.
func (e *env) createTopic(name string, partitions uint32) *v1.Topic {
	e.t.Helper()
	res, err := e.topics.CreateTopic(e.t.Context(), &v1.CreateTopicRequest{TenantId: e.tenant.GetId(), Topic: &v1.Topic{
		Name: name, Partitions: partitions, RegionId: e.region.GetId(),
	}})
	require.NoError(e.t, err)
	return res.GetTopic()
}

// createPipeline creates a pipeline of the tenant and returns it with its
// webhook secrets (as the create response shows them, once).
func (e *env) createPipeline(p *v1.Pipeline) *v1.Pipeline {
	e.t.Helper()
	res, err := e.pipelines.CreatePipeline(e.t.Context(), &v1.CreatePipelineRequest{TenantId: e.tenant.GetId(), Pipeline: p})
	require.NoError(e.t, err)
	return res.GetPipeline()
}

// fastRetries is a retry policy for tests: attempts every 50-400 ms.
func fastRetries(maxAttempts uint32) *v1.RetryPolicy {
	return &v1.RetryPolicy{
		MaxAttempts:    maxAttempts,
		InitialBackoff: durationpb.New(50 * time.Millisecond),
		MaxBackoff:     durationpb.New(400 * time.Millisecond),
		Jitter:         v1.Jitter_JITTER_EQUAL,
		MaxAge:         durationpb.New(10 * time.Minute),
	}
}

// webhook is a destination to url.
func webhook(name, url string, maxInFlight uint32) *v1.Destination {
	return &v1.Destination{
		Name:        name,
		Kind:        &v1.Destination_Webhook{Webhook: &v1.WebhookDestination{Url: url, Timeout: durationpb.New(5 * time.Second)}},
		MaxInFlight: maxInFlight,
	}
}

// startNode runs an in-process data-plane node for the env's region until
// the test ends, and waits until it serves.
func (e *env) startNode(policy netguard.Policy) *dataplane.Node {
	e.t.Helper()
	return e.startNodeWith(dataplane.Config{WebhookPolicy: policy})
}

// startNodeWith is startNode with cfg's breaker settings and policy.
func (e *env) startNodeWith(cfg dataplane.Config) *dataplane.Node {
	e.t.Helper()
	node, err := dataplane.New(dataplane.Config{
		ControlPlaneURL:  e.cpURL,
		Token:            nodeToken,
		Region:           e.region.GetName(),
		Listen:           "127.0.0.1:0",
		Hostname:         "e2e-" + e.ns,
		WebhookPolicy:    cfg.WebhookPolicy,
		BreakerThreshold: cfg.BreakerThreshold,
		BreakerCooldown:  cfg.BreakerCooldown,
		Tiers:            e.tiers,
		KafkaOpts:        []kgo.Opt{kgo.SessionTimeout(6 * time.Second)},
		Logger:           testLogger(e.t, nodeLogLevel()),
		Registry:         prometheus.NewRegistry(),
	})
	require.NoError(e.t, err)
	ctx, cancel := context.WithCancel(context.WithoutCancel(e.t.Context()))
	done := make(chan error, 1)
	go func() { done <- node.Run(ctx) }()
	e.t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				e.t.Errorf("data-plane node: %v", err)
			}
		case <-time.After(45 * time.Second):
			e.t.Errorf("data-plane node did not stop within 45s")
		}
	})
	select {
	case <-node.Ready():
	case err := <-done:
		e.t.Fatalf("data-plane node stopped during start-up: %v", err)
	case <-time.After(30 * time.Second):
		e.t.Fatal("data-plane node not ready within 30s")
	}
	return node
}

// ingestClient returns an IngestService client of the node at addr with
// token.
func (e *env) ingestClient(addr, token string) switchyardv1connect.IngestServiceClient {
	return switchyardv1connect.NewIngestServiceClient(e.hc, "http://"+addr, connect.WithInterceptors(bearer(token)))
}

// publishAll publishes events to topic in batches of batch and fails the
// test on any error. It returns how long it took.
func (e *env) publishAll(ctx context.Context, ing switchyardv1connect.IngestServiceClient, topic string, events []*v1.Event, batch int) time.Duration {
	e.t.Helper()
	start := time.Now()
	for i := 0; i < len(events); i += batch {
		chunk := events[i:min(i+batch, len(events))]
		res, err := ing.Publish(ctx, &v1.PublishRequest{Topic: topic, Events: chunk})
		require.NoError(e.t, err)
		require.Len(e.t, res.GetResults(), len(chunk))
		for j, r := range res.GetResults() {
			require.Nil(e.t, r.GetError(), "event %d: %v", i+j, r.GetError())
			require.Equal(e.t, chunk[j].GetId(), r.GetEventId())
		}
	}
	return time.Since(start)
}

// sink is a webhook receiver that records every event it accepts.
type sink struct {
	srv *httptest.Server
	// respond decides the answer to a request: 0 or 2xx accepts it.
	respond func(id string, body []byte) int
	// check validates an accepted request; its errors fail the test.
	check func(r *http.Request, body []byte) error
	// delay is waited before answering.
	delay time.Duration
	// secret verifies webhook signatures when set.
	secret string

	requests atomic.Int64
	mu       sync.Mutex
	attempts map[string]int // requests per event id, whatever the answer
	counts   map[string]int // accepted deliveries per event id
	order    []string       // accepted event ids, in order of arrival
	errs     []string
}

func newSink(t *testing.T) *sink {
	s := &sink{counts: make(map[string]int), attempts: make(map[string]int)}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	t.Cleanup(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		for i, e := range s.errs {
			if i == 10 {
				t.Errorf("sink: %d more errors", len(s.errs)-10)
				break
			}
			t.Errorf("sink: %s", e)
		}
	})
	return s
}

// attemptsPerID returns a copy of the number of requests per event id.
func (s *sink) attemptsPerID() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.attempts))
	for id, n := range s.attempts {
		out[id] = n
	}
	return out
}

func (s *sink) url() string { return s.srv.URL + "/hook" }

func (s *sink) serve(w http.ResponseWriter, r *http.Request) {
	s.requests.Add(1)
	body, err := io.ReadAll(r.Body)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	id := r.Header.Get("Webhook-Id")
	s.mu.Lock()
	s.attempts[id]++
	s.mu.Unlock()
	if s.delay > 0 {
		select {
		case <-time.After(s.delay):
		case <-r.Context().Done():
			return
		}
	}
	code := http.StatusNoContent
	if s.respond != nil {
		if c := s.respond(id, body); c != 0 {
			code = c
		}
	}
	if code/100 == 2 {
		var problems []string
		if id == "" || r.Header.Get("Ce-Id") != id {
			problems = append(problems, fmt.Sprintf("webhook-id %q, ce-id %q", id, r.Header.Get("Ce-Id")))
		}
		if s.secret != "" {
			if err := verifySignature(s.secret, r.Header, body); err != nil {
				problems = append(problems, fmt.Sprintf("event %s: %v", id, err))
			}
		}
		if s.check != nil {
			if err := s.check(r, body); err != nil {
				problems = append(problems, fmt.Sprintf("event %s: %v", id, err))
			}
		}
		s.mu.Lock()
		s.counts[id]++
		s.order = append(s.order, id)
		s.errs = append(s.errs, problems...)
		s.mu.Unlock()
	}
	w.WriteHeader(code)
}

// tally counts what the sink accepted of the expected ids: unique ones,
// duplicate deliveries, ids missing (lost) and ids it should not have got.
type tally struct {
	expected, unique, duplicates, missing, unexpected int
}

func (t tally) String() string {
	return fmt.Sprintf("expected=%d delivered_unique=%d lost=%d duplicates=%d unexpected=%d",
		t.expected, t.unique, t.missing, t.duplicates, t.unexpected)
}

func (s *sink) tally(expected map[string]bool) tally {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := tally{expected: len(expected)}
	for id, n := range s.counts {
		if !expected[id] {
			t.unexpected++
			continue
		}
		t.unique++
		t.duplicates += n - 1
	}
	t.missing = t.expected - t.unique
	return t
}

// waitAll waits until the sink has every expected id, or fails after
// timeout reporting the tally.
func (s *sink) waitAll(t *testing.T, name string, expected map[string]bool, timeout time.Duration) tally {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := s.tally(expected)
		if got.missing == 0 {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not every event arrived within %v: %s (requests %d)", name, timeout, got, s.requests.Load())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// verifySignature checks a Standard Webhooks signature: one of the
// space-separated "v1,<base64>" entries of webhook-signature must be the
// HMAC-SHA256, keyed by the secret's bytes, of "<id>.<timestamp>.<body>".
func verifySignature(secret string, h http.Header, body []byte) error {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return fmt.Errorf("secret: %w", err)
	}
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "%s.%s.", h.Get("Webhook-Id"), h.Get("Webhook-Timestamp"))
	mac.Write(body)
	want := mac.Sum(nil)
	for _, sig := range strings.Fields(h.Get("Webhook-Signature")) {
		v, b64, ok := strings.Cut(sig, ",")
		if !ok || v != "v1" {
			continue
		}
		if got, err := base64.StdEncoding.DecodeString(b64); err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return errors.New("no valid webhook signature")
}

// secretOf returns the signing secret of a pipeline's webhook destination
// from its create response.
func secretOf(p *v1.Pipeline, dest string) string {
	for _, d := range p.GetDestinations() {
		if d.GetName() == dest {
			return d.GetWebhook().GetSigningSecret()
		}
	}
	return ""
}

// bearer adds an Authorization header to every call.
type bearer string

func (b bearer) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		req.Header().Set("Authorization", "Bearer "+string(b))
		return next(ctx, req)
	}
}

func (b bearer) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return func(ctx context.Context, spec connect.Spec) connect.StreamingClientConn {
		conn := next(ctx, spec)
		conn.RequestHeader().Set("Authorization", "Bearer "+string(b))
		return conn
	}
}

func (b bearer) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}

// nodeLogLevel is the level of the in-process nodes' logs: warn, or
// SWITCHYARD_E2E_LOG_LEVEL (debug, info, warn, error) when set.
func nodeLogLevel() slog.Level {
	lvl := slog.LevelWarn
	if v := os.Getenv("SWITCHYARD_E2E_LOG_LEVEL"); v != "" {
		_ = lvl.UnmarshalText([]byte(v))
	}
	return lvl
}

// testLogger logs at level and above to the test's log.
func testLogger(t *testing.T, level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(testLogWriter{t}, &slog.HandlerOptions{Level: level}))
}

type testLogWriter struct{ t *testing.T }

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// consumeDeadLetters reads n records from a dead-letter topic (from its
// start), or fails after timeout.
func consumeDeadLetters(t *testing.T, brokers []string, topic string, n int, timeout time.Duration) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	require.NoError(t, err)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("dead-letter topic %s: %d of %d records within %v", topic, len(out), n, timeout)
		}
		fs.EachRecord(func(r *kgo.Record) { out = append(out, r) })
	}
	return out
}

// header returns a record header's value.
func header(r *kgo.Record, key string) string {
	for i := len(r.Headers) - 1; i >= 0; i-- {
		if r.Headers[i].Key == key {
			return string(r.Headers[i].Value)
		}
	}
	return ""
}
