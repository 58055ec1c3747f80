package ingest

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"connectrpc.com/connect"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/genproto/googleapis/rpc/errdetails"

	"github.com/switchyard-dev/switchyard/dataplane/record"
	"github.com/switchyard-dev/switchyard/dataplane/snapshot"
	"github.com/switchyard-dev/switchyard/internal/kafkaname"
	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
	"github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1/switchyardv1connect"
)

func TestNewChecksConfig(t *testing.T) {
	t.Parallel()
	_, err := New(Config{})
	require.ErrorContains(t, err, "Snapshots is required")
	require.ErrorContains(t, err, "Producer is required")

	cl, err := kgo.NewClient(kgo.SeedBrokers("127.0.0.1:1"))
	require.NoError(t, err)
	defer cl.Close()
	_, err = New(Config{Snapshots: &snapshot.Holder{}, Producer: cl, MaxBatch: MaxBatchLimit + 1})
	require.ErrorContains(t, err, "MaxBatch")
	svc, err := New(Config{Snapshots: &snapshot.Holder{}, Producer: cl})
	require.NoError(t, err)
	require.Equal(t, DefaultMaxBatch, svc.maxBatch)
	path, h := svc.Handler()
	require.Equal(t, "/switchyard.v1.IngestService/", path)
	require.NotNil(t, h)
}

func TestPublishAuthMatrix(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	cases := []struct {
		name     string
		header   string // Authorization; "key:<name>" uses a fixture key
		tenantID string
		topic    string
		want     connect.Code // 0: success
	}{
		{name: "none", header: "", topic: "orders", want: connect.CodeUnauthenticated},
		{name: "garbage", header: "Bearer not-a-key", topic: "orders", want: connect.CodeUnauthenticated},
		{name: "not bearer", header: "Basic " + f.tokens[keyProducer], topic: "orders", want: connect.CodeUnauthenticated},
		{name: "wrong secret", header: "key:" + keyWrongSecret, topic: "orders", want: connect.CodeUnauthenticated},
		{name: "revoked", header: "key:" + keyRevoked, topic: "orders", want: connect.CodeUnauthenticated},
		{name: "expired", header: "key:" + keyExpired, topic: "orders", want: connect.CodeUnauthenticated},
		{name: "producer scoped to another topic", header: "key:" + keyScoped, topic: "orders", want: connect.CodePermissionDenied},
		{name: "producer scoped to the topic", header: "key:" + keyScoped, topic: "payments"},
		{name: "producer", header: "key:" + keyProducer, topic: "orders"},
		{name: "producer by topic id", header: "key:" + keyProducer, topic: f.orders.Id},
		{name: "admin of the tenant", header: "key:" + keyAdmin, topic: "orders"},
		{name: "admin naming its tenant", header: "key:" + keyAdmin, tenantID: f.tenantID, topic: "orders"},
		{name: "another tenant named", header: "key:" + keyProducer, tenantID: f.otherID, topic: "orders", want: connect.CodeNotFound},
		{name: "another tenant's topic id", header: "key:" + keyOther, topic: f.orders.Id, want: connect.CodeNotFound},
	}
	stored := map[string]int{}
	for _, tc := range cases {
		header := tc.header
		if name, ok := strings.CutPrefix(header, "key:"); ok {
			header = "Bearer " + f.tokens[name]
		}
		var hdrs []string
		if header != "" {
			hdrs = []string{"Authorization", header}
		}
		resp, err := f.publish("", &v1.PublishRequest{
			TenantId: tc.tenantID,
			Topic:    tc.topic,
			Events:   []*v1.Event{event("", "auth.test", []byte(tc.name))},
		}, hdrs...)
		if tc.want != 0 {
			require.Error(t, err, tc.name)
			require.Equal(t, tc.want, connect.CodeOf(err), "%s: %v", tc.name, err)
			if tc.want == connect.CodeUnauthenticated && header != "" {
				require.Contains(t, err.Error(), msgInvalidToken, tc.name)
			}
			continue
		}
		require.NoError(t, err, tc.name)
		require.Len(t, resp.GetResults(), 1, tc.name)
		require.Nil(t, resp.GetResults()[0].GetError(), tc.name)
		require.NotEmpty(t, resp.GetResults()[0].GetEventId(), tc.name)
		switch tc.topic {
		case "payments":
			stored[f.payments.Id]++
		default:
			stored[f.orders.Id]++
		}
	}
	// Exactly the accepted events are in Kafka; nothing reached the other
	// tenant's topic.
	consumeAll(t, f.brokers, kafkaTopic(f.orders), stored[f.orders.Id])
	consumeAll(t, f.brokers, kafkaTopic(f.payments), stored[f.payments.Id])
	consumeAll(t, f.brokers, kafkaTopic(f.otherTop), 0)
	require.EqualValues(t, 7, f.counter("unauthorized")) // 6 unauthenticated, 1 permission denied
	require.EqualValues(t, 2, f.counter("unknown_topic"))
	require.EqualValues(t, 5, f.counter("accepted"))
}

