package sdkit

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/switchyard-dev/switchyard/dataplane/ingest"
	"github.com/switchyard-dev/switchyard/dataplane/record"
	"github.com/switchyard-dev/switchyard/internal/testenv/kafkatest"
	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
	"github.com/switchyard-dev/switchyard/sdk/switchyard"
)

// BenchmarkProducer measures events/s to a REAL broker (skipped unless
// SWITCHYARD_TEST_KAFKA_BROKERS is set), each op one event:
//
//   - sdk: the SDK's async Producer with its defaults, through the ingest
//     service over HTTP (auth, validation, quotas, encoding, acks=all);
//   - franz-go: the same records produced by a raw franz-go client built with
//     the ingest's producer options, waiting for every ack: the baseline.
//
// The ratio of the two events/s figures is the cost of the SDK and ingest
// path over a raw Kafka producer.
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
		b.ResetTimer()
		for b.Loop() {
			ev := &switchyard.Event{Source: "/bench", Type: "bench.event", Data: payload, DataContentType: "application/json"}
			p.Produce(ctx, ev) // Close reports any event not delivered
		}
		if err := p.Close(ctx); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	})

	b.Run("franz-go", func(b *testing.B) {
		cl, err := kgo.NewClient(ingest.NewProducerOpts(brokers)...)
		if err != nil {
			b.Fatal(err)
		}
		defer cl.Close()
		ctx := context.Background()
		errs := make(chan error, 1)
		b.ResetTimer()
		for b.Loop() {
			ev := &v1.Event{Id: "bench", Source: "/bench", Type: "bench.event", Data: payload, DataContentType: "application/json"}
			rec := record.Encode(f.tenant.GetId(), f.topic.GetId(), ev)
			cl.Produce(ctx, rec, func(_ *kgo.Record, err error) {
				if err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			})
		}
		if err := cl.Flush(ctx); err != nil {
			b.Fatal(err)
		}
		select {
		case err := <-errs:
			b.Fatal(err)
		default:
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	})
}
