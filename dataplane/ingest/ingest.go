// Package ingest serves the data plane's ingest API: producers publish
// events, ingest checks their API key and the tenant's quotas against the
// configuration snapshot (no database on the hot path), and writes every
// accepted event to the topic's Kafka topic with an idempotent, acks=all
// producer. A success result means the broker acknowledged the event: it is
// durable.
//
// Two ways in:
//
//   - IngestService.Publish over Connect, gRPC and gRPC-Web (Handler): a
//     batch of events to one topic, answered with one result per event, in
//     request order. One bad event does not fail the others.
//   - The CloudEvents HTTP protocol binding (CloudEventsHandler), at
//     POST /ce/{topic}, in binary, structured and batch mode.
//
// Both authenticate with "Authorization: Bearer <API key>": a producer key
// or a tenant-admin key of the topic's tenant. A producer key limited to
// some topics may publish only to those.
//
// Per event, ingest fills the defaults (a UUIDv7 id, the current time),
// checks the payload against the tenant's max_event_bytes quota and the
// attributes against the API's validation rules; an event that fails gets
// an error result ("invalid_argument" or "resource_exhausted") and is not
// written, while the others are. Each tenant has a token bucket
// (events_per_second, burst) counted per event; a batch that does not fit is
// refused as a whole with ResourceExhausted (HTTP 429) and a hint saying when
// to retry. Every record carries the request's W3C traceparent, or a fresh
// one.
package ingest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"buf.build/go/protovalidate"
	"connectrpc.com/connect"
	"connectrpc.com/validate"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/switchyard-dev/switchyard/dataplane/snapshot"
	"github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1/switchyardv1connect"
	"github.com/switchyard-dev/switchyard/sdk/publishwire"
)

// Defaults and limits.
const (
	// DefaultMaxBatch is the default largest number of events in one
	// request.
	DefaultMaxBatch = 500
	// MaxBatchLimit is the largest MaxBatch accepted: the API's limit on
	// PublishRequest.events.
	MaxBatchLimit = 500
	// DefaultEventsPerSecond is a tenant's sustained publish rate when its
	// quota does not set one.
	DefaultEventsPerSecond = 1000
	// DefaultMaxEventBytes is a tenant's largest payload when its quota does
	// not set one.
	DefaultMaxEventBytes = 256 << 10
	// MaxEventBytesLimit caps every tenant's max_event_bytes quota.
	MaxEventBytesLimit = 1 << 20
)

// Bounds of request bodies beyond the payloads themselves.
const (
	// envelopeBytes bounds the attributes of one event on the wire: 32
	// extensions of up to 1 KiB each, the core attributes and the encoding.
	envelopeBytes = 48 << 10
	// requestOverhead bounds what a request carries besides its events.
	requestOverhead = 64 << 10
)

// Config configures a Service.
type Config struct {
	// Snapshots holds the configuration: API keys, tenants (quotas) and
	// topics all come from here. Required.
	Snapshots *snapshot.Holder
	// Producer writes the events. Build it with the options of
	// NewProducerOpts (acks=all, idempotent writes, a bounded delivery
	// timeout); the caller closes it after the Service's last request.
	// Required.
	Producer *kgo.Client
	// Logger receives what callers are not shown: broker errors and panics.
	// Default slog.Default().
	Logger *slog.Logger
	// Metrics records ingest outcomes and publish latency; nil turns
	// metrics off.
	Metrics *Metrics
	// MaxBatch is the largest number of events in one request, 1 to
	// MaxBatchLimit. Default DefaultMaxBatch.
	MaxBatch int
	// Now tells the time: event times, key expiry and rate limits. Default
	// time.Now.
	Now func() time.Time
}

// withDefaults returns a copy of c with zero values filled in.
func (c Config) withDefaults() Config {
	c.Logger = cmp.Or(c.Logger, slog.Default())
	c.MaxBatch = cmp.Or(c.MaxBatch, DefaultMaxBatch)
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// validate reports what is wrong with c.
func (c Config) validate() error {
	var errs []error
	if c.Snapshots == nil {
		errs = append(errs, errors.New("Snapshots is required"))
	}
	if c.Producer == nil {
		errs = append(errs, errors.New("Producer is required"))
	}
	if c.MaxBatch < 1 || c.MaxBatch > MaxBatchLimit {
		errs = append(errs, fmt.Errorf("MaxBatch must be between 1 and %d, not %d", MaxBatchLimit, c.MaxBatch))
	}
	return errors.Join(errs...)
}

// Service is the ingest API. Create it with New; it is safe for concurrent
// use.
type Service struct {
	snapshots *snapshot.Holder
	producer  *kgo.Client
	log       *slog.Logger
	metrics   *Metrics
	maxBatch  int
	now       func() time.Time
	validator protovalidate.Validator
	limiters  limiterSet
	errWriter *connect.ErrorWriter
}

// New returns a Service for cfg, after filling defaults and checking it.
func New(cfg Config) (*Service, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("ingest: invalid config: %w", err)
	}
	v, err := protovalidate.New()
	if err != nil {
		return nil, fmt.Errorf("ingest: building the validator: %w", err)
	}
	return &Service{
		snapshots: cfg.Snapshots,
		producer:  cfg.Producer,
		log:       cfg.Logger,
		metrics:   cfg.Metrics,
		maxBatch:  cfg.MaxBatch,
		now:       cfg.Now,
		validator: v,
		limiters:  limiterSet{byTenant: make(map[string]*tenantLimiter)},
		errWriter: connect.NewErrorWriter(),
	}, nil
}