func TestPublishPerEventErrors(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{quotas: &v1.TenantQuotas{MaxEventBytes: 1024}})
	const traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	events := []*v1.Event{
		{Id: "ev-0", Source: "/shop", Type: "order.created", Subject: "order/1", DataContentType: "application/json",
			DataSchema: "https://example.com/order.json", Extensions: map[string]string{"region": "eu"},
			PartitionKey: "customer-1", Data: []byte(`{"total":3}`)},
		{Id: "ev-1", Type: "order.created"}, // no source
		event("ev-2", "order.created", bytes.Repeat([]byte("x"), 1025)),
		{Source: "/shop", Type: "order.paid"}, // id and time filled in
		{Id: "ev-4", Source: "/shop", Type: "order.created", Extensions: map[string]string{"time": "now"}},
		{Id: "ev-5", Source: "/shop", Type: "order.created", Extensions: map[string]string{"Bad-Name": "x"}},
		event("ev-6", "order.created", bytes.Repeat([]byte("y"), 1024)),
	}
	sent := cloneEvents(events)
	resp, err := f.publish(keyProducer, &v1.PublishRequest{Topic: "orders", Events: events},
		"traceparent", traceparent, "tracestate", "vendor=abc")
	require.NoError(t, err)
	res := resp.GetResults()
	require.Len(t, res, len(events))

	wantErr := map[int]string{1: codeInvalidArgument, 2: codeResourceExhausted, 4: codeInvalidArgument, 5: codeInvalidArgument}
	for i, r := range res {
		if code, ok := wantErr[i]; ok {
			require.NotNil(t, r.GetError(), "event %d", i)
			require.Equal(t, code, r.GetError().GetCode(), "event %d: %s", i, r.GetError().GetMessage())
			require.Equal(t, sent[i].GetId(), r.GetEventId(), "event %d", i)
			continue
		}
		require.Nil(t, r.GetError(), "event %d", i)
	}
	require.Contains(t, res[1].GetError().GetMessage(), "source")
	require.Contains(t, res[2].GetError().GetMessage(), "1025 bytes")
	require.Contains(t, res[4].GetError().GetMessage(), "core attribute")
	require.Contains(t, res[5].GetError().GetMessage(), "extensions")
	assigned := res[3].GetEventId()
	require.Regexp(t, `^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`, assigned)

	recs := consumeAll(t, f.brokers, kafkaTopic(f.orders), 3)
	byID := map[string]*kgo.Record{}
	for _, r := range recs {
		byID[header(r, kafkaname.HeaderCEPrefix+"id")] = r
		require.Equal(t, traceparent, header(r, kafkaname.HeaderTraceparent))
		require.Equal(t, "vendor=abc", header(r, kafkaname.HeaderTracestate))
		require.Equal(t, f.tenantID, header(r, kafkaname.HeaderTenant))
		require.Equal(t, f.orders.Id, header(r, kafkaname.HeaderTopic))
	}
	require.ElementsMatch(t, []string{"ev-0", assigned, "ev-6"}, keys(byID))
	for i, id := range map[int]string{0: "ev-0", 3: assigned, 6: "ev-6"} {
		r := byID[id]
		require.Equal(t, res[i].GetPartition(), r.Partition, id)
		require.Equal(t, res[i].GetOffset(), r.Offset, id)
	}

	r0 := byID["ev-0"]
	require.Equal(t, "customer-1", string(r0.Key))
	d, err := record.Decode(r0)
	require.NoError(t, err)
	require.Equal(t, "/shop", d.Event.GetSource())
	require.Equal(t, "order/1", d.Event.GetSubject())
	require.Equal(t, "application/json", d.Event.GetDataContentType())
	require.Equal(t, "https://example.com/order.json", d.Event.GetDataSchema())
	require.Equal(t, map[string]string{"region": "eu"}, d.Event.GetExtensions())
	require.Equal(t, `{"total":3}`, string(d.Event.GetData()))

	r3 := byID[assigned]
	require.Equal(t, assigned, string(r3.Key), "an event without a partition key is keyed by its id")
	d, err = record.Decode(r3)
	require.NoError(t, err)
	require.True(t, f.clock.Now().Equal(d.Event.GetTime().AsTime()), "time defaults to now")
	require.Equal(t, "order.paid", d.Event.GetType())

	require.EqualValues(t, 3, f.counter("accepted"))
	require.EqualValues(t, 3, f.counter("invalid"))
	require.EqualValues(t, 1, f.counter("too_large"))
	require.EqualValues(t, 1, f.histogramCount())
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestPublishFreshTraceparent(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	for _, tp := range []string{"", "garbage", "00-00000000000000000000000000000000-b7ad6b7169203331-01"} {
		var hdrs []string
		if tp != "" {
			hdrs = []string{"traceparent", tp}
		}
		_, err := f.publish(keyProducer, &v1.PublishRequest{Topic: "orders",
			Events: []*v1.Event{event("", "t", nil), event("", "t", nil)}}, hdrs...)
		require.NoError(t, err)
	}
	recs := consumeAll(t, f.brokers, kafkaTopic(f.orders), 6)
	perTrace := map[string]int{}
	for _, r := range recs {
		tp := header(r, kafkaname.HeaderTraceparent)
		got, ok := parseTraceparent(tp)
		require.True(t, ok, tp)
		require.Equal(t, tp, got)
		require.Empty(t, header(r, kafkaname.HeaderTracestate))
		perTrace[tp]++
	}
	// One fresh trace per request, shared by its events.
	require.Len(t, perTrace, 3)
	for _, n := range perTrace {
		require.Equal(t, 2, n)
	}
}

