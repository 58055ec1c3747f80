package deliver_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"

	"github.com/switchyard-dev/switchyard/dataplane/deliver"
	"github.com/switchyard-dev/switchyard/dataplane/record"
	"github.com/switchyard-dev/switchyard/internal/testenv/kafkatest"
	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
)

func TestKafkaDeliverFake(t *testing.T) {
	t.Parallel()
	const topic = "orders-out"
	brokers := kafkatest.NewFake(t, kfake.SeedTopics(2, topic))
	testKafkaDeliver(t, brokers, topic)
}

func TestKafkaDeliverRealBroker(t *testing.T) {
	t.Parallel()
	brokers := kafkatest.RealBrokers(t)
	topic := kafkatest.Topic(t, brokers, 2)
	testKafkaDeliver(t, brokers, topic)
}

func newProducer(t *testing.T, brokers []string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...)}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(cl.Close)
	return cl
}

// testKafkaDeliver delivers events to topic through a Router and reads them
// back with their keys and headers.
func testKafkaDeliver(t *testing.T, brokers []string, topic string) {
	reg := prometheus.NewRegistry()
	m := deliver.NewMetrics(reg)
	k, err := deliver.NewKafka(deliver.KafkaConfig{Client: newProducer(t, brokers), Metrics: m})
	require.NoError(t, err)
	r := deliver.NewRouter(nil, k, m)
	t.Cleanup(r.Close)

	dest := kafkaDest("mirror", topic)
	keyed := testEvent("evt_keyed")
	keyed.PartitionKey = "customer-7"
	keyed.Subject = "order/o-42"
	keyed.DataContentType = "application/json"
	keyed.Extensions = map[string]string{"region": "eu"}
	unkeyed := testEvent("evt_unkeyed")
	unkeyed.Data = []byte("plain text")
	unkeyed.DataContentType = "text/plain"
	events := []*v1.Event{keyed, unkeyed}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	for _, ev := range events {
		res := r.Deliver(ctx, &deliver.Request{
			TenantID: "ten_1", PipelineID: "pip_1", Destination: dest, Event: ev, Attempt: 1, Traceparent: traceparent,
		})
		require.Equal(t, deliver.Delivered, res.Outcome, "%v", res.Err)
		require.NoError(t, res.Err)
		require.Positive(t, res.Latency)
	}
	v, ok := metricValue(t, reg, "switchyard_delivery_attempts_total",
		map[string]string{"pipeline": "pip_1", "destination": "mirror", "outcome": "delivered"})
	require.True(t, ok)
	require.EqualValues(t, len(events), v)

	consumer, err := kgo.NewClient(
		kgo.SeedBrokers(brokers...),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)
	require.NoError(t, err)
	defer consumer.Close()
	got := map[string]*kgo.Record{}
	for len(got) < len(events) {
		fetches := consumer.PollFetches(ctx)
		require.NoError(t, ctx.Err(), "timed out reading back; have %d records", len(got))
		fetches.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		fetches.EachRecord(func(rec *kgo.Record) {
			id, _ := record.Header(rec, "ce_id")
			got[id] = rec
		})
	}
	require.Len(t, got, len(events))

	rec := got["evt_keyed"]
	require.Equal(t, "customer-7", string(rec.Key))
	require.Equal(t, keyed.Data, rec.Value)
	rec = got["evt_unkeyed"]
	require.Equal(t, "evt_unkeyed", string(rec.Key), "no partition key: keyed by the event id")
	require.Equal(t, []byte("plain text"), rec.Value)

	for _, ev := range events {
		rec := got[ev.Id]
		for _, want := range [][2]string{
			{"ce_specversion", "1.0"},
			{"ce_id", ev.Id},
			{"ce_source", "/orders"},
			{"ce_type", "com.example.order.created"},
			{"ce_time", "2026-12-03T10:04:05.123456789Z"},
			{"content-type", ev.DataContentType},
			{"traceparent", traceparent},
		} {
			v, ok := record.Header(rec, want[0])
			require.True(t, ok, "%s: header %s", ev.Id, want[0])
			require.Equal(t, want[1], v, "%s: header %s", ev.Id, want[0])
		}
		for _, h := range rec.Headers {
			require.False(t, strings.HasPrefix(h.Key, "sy-"), "internal header %s leaked", h.Key)
		}
		dec, err := record.Decode(rec)
		require.NoError(t, err)
		require.True(t, proto.Equal(ev, dec.Event), "round trip of %s: got %v", ev.Id, dec.Event)
	}
	v2, ok := record.Header(got["evt_keyed"], "ce_region")
	require.True(t, ok)
	require.Equal(t, "eu", v2)
	v3, _ := record.Header(got["evt_keyed"], "ce_subject")
	require.Equal(t, "order/o-42", v3)
}

func TestKafkaPermanentAndInvalid(t *testing.T) {
	t.Parallel()
	const topic = "small"
	brokers := kafkatest.NewFake(t, kfake.SeedTopics(1, topic))
	k, err := deliver.NewKafka(deliver.KafkaConfig{Client: newProducer(t, brokers, kgo.ProducerBatchMaxBytes(1024))})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	big := testEvent("evt_big")
	big.Data = make([]byte, 4096)
	res := k.Deliver(ctx, &deliver.Request{PipelineID: "pip_1", Destination: kafkaDest("d", topic), Event: big})
	require.Equal(t, deliver.Permanent, res.Outcome)
	require.ErrorIs(t, res.Err, kerr.MessageTooLarge)

	res = k.Deliver(ctx, &deliver.Request{PipelineID: "pip_1", Destination: webhookDest("d", "http://x"), Event: big})
	require.Equal(t, deliver.Permanent, res.Outcome)
	require.ErrorIs(t, res.Err, deliver.ErrInvalidRequest)

	_, err = deliver.NewKafka(deliver.KafkaConfig{})
	require.ErrorContains(t, err, "Client is required")
}

func TestKafkaHonoursContext(t *testing.T) {
	t.Parallel()
	const topic = "stalled"
	brokers := kafkatest.NewFake(t, kfake.SeedTopics(1, topic))
	cl := newProducer(t, brokers)
	k, err := deliver.NewKafka(deliver.KafkaConfig{Client: cl})
	require.NoError(t, err)

	// An already ended context: the record is not produced, the attempt is
	// Retryable.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res := k.Deliver(ctx, &deliver.Request{PipelineID: "pip_1", Destination: kafkaDest("d", topic), Event: testEvent("evt_1")})
	require.Equal(t, deliver.Retryable, res.Outcome)
	require.ErrorIs(t, res.Err, context.Canceled)
}
