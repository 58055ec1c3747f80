package ingest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/switchyard-dev/switchyard/dataplane/snapshot"
	"github.com/switchyard-dev/switchyard/internal/apikey"
	"github.com/switchyard-dev/switchyard/internal/ids"
	"github.com/switchyard-dev/switchyard/internal/kafkaname"
	"github.com/switchyard-dev/switchyard/internal/testenv/kafkatest"
	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
	"github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1/switchyardv1connect"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testTimeout bounds every wait of a test.
const testTimeout = 30 * time.Second

// clock is a settable clock for Config.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// Names of the keys a fixture makes.
const (
	keyAdmin       = "admin"
	keyProducer    = "producer"
	keyScoped      = "scoped-to-payments"
	keyExpired     = "expired"
	keyRevoked     = "revoked"
	keyWrongSecret = "wrong-secret"
	keyOther       = "other-tenant-producer"
)

// fixture is a Service over Kafka with a snapshot of two tenants: "acme"
// (topics orders, payments, ghost — ghost has no Kafka topic) and "other"
// (a topic also named orders).
type fixture struct {
	t        testing.TB
	brokers  []string
	holder   *snapshot.Holder
	clock    *clock
	reg      *prometheus.Registry
	svc      *Service
	srv      *httptest.Server
	client   switchyardv1connect.IngestServiceClient
	tenantID string
	otherID  string
	orders   *v1.Topic
	payments *v1.Topic
	ghost    *v1.Topic
	otherTop *v1.Topic
	tokens   map[string]string
	creds    []*v1.ApiKeyCredential
	version  int64
	quotas   *v1.TenantQuotas
}

// fixtureOpts tune a fixture.
type fixtureOpts struct {
	brokers      []string
	quotas       *v1.TenantQuotas
	maxBatch     int
	producerOpts []kgo.Opt
	partitions   int32
	// realClock runs the Service on time.Now instead of the fixture's
	// settable clock.
	realClock bool
}

func newFixture(t testing.TB, o fixtureOpts) *fixture {
	t.Helper()
	if o.brokers == nil {
		o.brokers = kafkatest.NewFake(t)
	}
	if o.partitions == 0 {
		o.partitions = 3
	}
	f := &fixture{
		t:        t,
		brokers:  o.brokers,
		holder:   &snapshot.Holder{},
		clock:    &clock{t: time.Now().UTC().Truncate(time.Millisecond)},
		reg:      prometheus.NewRegistry(),
		tenantID: ids.New(ids.Tenant),
		otherID:  ids.New(ids.Tenant),
		tokens:   make(map[string]string),
		quotas:   o.quotas,
	}
	f.orders = &v1.Topic{Id: ids.New(ids.Topic), TenantId: f.tenantID, Name: "orders"}
	f.payments = &v1.Topic{Id: ids.New(ids.Topic), TenantId: f.tenantID, Name: "payments"}
	f.ghost = &v1.Topic{Id: ids.New(ids.Topic), TenantId: f.tenantID, Name: "ghost"}
	f.otherTop = &v1.Topic{Id: ids.New(ids.Topic), TenantId: f.otherID, Name: "orders"}

	hour := time.Hour
	f.addKey(keyAdmin, f.tenantID, v1.ApiKeyRole_API_KEY_ROLE_ADMIN, nil, 0, true)
	f.addKey(keyProducer, f.tenantID, v1.ApiKeyRole_API_KEY_ROLE_PRODUCER, nil, hour, true)
	f.addKey(keyScoped, f.tenantID, v1.ApiKeyRole_API_KEY_ROLE_PRODUCER, []string{f.payments.Id}, 0, true)
	f.addKey(keyExpired, f.tenantID, v1.ApiKeyRole_API_KEY_ROLE_PRODUCER, nil, -time.Second, true)
	f.addKey(keyRevoked, f.tenantID, v1.ApiKeyRole_API_KEY_ROLE_PRODUCER, nil, 0, false)
	f.addKey(keyOther, f.otherID, v1.ApiKeyRole_API_KEY_ROLE_PRODUCER, nil, 0, true)
	// A token naming the producer key's id with another secret.
	wrong, _, err := apikey.Generate(f.creds[1].Id)
	require.NoError(t, err)
	f.tokens[keyWrongSecret] = wrong
	f.publishSnapshot()

	adm := f.admin()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	for _, top := range []*v1.Topic{f.orders, f.payments, f.otherTop} {
		name := kafkaname.TenantTopic(top.TenantId, top.Id)
		resp, err := adm.CreateTopic(ctx, o.partitions, -1, nil, name)
		require.NoError(t, err)
		require.NoError(t, resp.Err)
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			_, _ = adm.DeleteTopic(ctx, name)
		})
	}

	producer, err := kgo.NewClient(append(NewProducerOpts(f.brokers), o.producerOpts...)...)
	require.NoError(t, err)
	t.Cleanup(producer.Close)
	now := f.clock.Now
	if o.realClock {
		now = time.Now
	}
	f.svc, err = New(Config{
		Snapshots: f.holder,
		Producer:  producer,
		Metrics:   NewMetrics(f.reg),
		MaxBatch:  o.maxBatch,
		Now:       now,
	})
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.Handle(f.svc.Handler())
	mux.Handle("/ce/", f.svc.CloudEventsHandler())
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	f.client = switchyardv1connect.NewIngestServiceClient(f.srv.Client(), f.srv.URL)
	return f
}