func TestPublishRateLimit(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{quotas: &v1.TenantQuotas{EventsPerSecond: 1, Burst: 5}})
	batch := func(n int) *v1.PublishRequest {
		evs := make([]*v1.Event, n)
		for i := range evs {
			evs[i] = event("", "rate.test", nil)
		}
		return &v1.PublishRequest{Topic: "orders", Events: evs}
	}
	_, err := f.publish(keyProducer, batch(3))
	require.NoError(t, err)

	// 2 tokens left at 1/s: 3 more events fit in 1 s.
	_, err = f.publish(keyProducer, batch(3))
	require.Equal(t, connect.CodeResourceExhausted, connect.CodeOf(err), "%v", err)
	require.Equal(t, time.Second, retryDelay(t, err))
	require.EqualValues(t, 3, f.counter("rate_limited"))

	// Invalid events cost nothing: a batch of 2 good events and a bad one fits.
	req := batch(3)
	req.Events[1].Type = ""
	resp, err := f.publish(keyProducer, req)
	require.NoError(t, err)
	require.Nil(t, resp.GetResults()[0].GetError())
	require.NotNil(t, resp.GetResults()[1].GetError())
	require.Nil(t, resp.GetResults()[2].GetError())

	f.clock.Advance(2 * time.Second)
	_, err = f.publish(keyProducer, batch(2))
	require.NoError(t, err)

	// A batch larger than the burst never fits: no RetryInfo, a QuotaFailure.
	_, err = f.publish(keyProducer, batch(6))
	require.Equal(t, connect.CodeResourceExhausted, connect.CodeOf(err))
	require.Contains(t, err.Error(), "burst of 5")
	var ce *connect.Error
	require.True(t, errors.As(err, &ce))
	var sawQuota bool
	for _, d := range ce.Details() {
		v, derr := d.Value()
		require.NoError(t, derr)
		_, isRetry := v.(*errdetails.RetryInfo)
		require.False(t, isRetry)
		_, sawQuota = v.(*errdetails.QuotaFailure)
	}
	require.True(t, sawQuota)

	// Raising the quota rebuilds the bucket at once.
	f.setQuotas(&v1.TenantQuotas{EventsPerSecond: 1, Burst: 10})
	_, err = f.publish(keyProducer, batch(6))
	require.NoError(t, err)
	_, err = f.publish(keyProducer, batch(6))
	require.Equal(t, connect.CodeResourceExhausted, connect.CodeOf(err))
	require.Equal(t, 2*time.Second, retryDelay(t, err))

	// Other tenants have their own bucket.
	_, err = f.publish(keyOther, batch(6))
	require.NoError(t, err)

	consumeAll(t, f.brokers, kafkaTopic(f.orders), 3+2+2+6)
}

// retryDelay returns the RetryInfo delay of a Connect error.
func retryDelay(t *testing.T, err error) time.Duration {
	t.Helper()
	var ce *connect.Error
	require.True(t, errors.As(err, &ce), "%v", err)
	for _, d := range ce.Details() {
		v, derr := d.Value()
		require.NoError(t, derr)
		if ri, ok := v.(*errdetails.RetryInfo); ok {
			return ri.GetRetryDelay().AsDuration()
		}
	}
	t.Fatalf("no RetryInfo in %v", err)
	return 0
}

