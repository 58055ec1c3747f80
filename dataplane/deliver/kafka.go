package deliver

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/switchyard-dev/switchyard/dataplane/record"
	"github.com/switchyard-dev/switchyard/internal/kafkaname"
)

// KafkaConfig configures a Kafka deliverer.
type KafkaConfig struct {
	// Client produces the records. The caller builds it for the region's
	// cluster (its acks and idempotence settings apply) and closes it.
	Client *kgo.Client
	// Metrics, when set, records attempts.
	Metrics *Metrics
}

func (c KafkaConfig) validate() error {
	if c.Client == nil {
		return errors.New("deliver: KafkaConfig.Client is required")
	}
	return nil
}

// Kafka delivers events to Kafka destinations: it produces each event to the
// destination's topic and waits for the broker's acknowledgement. The record
// follows the CloudEvents Kafka binding in binary mode, as record.Encode
// writes it: the data as value, the partition key (or the event id) as key,
// the attributes as "ce_" headers and "content-type"; the W3C traceparent
// rides along. Switchyard's internal "sy-" headers are not written. It is
// safe for concurrent use.
//
// Classification: an acknowledgement is Delivered; a record the broker can
// never take (too large, invalid, an invalid topic name, not authorized) is
// Permanent; anything else (timeouts, unknown topic, leader changes, the end
// of ctx) is Retryable.
type Kafka struct {
	client  *kgo.Client
	metrics *Metrics
}

// NewKafka returns a Kafka deliverer over cfg.Client.
func NewKafka(cfg KafkaConfig) (*Kafka, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Kafka{client: cfg.Client, metrics: cfg.Metrics}, nil
}

// permanentKafkaErrors are produce errors that retrying cannot fix.
var permanentKafkaErrors = []error{
	kerr.MessageTooLarge,
	kerr.RecordListTooLarge,
	kerr.InvalidRecord,
	kerr.InvalidTopicException,
	kerr.TopicAuthorizationFailed,
	kerr.ClusterAuthorizationFailed,
	kerr.CorruptMessage,
	kerr.UnsupportedForMessageFormat,
}

// Deliver produces the event to the destination's topic and waits for the
// acknowledgement or the end of ctx. When ctx ends first the result is
// Retryable, though the record may still be written: delivery is at least
// once.
func (k *Kafka) Deliver(ctx context.Context, req *Request) Result {
	if req == nil {
		return Result{Outcome: Permanent, Err: fmt.Errorf("%w: nil request", ErrInvalidRequest)}
	}
	res := k.deliver(ctx, req)
	k.metrics.attempt(req.PipelineID, req.Destination.GetName(), res)
	return res
}

func (k *Kafka) deliver(ctx context.Context, req *Request) Result {
	topic := req.Destination.GetKafka().GetTopic()
	switch {
	case req.Event == nil:
		return Result{Outcome: Permanent, Err: fmt.Errorf("%w: no event", ErrInvalidRequest)}
	case req.Destination.GetKafka() == nil:
		return Result{Outcome: Permanent, Err: fmt.Errorf("%w: destination %q is not a Kafka topic", ErrInvalidRequest, req.Destination.GetName())}
	case topic == "":
		return Result{Outcome: Permanent, Err: fmt.Errorf("%w: destination %q has no topic", ErrInvalidRequest, req.Destination.GetName())}
	}
	rec := kafkaRecord(req)

	done := make(chan error, 1)
	start := time.Now()
	k.client.Produce(ctx, rec, func(_ *kgo.Record, err error) { done <- err })
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		err = context.Cause(ctx)
	}
	res := Result{Latency: time.Since(start)}
	switch {
	case err == nil:
		res.Outcome = Delivered
	case permanentKafkaError(err):
		res.Outcome = Permanent
		res.Err = fmt.Errorf("producing to %s: %w", topic, err)
	default:
		res.Outcome = Retryable
		res.Err = fmt.Errorf("producing to %s: %w", topic, err)
	}
	return res
}

// kafkaRecord returns the record a Kafka destination receives for req: the
// event as record.Encode writes it, without Switchyard's internal "sy-"
// headers, to the destination's topic, with the traceparent header when the
// request has one.
func kafkaRecord(req *Request) *kgo.Record {
	rec := record.Encode(req.TenantID, "", req.Event)
	rec.Topic = req.Destination.GetKafka().GetTopic()
	h := rec.Headers[:0]
	for _, hd := range rec.Headers {
		if !strings.HasPrefix(hd.Key, "sy-") {
			h = append(h, hd)
		}
	}
	rec.Headers = h
	if req.Traceparent != "" {
		rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: kafkaname.HeaderTraceparent, Value: []byte(req.Traceparent)})
	}
	return rec
}

func permanentKafkaError(err error) bool {
	for _, p := range permanentKafkaErrors {
		if errors.Is(err, p) {
			return true
		}
	}
	return false
}