// Handler returns the path and handler of the Connect IngestService
// (Connect, gRPC and gRPC-Web). Mount it on a mux with the path:
//
//	mux.Handle(svc.Handler())
//
// The caller is authenticated before its request body is read, and the body
// is bounded by its tenant's max_event_bytes quota times MaxBatch (plus room
// for attributes). Requests are then checked against the API's validation
// rules (protovalidate) except the rules of individual events, which are
// checked per event so that one bad event gets its own error result.
func (s *Service) Handler() (path string, h http.Handler) {
	path, h = switchyardv1connect.NewIngestServiceHandler(rpcHandler{s},
		connect.WithCodec(publishwire.Codec{}),
		connect.WithInterceptors(validate.NewInterceptor(validate.WithValidator(requestValidator{s.validator}))),
		connect.WithReadMaxBytes(int(s.maxBodyBytes(MaxEventBytesLimit, s.maxBatch))),
		connect.WithRecover(s.recoverPanic),
	)
	return path, s.authenticateRPC(h)
}

// CloudEventsHandler returns the handler of the CloudEvents HTTP protocol
// binding. Mount it at "/ce/": it serves POST /ce/{topic}, where topic is a
// topic's name or id ("top_..."). The topic is the last segment of the path
// (or the "topic" path value when mounted with the pattern
// "POST /ce/{topic}").
//
// Modes, chosen by Content-Type:
//
//   - binary (any other Content-Type): the ce-id, ce-source, ce-type,
//     ce-specversion ("1.0"), ce-subject, ce-time, ce-dataschema headers
//     (percent-encoded per the binding), other ce-* headers as extensions,
//     Content-Type as the data content type and the body as the data.
//   - structured (application/cloudevents+json): one JSON object with the
//     attributes and either "data" (a JSON value) or "data_base64".
//   - batch (application/cloudevents-batch+json): a JSON array of
//     structured events, at most MaxBatch.
//
// The "partitionkey" extension (the CloudEvents partitioning extension)
// becomes the event's partition key and is not kept as an extension. A
// missing id is assigned (a UUIDv7), a missing time is the time of receipt.
//
// Answers (JSON bodies):
//
//   - one event (binary, structured): 202 {"id","partition","offset"}; when
//     the event is refused, the status of its error (400 invalid_argument,
//     413 resource_exhausted, 503 unavailable) and {"code","message"}.
//   - batch: 200 with a JSON array holding one result per event, in
//     request order: {"id","partition","offset"} for a stored event,
//     {"id","error":{"code","message"}} for a refused one. A 200 therefore
//     does not mean every event was stored: check each result's error (the
//     role 207 Multi-Status plays in WebDAV).
//   - refusals of the whole request: {"code","message"} with 400 (malformed:
//     the message names the problem), 401 (no or invalid key), 403 (a key
//     limited to other topics), 404 (unknown topic), 405 (not POST), 413
//     (body over the limit, or a batch larger than the tenant's burst), 415
//     (a CloudEvents format other than JSON), 429 (rate limited, with
//     Retry-After in seconds).
//
// The body is read up to a bound derived from the tenant's max_event_bytes:
// the payload itself in binary mode, and in the JSON modes room for base64
// payloads and attributes for one event or MaxBatch events.
func (s *Service) CloudEventsHandler() http.Handler {
	return http.HandlerFunc(s.serveCloudEvents)
}

// maxBodyBytes bounds the body of a request of up to n events whose payloads
// are at most maxEventBytes each, in JSON with base64 payloads (the largest
// spelling the APIs accept).
func (s *Service) maxBodyBytes(maxEventBytes, n int) int64 {
	perEvent := int64(maxEventBytes)*4/3 + envelopeBytes
	return int64(n)*perEvent + requestOverhead
}

// recoverPanic turns a panic in a handler into an Internal error, logged.
func (s *Service) recoverPanic(ctx context.Context, spec connect.Spec, _ http.Header, v any) error {
	s.log.ErrorContext(ctx, "panic in ingest handler", slog.String("procedure", spec.Procedure), slog.Any("panic", v))
	return connect.NewError(connect.CodeInternal, errors.New(msgInternal))
}

// NewProducerOpts returns the options to build Config.Producer with: the seed
// brokers, acks from all in-sync replicas, idempotent writes (franz-go's
// default with acks=all), a 5 ms linger so concurrent requests share
// batches, bounded buffering, and a 30 s delivery timeout that bounds record
// retries, so a publish answers "unavailable" instead of waiting forever
// when the brokers are down. A topic the broker does not know yet is retried
// within that timeout too: the config snapshot names it, so it was created a
// moment ago and the broker's metadata has not caught up. Append options to
// override any of them.
func NewProducerOpts(brokers []string) []kgo.Opt {
	return []kgo.Opt{
		kgo.SeedBrokers(brokers...),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(5 * time.Millisecond),
		kgo.MaxBufferedRecords(100_000),
		kgo.MaxBufferedBytes(512 << 20),
		kgo.RecordDeliveryTimeout(30 * time.Second),
		kgo.UnknownTopicRetries(-1),
		kgo.ProduceRequestTimeout(10 * time.Second),
	}
}