func TestPublishUnknownTopic(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	for _, topic := range []string{"nope", "top_00000000000000000000000000", f.otherTop.Id} {
		_, err := f.publish(keyAdmin, &v1.PublishRequest{Topic: topic, Events: []*v1.Event{event("", "t", nil), event("", "t", nil)}})
		require.Equal(t, connect.CodeNotFound, connect.CodeOf(err), topic)
		require.Contains(t, err.Error(), topic)
	}
	require.EqualValues(t, 6, f.counter("unknown_topic"))
	consumeAll(t, f.brokers, kafkaTopic(f.orders), 0)
	consumeAll(t, f.brokers, kafkaTopic(f.otherTop), 0)
}

func TestPublishValidation(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{maxBatch: 2, quotas: &v1.TenantQuotas{MaxEventBytes: 1024}})

	// Request-level rules apply to the whole request.
	_, err := f.publish(keyProducer, &v1.PublishRequest{Topic: "", Events: []*v1.Event{event("", "t", nil)}})
	require.Equal(t, connect.CodeInvalidArgument, connect.CodeOf(err))
	requireViolation(t, err, "topic")
	_, err = f.publish(keyProducer, &v1.PublishRequest{Topic: "orders"})
	require.Equal(t, connect.CodeInvalidArgument, connect.CodeOf(err))
	requireViolation(t, err, "events")
	_, err = f.publish(keyProducer, &v1.PublishRequest{TenantId: "bad", Topic: "orders", Events: []*v1.Event{event("", "t", nil)}})
	require.Equal(t, connect.CodeInvalidArgument, connect.CodeOf(err))

	// MaxBatch below the API's limit.
	_, err = f.publish(keyProducer, &v1.PublishRequest{Topic: "orders",
		Events: []*v1.Event{event("", "t", nil), event("", "t", nil), event("", "t", nil)}})
	require.Equal(t, connect.CodeInvalidArgument, connect.CodeOf(err))
	require.Contains(t, err.Error(), "no more than 2")
	requireViolation(t, err, "events")

	// A body over the tenant's bound is refused before it is read whole.
	_, err = f.publish(keyProducer, &v1.PublishRequest{Topic: "orders",
		Events: []*v1.Event{event("", "t", bytes.Repeat([]byte("z"), 200<<10))}})
	require.Equal(t, connect.CodeResourceExhausted, connect.CodeOf(err), "%v", err)

	consumeAll(t, f.brokers, kafkaTopic(f.orders), 0)
}

// requireViolation checks that err carries a buf.validate.Violations detail
// naming field.
func requireViolation(t *testing.T, err error, field string) {
	t.Helper()
	var ce *connect.Error
	require.True(t, errors.As(err, &ce), "%v", err)
	for _, d := range ce.Details() {
		v, derr := d.Value()
		require.NoError(t, derr)
		if vs, ok := v.(*validate.Violations); ok {
			for _, viol := range vs.GetViolations() {
				els := viol.GetField().GetElements()
				if len(els) > 0 && els[0].GetFieldName() == field {
					return
				}
			}
		}
	}
	t.Fatalf("no violation of %s in %v", field, err)
}

func TestPublishBrokerRefusal(t *testing.T) {
	t.Parallel()
	// ghost is in the snapshot but has no Kafka topic: the broker refuses
	// its records.
	f := newFixture(t, fixtureOpts{producerOpts: []kgo.Opt{
		kgo.UnknownTopicRetries(0), kgo.RecordDeliveryTimeout(5 * time.Second),
	}})
	resp, err := f.publish(keyProducer, &v1.PublishRequest{Topic: "ghost",
		Events: []*v1.Event{event("g-1", "t", nil), {Id: "g-2", Type: "t"}}})
	require.NoError(t, err)
	res := resp.GetResults()
	require.Equal(t, codeUnavailable, res[0].GetError().GetCode(), "%v", res[0])
	require.Equal(t, "g-1", res[0].GetEventId())
	require.Equal(t, codeInvalidArgument, res[1].GetError().GetCode())
	require.EqualValues(t, 1, f.counter("failed"))

	// The producer still works for topics that exist.
	resp, err = f.publish(keyProducer, &v1.PublishRequest{Topic: "orders", Events: []*v1.Event{event("o-1", "t", nil)}})
	require.NoError(t, err)
	require.Nil(t, resp.GetResults()[0].GetError())
}

