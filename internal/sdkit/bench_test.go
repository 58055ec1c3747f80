package sdkit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/switchyard-dev/switchyard/dataplane/ingest"
	"github.com/switchyard-dev/switchyard/dataplane/record"
	"github.com/switchyard-dev/switchyard/internal/ids"
	"github.com/switchyard-dev/switchyard/internal/kafkaname"
	"github.com/switchyard-dev/switchyard/internal/testenv/kafkatest"
	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
	"github.com/switchyard-dev/switchyard/sdk/switchyard"
)

// BenchmarkProducer measures events/s to a REAL broker (skipped unless
// SWITCHYARD_TEST_KAFKA_BROKERS is set), each op one event, both into the
// same 8-partition topic:
//
//   - sdk: the SDK's async Producer with its defaults, through the ingest
//     service over HTTP (auth, validation, quotas, encoding, acks=all);
//   - franz-go: the baseline, a raw franz-go client built with the ingest's
//     producer options (acks=all, idempotent, 5 ms linger), producing the
//     records ingest writes for the same events: a fresh UUIDv7 id (the
//     record key, so records spread over the partitions as ingest's do), the
//     time, the ce_ and sy- headers and a traceparent per 500 records (one
//     per request in ingest).
//
// Each side first publishes warmUp events untimed. Both count only events
// acknowledged as stored (a success result, an ack without error) and stop the clock once every one of them is resolved; a
// failed event fails the benchmark. The ratio of the two events/s figures is
// the cost of the SDK and ingest path over a raw Kafka producer; cpu-ns/event
// is the CPU this process (SDK, ingest and their franz-go client, or the raw
// client) spent per event, the broker's not included.
//
// Figures, what bounds the ratio, and the command (-benchtime 200000x
// -count 3): docs/sdk.md, section Performance. In short, on a 2-core machine
// with the broker on the same cores: ratios of the means 0.62, 0.69 and
// 0.63 in three runs; cpu-ns/event 4,400–6,200 against 3,300–4,700.
func BenchmarkProducer(b *testing.B) {
	brokers := kafkatest.RealBrokers(b)
	s := NewStack(b, brokers)
	f := newTenant(b, s, 8, &v1.TenantQuotas{EventsPerSecond: 1_000_000, Burst: 1_000_000})
	payload := []byte(`{"order":12345,"total":99.5,"currency":"EUR","items":[1,2,3]}`)

	b.Run("sdk", func(b *testing.B) {
		c := f.producerClient(b, s)
		p, err := switchyard.NewProducer(c, f.topic.GetName())
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		// Warm up: connections, the node's metadata of the topic.
		warm := make([]*switchyard.Event, warmUp)
		for i := range warm {
			warm[i] = &switchyard.Event{Source: "/bench", Type: "bench.event", Data: payload, DataContentType: "application/json"}
		}
		if _, err := c.Publish(ctx, f.topic.GetName(), warm...); err != nil {
			b.Fatal(err)
		}
		var ok, failed atomic.Int64
		done := func(_ switchyard.Result, err error) {
			if err != nil {
				failed.Add(1)
				return
			}
			ok.Add(1)
		}
		cpu0 := processCPU()
		b.ResetTimer()
		for b.Loop() {
			ev := &switchyard.Event{Source: "/bench", Type: "bench.event", Data: payload, DataContentType: "application/json"}
			p.ProduceFunc(ctx, ev, done)
		}
		if err := p.Close(ctx); err != nil {
			b.Fatal(err)
		}
		report(b, ok.Load(), failed.Load(), processCPU()-cpu0)
	})

	b.Run("franz-go", func(b *testing.B) {
		cl, err := kgo.NewClient(ingest.NewProducerOpts(brokers)...)
		if err != nil {
			b.Fatal(err)
		}
		defer cl.Close()
		ctx := context.Background()
		// Warm up: connections, the client's metadata of the topic.
		for range warmUp {
			ev := &v1.Event{Id: ids.NewUUIDv7(), Source: "/bench", Type: "bench.event", Time: timestamppb.Now(), Data: payload}
			cl.Produce(ctx, record.Encode(f.tenant.GetId(), f.topic.GetId(), ev), nil)
		}
		if err := cl.Flush(ctx); err != nil {
			b.Fatal(err)
		}
		var ok, failed atomic.Int64
		done := func(_ *kgo.Record, err error) {
			if err != nil {
				failed.Add(1)
				return
			}
			ok.Add(1)
		}
		var traceparent []byte
		n := 0
		cpu0 := processCPU()
		b.ResetTimer()
		for b.Loop() {
			if n%ingest.DefaultMaxBatch == 0 {
				traceparent = newTraceparent()
			}
			n++
			ev := &v1.Event{
				Id: ids.NewUUIDv7(), Source: "/bench", Type: "bench.event", Time: timestamppb.Now(),
				Data: payload, DataContentType: "application/json",
			}
			rec := record.Encode(f.tenant.GetId(), f.topic.GetId(), ev)
			rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: kafkaname.HeaderTraceparent, Value: traceparent})
			cl.Produce(ctx, rec, done)
		}
		if err := cl.Flush(ctx); err != nil {
			b.Fatal(err)
		}
		report(b, ok.Load(), failed.Load(), processCPU()-cpu0)
	})
}

// warmUp is the number of events each side publishes before the clock
// starts.
const warmUp = 500

// report fails b unless every event was stored, and reports the events
// stored per second and the CPU time this process (everything but the
// broker) spent per event.
func report(b *testing.B, ok, failed int64, cpu time.Duration) {
	b.Helper()
	if failed > 0 || ok != int64(b.N) {
		b.Fatalf("%d of %d events stored, %d failed", ok, b.N, failed)
	}
	b.ReportMetric(float64(ok)/b.Elapsed().Seconds(), "events/s")
	if cpu > 0 {
		b.ReportMetric(float64(cpu.Nanoseconds())/float64(ok), "cpu-ns/event")
	}
}

// newTraceparent makes a sampled W3C traceparent, as ingest does for a
// request that carries none.
func newTraceparent() []byte {
	var r [24]byte
	_, _ = rand.Read(r[:])
	return []byte("00-" + hex.EncodeToString(r[:16]) + "-" + hex.EncodeToString(r[16:]) + "-01")
}
