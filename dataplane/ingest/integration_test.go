package ingest

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/switchyard-dev/switchyard/dataplane/record"
	"github.com/switchyard-dev/switchyard/internal/ids"
	"github.com/switchyard-dev/switchyard/internal/kafkaname"
	"github.com/switchyard-dev/switchyard/internal/testenv/kafkatest"
	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
)

// TestPublishRealKafka publishes 1,000 events through the Connect client in
// batches of 100 to a real broker and reads every one back.
func TestPublishRealKafka(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{brokers: kafkatest.RealBrokers(t), partitions: 4})
	const total, batchSize = 1000, 100
	sent := map[string]*v1.PublishResult{}
	for b := range total / batchSize {
		events := make([]*v1.Event, batchSize)
		for i := range events {
			events[i] = &v1.Event{Source: "/it", Type: "it.event", PartitionKey: fmt.Sprintf("key-%d", i%7),
				Data: fmt.Appendf(nil, `{"batch":%d,"i":%d}`, b, i)}
			if i%2 == 0 {
				events[i].Id = fmt.Sprintf("it-%d-%d", b, i)
			}
		}
		resp, err := f.publish(keyProducer, &v1.PublishRequest{Topic: "orders", Events: events})
		require.NoError(t, err)
		require.Len(t, resp.GetResults(), batchSize)
		for i, r := range resp.GetResults() {
			require.Nil(t, r.GetError(), "batch %d event %d", b, i)
			if i%2 == 0 {
				require.Equal(t, events[i].GetId(), r.GetEventId())
			}
			sent[r.GetEventId()] = r
		}
	}
	require.Len(t, sent, total, "ids are unique")

	recs := consumeAll(t, f.brokers, kafkaTopic(f.orders), total)
	got := map[string]bool{}
	for _, r := range recs {
		id := header(r, kafkaname.HeaderCEPrefix+"id")
		res, ok := sent[id]
		require.True(t, ok, "unexpected event %q", id)
		require.Equal(t, res.GetPartition(), r.Partition, id)
		require.Equal(t, res.GetOffset(), r.Offset, id)
		got[id] = true
	}
	require.Len(t, got, total)
	require.EqualValues(t, total, f.counter("accepted"))
}

// BenchmarkPublish measures publishing batches of 100 small events to a real
// broker, each op one batch, from 4 concurrent publishers per CPU:
//
//   - connect: through the Connect client over HTTP (the full path: auth,
//     validation, quotas, encoding, produce, acks);
//   - service: calling the handler in process (no HTTP, no protobuf
//     encoding of the request);
//   - franz-go: the same records produced with a raw franz-go client built
//     with the same options, waiting for every ack: the baseline.
//
// Compare the events/s of the sub-benchmarks for the ratio.
func BenchmarkPublish(b *testing.B) {
	brokers := kafkatest.RealBrokers(b)
	const batchSize = 100
	f := newFixture(b, fixtureOpts{brokers: brokers, partitions: 8, realClock: true,
		quotas: &v1.TenantQuotas{EventsPerSecond: 1_000_000, Burst: 1_000_000}})
	payload := []byte(`{"order":12345,"total":99.5,"currency":"EUR","items":[1,2,3]}`)
	newBatch := func() []*v1.Event {
		evs := make([]*v1.Event, batchSize)
		for i := range evs {
			evs[i] = &v1.Event{Source: "/bench", Type: "bench.event", Data: payload}
		}
		return evs
	}
	report := func(b *testing.B, events *atomic.Int64) {
		b.ReportMetric(float64(events.Load())/b.Elapsed().Seconds(), "events/s")
	}

	b.Run("connect", func(b *testing.B) {
		var events atomic.Int64
		b.SetParallelism(4)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				resp, err := f.publish(keyProducer, &v1.PublishRequest{Topic: "orders", Events: newBatch()})
				if err := batchErr(resp, err); err != nil {
					b.Error(err)
					return
				}
				events.Add(batchSize)
			}
		})
		report(b, &events)
	})

	b.Run("service", func(b *testing.B) {
		var events atomic.Int64
		p := &principal{tenantID: f.tenantID, role: v1.ApiKeyRole_API_KEY_ROLE_PRODUCER}
		ctx := context.WithValue(context.Background(), callKey{}, &call{principal: p})
		h := rpcHandler{f.svc}
		b.SetParallelism(4)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				resp, err := h.Publish(ctx, &v1.PublishRequest{Topic: "orders", Events: newBatch()})
				if err := batchErr(resp, err); err != nil {
					b.Error(err)
					return
				}
				events.Add(batchSize)
			}
		})
		report(b, &events)
	})

	b.Run("franz-go", func(b *testing.B) {
		cl, err := kgo.NewClient(NewProducerOpts(brokers)...)
		if err != nil {
			b.Fatal(err)
		}
		defer cl.Close()
		// The records ingest would write: encoded once, copied per batch.
		templates := make([]*kgo.Record, batchSize)
		for i, ev := range newBatch() {
			ev.Id = ids.NewUUIDv7()
			ev.Time = timestamppb.Now()
			templates[i] = record.Encode(f.tenantID, f.orders.Id, ev)
			templates[i].Headers = append(templates[i].Headers, traceContext{}.headers()...)
		}
		var events atomic.Int64
		b.SetParallelism(4)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			ctx := context.Background()
			for pb.Next() {
				recs := make([]*kgo.Record, batchSize)
				for i, tmpl := range templates {
					r := *tmpl
					r.Key = []byte(ids.NewUUIDv7())
					recs[i] = &r
				}
				if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
					b.Errorf("produce: %v", err)
					return
				}
				events.Add(batchSize)
			}
		})
		report(b, &events)
	})
}

// batchErr returns the error of a publish call or of its first refused
// event.
func batchErr(resp *v1.PublishResponse, err error) error {
	if err != nil {
		return err
	}
	for i, r := range resp.GetResults() {
		if r.GetError() != nil {
			return fmt.Errorf("event %d: %s: %s", i, r.GetError().GetCode(), r.GetError().GetMessage())
		}
	}
	return nil
}