func TestQuotasDefaults(t *testing.T) {
	t.Parallel()
	snap := snapshot.New(&v1.ConfigSnapshot{Tenants: []*v1.Tenant{
		{Id: "a"},
		{Id: "b", Quotas: &v1.TenantQuotas{EventsPerSecond: 50, MaxEventBytes: 4 << 20}},
		{Id: "c", Quotas: &v1.TenantQuotas{EventsPerSecond: 50, Burst: 70, MaxEventBytes: 10}},
	}})
	require.Equal(t, quotas{eventsPerSecond: 1000, burst: 1000, maxEventBytes: 256 << 10}, quotasOf(snap, "a"))
	require.Equal(t, quotas{eventsPerSecond: 50, burst: 50, maxEventBytes: 1 << 20}, quotasOf(snap, "b"))
	require.Equal(t, quotas{eventsPerSecond: 50, burst: 70, maxEventBytes: 10}, quotasOf(snap, "c"))
	require.Equal(t, quotasOf(snap, "a"), quotasOf(snap, "missing"))
}

func TestLimiterSetDropsGoneTenants(t *testing.T) {
	t.Parallel()
	l := limiterSet{byTenant: map[string]*tenantLimiter{}}
	now := time.Unix(1000, 0)
	q := quotas{eventsPerSecond: 1, burst: 1}
	s1 := snapshot.New(&v1.ConfigSnapshot{Version: 1, Tenants: []*v1.Tenant{{Id: "a"}, {Id: "b"}}})
	require.NoError(t, l.admit(s1, "a", q, 1, now))
	require.NoError(t, l.admit(s1, "b", q, 1, now))
	require.Error(t, l.admit(s1, "a", q, 1, now))
	s2 := snapshot.New(&v1.ConfigSnapshot{Version: 2, Tenants: []*v1.Tenant{{Id: "b"}}})
	require.Error(t, l.admit(s2, "b", q, 1, now))
	require.Len(t, l.byTenant, 1)
	require.Contains(t, l.byTenant, "b")
}

func TestParseTraceparent(t *testing.T) {
	t.Parallel()
	const ok = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	got, valid := parseTraceparent(ok)
	require.True(t, valid)
	require.Equal(t, ok, got)
	got, valid = parseTraceparent("01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra")
	require.True(t, valid)
	require.Equal(t, ok, got, "later versions are carried as 00")
	for _, bad := range []string{
		"",
		ok + "-x",           // version 00 has exactly four fields
		strings.ToUpper(ok), // upper-case hex
		"ff" + ok[2:],       // forbidden version
		ok[:3] + strings.Repeat("0", 32) + ok[35:],  // zero trace id
		ok[:36] + strings.Repeat("0", 16) + ok[52:], // zero parent id
		strings.Replace(ok, "-", "_", 1),
		"01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01x",
	} {
		_, valid := parseTraceparent(bad)
		require.False(t, valid, bad)
	}
	fresh := newTraceparent()
	got, valid = parseTraceparent(fresh)
	require.True(t, valid)
	require.Equal(t, fresh, got)
	require.NotEqual(t, fresh, newTraceparent())
}

func TestPublishGRPCProtocols(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	mux := http.NewServeMux()
	mux.Handle(f.svc.Handler())
	srv := httptest.NewUnstartedServer(mux)
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	for name, opt := range map[string]connect.ClientOption{"grpc": connect.WithGRPC(), "grpc-web": connect.WithGRPCWeb()} {
		client := switchyardv1connect.NewIngestServiceClient(srv.Client(), srv.URL, opt)
		call := func(token string) (*v1.PublishResponse, error) {
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			ctx, info := connect.NewClientContext(ctx)
			if token != "" {
				info.RequestHeader().Set("Authorization", "Bearer "+token)
			}
			return client.Publish(ctx, &v1.PublishRequest{Topic: "orders", Events: []*v1.Event{event("", "grpc", nil)}})
		}
		_, err := call("")
		require.Equal(t, connect.CodeUnauthenticated, connect.CodeOf(err), "%s: %v", name, err)
		_, err = call(f.tokens[keyRevoked])
		require.Equal(t, connect.CodeUnauthenticated, connect.CodeOf(err), "%s: %v", name, err)
		_, err = call(f.tokens[keyScoped])
		require.Equal(t, connect.CodePermissionDenied, connect.CodeOf(err), "%s: %v", name, err)
		resp, err := call(f.tokens[keyProducer])
		require.NoError(t, err, name)
		require.Nil(t, resp.GetResults()[0].GetError(), name)
	}
	consumeAll(t, f.brokers, kafkaTopic(f.orders), 2)
}