// admin returns an admin client of the fixture's Kafka, closed at cleanup.
func (f *fixture) admin() *kadm.Client {
	f.t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(f.brokers...))
	require.NoError(f.t, err)
	f.t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

// addKey makes a key; inSnapshot false leaves it out of the snapshot, as a
// revoked key is. expiresIn 0 means no expiry.
func (f *fixture) addKey(name, tenantID string, role v1.ApiKeyRole, topics []string, expiresIn time.Duration, inSnapshot bool) {
	id := ids.New(ids.APIKey)
	token, hash, err := apikey.Generate(id)
	require.NoError(f.t, err)
	f.tokens[name] = token
	cred := &v1.ApiKeyCredential{Id: id, TenantId: tenantID, Role: role, TopicIds: topics, SecretHash: hash}
	if expiresIn != 0 {
		cred.ExpireTime = timestamppb.New(f.clock.Now().Add(expiresIn))
	}
	if inSnapshot {
		f.creds = append(f.creds, cred)
	}
}

// publishSnapshot publishes a new snapshot version with the current quotas.
func (f *fixture) publishSnapshot() {
	f.version++
	raw := &v1.ConfigSnapshot{
		Version: f.version,
		Tenants: []*v1.Tenant{
			{Id: f.tenantID, Name: "acme", Quotas: f.quotas},
			{Id: f.otherID, Name: "other"},
		},
		Topics:  []*v1.Topic{f.orders, f.payments, f.ghost, f.otherTop},
		ApiKeys: f.creds,
	}
	require.True(f.t, f.holder.Set(snapshot.New(raw)))
}

// setQuotas changes acme's quotas through a new snapshot.
func (f *fixture) setQuotas(q *v1.TenantQuotas) {
	f.quotas = q
	f.publishSnapshot()
}

// publish calls Publish with the token of key and extra headers (pairs).
func (f *fixture) publish(key string, req *v1.PublishRequest, headers ...string) (*v1.PublishResponse, error) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	ctx, info := connect.NewClientContext(ctx)
	if key != "" {
		info.RequestHeader().Set("Authorization", "Bearer "+f.tokens[key])
	}
	for i := 0; i+1 < len(headers); i += 2 {
		info.RequestHeader().Set(headers[i], headers[i+1])
	}
	return f.client.Publish(ctx, req)
}

// kafkaTopic is the Kafka topic of top.
func kafkaTopic(top *v1.Topic) string { return kafkaname.TenantTopic(top.TenantId, top.Id) }

// consumeAll reads every record of a Kafka topic: it checks that the topic
// holds exactly want records (by its end offsets) and reads them all.
func consumeAll(t testing.TB, brokers []string, topic string, want int) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	admCl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	require.NoError(t, err)
	defer admCl.Close()
	ends, err := kadm.NewClient(admCl).ListEndOffsets(ctx, topic)
	require.NoError(t, err)
	require.NoError(t, ends.Error())
	var total int64
	ends.Each(func(o kadm.ListedOffset) { total += o.Offset })
	require.EqualValues(t, want, total, "records in %s", topic)
	if want == 0 {
		return nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	require.NoError(t, err)
	defer cl.Close()
	var recs []*kgo.Record
	for len(recs) < want {
		fs := cl.PollFetches(ctx)
		require.NoError(t, ctx.Err(), "consumed %d of %d records", len(recs), want)
		fs.EachError(func(_ string, _ int32, err error) { require.NoError(t, err) })
		recs = append(recs, fs.Records()...)
	}
	return recs
}

// counter returns the value of switchyard_ingest_events_total{result}.
func (f *fixture) counter(result string) float64 {
	f.t.Helper()
	mfs, err := f.reg.Gather()
	require.NoError(f.t, err)
	for _, mf := range mfs {
		if mf.GetName() != "switchyard_ingest_events_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == result {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	f.t.Fatalf("no events_total{result=%q}", result)
	return 0
}

// histogramCount returns the number of observations of
// switchyard_ingest_publish_seconds.
func (f *fixture) histogramCount() uint64 {
	f.t.Helper()
	mfs, err := f.reg.Gather()
	require.NoError(f.t, err)
	for _, mf := range mfs {
		if mf.GetName() == "switchyard_ingest_publish_seconds" {
			return mf.GetMetric()[0].GetHistogram().GetSampleCount()
		}
	}
	return 0
}

// event returns a valid event of type typ.
func event(id, typ string, data []byte) *v1.Event {
	return &v1.Event{Id: id, Source: "/test", Type: typ, Data: data}
}

// header returns the value of a record's header.
func header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// cloneEvents deep-copies events, since Publish fills defaults in place.
func cloneEvents(evs []*v1.Event) []*v1.Event {
	out := make([]*v1.Event, len(evs))
	for i, e := range evs {
		out[i] = proto.Clone(e).(*v1.Event)
	}
	return out
}
