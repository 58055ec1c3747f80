package controlplane

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"connectrpc.com/connect"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"

	"github.com/switchyard-dev/switchyard/internal/kafkaname"
	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
)

// redriveBatch is how many dead letters a redrive publishes before it
// records its progress.
const redriveBatch = 250

// headerEventID is the Kafka header holding a CloudEvent's id (binary
// mode of the CloudEvents Kafka binding).
const headerEventID = kafkaname.HeaderCEPrefix + "id"

// errServerClosed is the cause with which Close stops running operations.
var errServerClosed = errors.New("the control plane stopped before the operation finished")

// errCancelled is the cause with which CancelOperation stops an operation.
var errCancelled = errors.New("operation cancelled")

// operations tracks the operations this server runs.
type operations struct {
	mu      sync.Mutex
	closed  bool
	running map[string]*runningOp
	wg      sync.WaitGroup
}

// runningOp is one operation in progress.
type runningOp struct {
	cancel context.CancelCauseFunc
	done   chan struct{}
}

// start runs fn for operation id in a goroutine, unless the server is
// closed; fn's context ends on cancel or Close.
func (o *operations) start(id string, fn func(ctx context.Context)) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return false
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	r := &runningOp{cancel: cancel, done: make(chan struct{})}
	if o.running == nil {
		o.running = map[string]*runningOp{}
	}
	o.running[id] = r
	o.wg.Go(func() {
		defer func() {
			o.mu.Lock()
			delete(o.running, id)
			o.mu.Unlock()
			cancel(nil)
			close(r.done)
		}()
		fn(ctx)
	})
	return true
}

// cancel stops operation id if it runs here and returns a channel closed
// once it has ended; nil when it does not run here.
func (o *operations) cancel(id string) <-chan struct{} {
	o.mu.Lock()
	r := o.running[id]
	o.mu.Unlock()
	if r == nil {
		return nil
	}
	r.cancel(errCancelled)
	return r.done
}

// close stops every operation and waits for them to end.
func (o *operations) close() {
	o.mu.Lock()
	o.closed = true
	for _, r := range o.running {
		r.cancel(errServerClosed)
	}
	o.mu.Unlock()
	o.wg.Wait()
}

// redrive is one dead-letter redrive: where to read, what to select and
// where to publish.
type redrive struct {
	pipelineID string
	brokers    []string
	dlq        string
	ids        map[string]bool
	reason     string
	start, end time.Time
	// tier is the retry-tier topic to publish to.
	tier string
	// destination, when set, replaces the dead letter's sy-destination.
	destination string
	// override, when set, is the sy-destination-override header: the
	// binary protobuf of the destination override, sending elsewhere than
	// the pipeline's destination of that name.
	override []byte
	now      func() time.Time
}

// selects reports whether rec is one of the dead letters to redrive.
func (r *redrive) selects(rec *kgo.Record) bool {
	if p, ok := header(rec, kafkaname.HeaderPipeline); ok && p != r.pipelineID {
		return false
	}
	switch {
	case r.ids != nil:
		id, _ := header(rec, headerEventID)
		return r.ids[id]
	case r.reason != "":
		reason, _ := header(rec, kafkaname.HeaderReason)
		return reason == r.reason
	default:
		if !r.start.IsZero() && rec.Timestamp.Before(r.start) {
			return false
		}
		return r.end.IsZero() || rec.Timestamp.Before(r.end)
	}
}

// retryRecord returns the retry-tier record that delivers dead letter dl
// again: its key, value and headers, a fresh attempt and age budget, due
// now.
func (r *redrive) retryRecord(dl *kgo.Record, now time.Time) *kgo.Record {
	drop := map[string]bool{
		kafkaname.HeaderAttempt: true, kafkaname.HeaderFirstAttempt: true, kafkaname.HeaderDue: true,
		kafkaname.HeaderReason: true, kafkaname.HeaderLastStatus: true, kafkaname.HeaderLastError: true,
	}
	if r.destination != "" {
		drop[kafkaname.HeaderDestination] = true
	}
	// An override of an earlier redrive does not stick: this one's, if
	// any, applies.
	drop[kafkaname.HeaderDestinationOverride] = true
	drop[kafkaname.HeaderRedrive] = true
	h := make([]kgo.RecordHeader, 0, len(dl.Headers)+4)
	for _, x := range dl.Headers {
		if !drop[x.Key] {
			h = append(h, x)
		}
	}
	stamp := []byte(now.UTC().Format(time.RFC3339Nano))
	h = append(h,
		kgo.RecordHeader{Key: kafkaname.HeaderAttempt, Value: []byte("0")},
		kgo.RecordHeader{Key: kafkaname.HeaderFirstAttempt, Value: stamp},
		kgo.RecordHeader{Key: kafkaname.HeaderDue, Value: stamp},
		// The acks of the attempts it starts get ids apart from the earlier
		// ones (acklog.RedriveID).
		kgo.RecordHeader{Key: kafkaname.HeaderRedrive, Value: stamp})
	if _, ok := header(dl, kafkaname.HeaderPipeline); !ok {
		h = append(h, kgo.RecordHeader{Key: kafkaname.HeaderPipeline, Value: []byte(r.pipelineID)})
	}
	if r.destination != "" {
		h = append(h, kgo.RecordHeader{Key: kafkaname.HeaderDestination, Value: []byte(r.destination)})
	}
	if r.override != nil {
		h = append(h, kgo.RecordHeader{Key: kafkaname.HeaderDestinationOverride, Value: r.override})
	}
	return &kgo.Record{
		Topic:   r.tier,
		Key:     dl.Key,
		Value:   dl.Value,
		Headers: h,
	}
}

// header returns the last value of header key of rec.
func header(rec *kgo.Record, key string) (string, bool) {
	for i := len(rec.Headers) - 1; i >= 0; i-- {
		if rec.Headers[i].Key == key {
			return string(rec.Headers[i].Value), true
		}
	}
	return "", false
}

// progress is where a redrive stands.
type progress struct {
	selected, done uint64
}

// run reads the dead-letter topic up to its end at the start, publishes
// the selected records to the shortest retry tier and calls report after
// each batch. It returns what it did and why it stopped early, if it did.
func (r *redrive) run(ctx context.Context, report func(progress)) (progress, error) {
	var p progress
	cl, err := kgo.NewClient(kgo.SeedBrokers(r.brokers...), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		return p, fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	starts, err := adm.ListStartOffsets(ctx, r.dlq)
	if err != nil {
		return p, fmt.Errorf("listing offsets of %s: %w", r.dlq, err)
	}
	ends, err := adm.ListEndOffsets(ctx, r.dlq)
	if err != nil {
		return p, fmt.Errorf("listing offsets of %s: %w", r.dlq, err)
	}
	from := map[int32]kgo.Offset{}
	until := map[int32]int64{}
	var listErr error
	ends.Each(func(e kadm.ListedOffset) {
		if errors.Is(e.Err, kerr.UnknownTopicOrPartition) {
			return // no dead letter was ever written
		}
		if e.Err != nil {
			listErr = e.Err
			return
		}
		s, ok := starts.Lookup(r.dlq, e.Partition)
		if !ok || s.Err != nil || s.Offset >= e.Offset {
			return
		}
		from[e.Partition] = kgo.NewOffset().At(s.Offset)
		until[e.Partition] = e.Offset
	})
	if listErr != nil {
		return p, fmt.Errorf("listing offsets of %s: %w", r.dlq, listErr)
	}
	if len(from) == 0 {
		return p, nil
	}
	err = copyRange(ctx, cl, r.dlq, r.tier, from, until, func(rec *kgo.Record) []*kgo.Record {
		if !r.selects(rec) {
			return nil
		}
		return []*kgo.Record{r.retryRecord(rec, r.now())}
	}, &p, report)
	return p, err
}

// copyRange reads the partitions of topic from their offsets in from up to,
// not including, their offsets in until; publishes to tier what out makes
// of each record (nothing, or one record per destination), in batches of
// redriveBatch; counts what out made as selected and what the broker
// acknowledged as done; and calls report after each batch. It returns why
// it stopped early, if it did.
func copyRange(ctx context.Context, cl *kgo.Client, topic, tier string, from map[int32]kgo.Offset, until map[int32]int64,
	out func(*kgo.Record) []*kgo.Record, p *progress, report func(progress)) error {
	cl.AddConsumePartitions(map[string]map[int32]kgo.Offset{topic: from})
	var batch []*kgo.Record
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := cl.ProduceSync(ctx, batch...).FirstErr(); err != nil {
			return fmt.Errorf("publishing to %s: %w", tier, err)
		}
		p.done += uint64(len(batch))
		batch = batch[:0]
		report(*p)
		return nil
	}
	for len(until) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return err
		}
		var fetchErr error
		fs.EachError(func(_ string, _ int32, err error) { fetchErr = err })
		if fetchErr != nil {
			return fmt.Errorf("reading %s: %w", topic, fetchErr)
		}
		var stop []int32
		fs.EachRecord(func(rec *kgo.Record) {
			end, ok := until[rec.Partition]
			if !ok || rec.Offset >= end {
				return
			}
			made := out(rec)
			p.selected += uint64(len(made))
			batch = append(batch, made...)
			if rec.Offset+1 >= end {
				delete(until, rec.Partition)
				stop = append(stop, rec.Partition)
			}
		})
		if len(stop) > 0 {
			cl.RemoveConsumePartitions(map[string][]int32{topic: stop})
		}
		if len(batch) >= redriveBatch || len(until) == 0 {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

// pipelineKafka returns the topic of pipeline p and the Kafka brokers of
// its region, or the error to answer when there are none.
func (s *eventService) pipelineKafka(ctx context.Context, p *v1.Pipeline) (*v1.Topic, []string, error) {
	t, err := s.store.GetTopic(ctx, p.GetTopicId())
	if err != nil {
		return nil, nil, s.storeError(ctx, err, "topic", p.GetTopicId())
	}
	reg, err := s.store.GetRegion(ctx, t.GetRegionId())
	if err != nil {
		return nil, nil, s.storeError(ctx, err, "region", t.GetRegionId())
	}
	if len(reg.GetKafkaBrokers()) == 0 {
		return nil, nil, connect.NewError(connect.CodeFailedPrecondition,
			fmt.Errorf("region %s has no Kafka brokers", reg.GetId()))
	}
	return t, reg.GetKafkaBrokers(), nil
}

// redriveFor builds the redrive of req for pipeline p, checking the
// destination override.
func (s *eventService) redriveFor(ctx context.Context, req *v1.RedriveDeadLettersRequest, p *v1.Pipeline) (*redrive, error) {
	_, brokers, err := s.pipelineKafka(ctx, p)
	if err != nil {
		return nil, err
	}
	r := &redrive{
		pipelineID: p.GetId(),
		brokers:    brokers,
		dlq:        p.GetDeadLetterTopic(),
		tier:       s.redriveTopic,
		now:        time.Now,
	}
	if r.dlq == "" {
		r.dlq = kafkaname.DeadLetterTopic(p.GetTenantId(), p.GetId())
	}
	switch sel := req.GetSelector().(type) {
	case *v1.RedriveDeadLettersRequest_Ids:
		r.ids = map[string]bool{}
		for _, id := range sel.Ids.GetIds() {
			r.ids[id] = true
		}
	case *v1.RedriveDeadLettersRequest_Reason:
		r.reason = sel.Reason
	case *v1.RedriveDeadLettersRequest_TimeRange:
		r.start, r.end = timeRange(sel.TimeRange)
	}
	if o := req.GetDestinationOverride(); o != nil {
		var cur *v1.Destination
		for _, d := range p.GetDestinations() {
			if d.GetName() == o.GetName() {
				cur = d
			}
		}
		if cur == nil {
			return nil, invalidArgument(violation(
				fieldPath(req.ProtoReflect().Descriptor(), "destination_override", "name"),
				"redrive.destination_override.name",
				fmt.Sprintf("the pipeline has no destination named %q", o.GetName())))
		}
		if !sameTarget(cur, o) {
			b, err := s.checkOverride(req, o)
			if err != nil {
				return nil, err
			}
			r.override = b
		}
		r.destination = o.GetName()
	}
	return r, nil
}

// checkOverride checks a destination override that sends elsewhere than the
// pipeline's destination of its name, as CreatePipeline checks a
// destination (protovalidate has checked its form and scheme): a webhook URL
// must be allowed by the server's policy (no literal loopback, private,
// link-local or metadata address; the node's dial-time guard still applies)
// and must not bring a signing secret, for the override is signed with the
// secrets of the destination it replaces. It returns the override as the
// retry records' sy-destination-override header.
func (s *eventService) checkOverride(req *v1.RedriveDeadLettersRequest, o *v1.Destination) ([]byte, error) {
	md := req.ProtoReflect().Descriptor()
	var vs violations
	if wh := o.GetWebhook(); wh != nil {
		if err := s.webhooks.CheckURL(wh.GetUrl()); err != nil {
			vs.add(fieldPath(md, "destination_override", "webhook", "url"), "webhook.url.allowed", err.Error())
		}
		if wh.GetSigningSecret() != "" {
			vs.add(fieldPath(md, "destination_override", "webhook", "signing_secret"), "redrive.destination_override.signing_secret",
				"a destination override is signed with the secrets of the destination it replaces; leave signing_secret empty")
		}
	}
	if err := vs.err(); err != nil {
		return nil, err
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(o)
	if err != nil {
		return nil, connect.NewError(connect.CodeInternal, fmt.Errorf("encoding the destination override: %w", err))
	}
	return b, nil
}

// sameTarget reports whether override sends where d does.
func sameTarget(d, override *v1.Destination) bool {
	switch {
	case d.GetWebhook() != nil && override.GetWebhook() != nil:
		return d.GetWebhook().GetUrl() == override.GetWebhook().GetUrl()
	case d.GetKafka() != nil && override.GetKafka() != nil:
		return d.GetKafka().GetTopic() == override.GetKafka().GetTopic()
	default:
		return false
	}
}
