package controlplane

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/switchyard-dev/switchyard/internal/kafkaname"
	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
)

// replay is one replay of a topic's events into a pipeline: where to read,
// which time range and where to publish.
type replay struct {
	pipelineID string
	brokers    []string
	// topic is the Kafka topic of the pipeline's topic.
	topic      string
	start, end time.Time
	// destinations are the names of the pipeline's destinations; each
	// selected event is published once per destination.
	destinations []string
	// tier is the retry-tier topic to publish to.
	tier string
	now  func() time.Time
}

// replayDropped are the headers of an event that a replayed copy does not
// keep: the replay sets its own addressing and attempt budget.
var replayDropped = map[string]bool{
	kafkaname.HeaderPipeline: true, kafkaname.HeaderDestination: true,
	kafkaname.HeaderAttempt: true, kafkaname.HeaderFirstAttempt: true, kafkaname.HeaderDue: true,
	kafkaname.HeaderReason: true, kafkaname.HeaderLastStatus: true, kafkaname.HeaderLastError: true,
	kafkaname.HeaderOrigin: true, kafkaname.HeaderRedrive: true, kafkaname.HeaderDestinationOverride: true,
}

// selects reports whether rec was stored within [start, end).
func (r *replay) selects(rec *kgo.Record) bool {
	return !rec.Timestamp.Before(r.start) && rec.Timestamp.Before(r.end)
}

// retryRecord returns the retry-tier record that delivers event rec to
// destination dest of the pipeline: its key, value and headers, a fresh
// attempt and age budget, due now, and its origin. Like a redriven record it
// carries sy-redrive, so the acks of its attempts do not take the ids of the
// event's first delivery (same origin, attempt numbers from 1 again) and the
// ledger keeps both.
func (r *replay) retryRecord(rec *kgo.Record, dest string, now time.Time) *kgo.Record {
	h := make([]kgo.RecordHeader, 0, len(rec.Headers)+6)
	for _, x := range rec.Headers {
		if !replayDropped[x.Key] {
			h = append(h, x)
		}
	}
	stamp := []byte(now.UTC().Format(time.RFC3339Nano))
	origin := rec.Topic + "/" + strconv.FormatInt(int64(rec.Partition), 10) + "/" + strconv.FormatInt(rec.Offset, 10)
	h = append(h,
		kgo.RecordHeader{Key: kafkaname.HeaderPipeline, Value: []byte(r.pipelineID)},
		kgo.RecordHeader{Key: kafkaname.HeaderDestination, Value: []byte(dest)},
		kgo.RecordHeader{Key: kafkaname.HeaderAttempt, Value: []byte("0")},
		kgo.RecordHeader{Key: kafkaname.HeaderFirstAttempt, Value: stamp},
		kgo.RecordHeader{Key: kafkaname.HeaderDue, Value: stamp},
		kgo.RecordHeader{Key: kafkaname.HeaderOrigin, Value: []byte(origin)},
		kgo.RecordHeader{Key: kafkaname.HeaderRedrive, Value: stamp})
	return &kgo.Record{Topic: r.tier, Key: rec.Key, Value: rec.Value, Headers: h}
}

// ranges returns, per partition of the topic, the offsets to read: from
// the first at or after start to the first at or after end. A partition
// with no record after a bound ends at its end offset as listed before the
// time lookups, so nothing stored when the replay began is skipped.
func (r *replay) ranges(ctx context.Context, adm *kadm.Client) (from map[int32]kgo.Offset, until map[int32]int64, err error) {
	ends, err := adm.ListEndOffsets(ctx, r.topic)
	if err != nil {
		return nil, nil, err
	}
	afterStart, err := adm.ListOffsetsAfterMilli(ctx, r.start.UnixMilli(), r.topic)
	if err != nil {
		return nil, nil, err
	}
	afterEnd, err := adm.ListOffsetsAfterMilli(ctx, r.end.UnixMilli(), r.topic)
	if err != nil {
		return nil, nil, err
	}
	from, until = map[int32]kgo.Offset{}, map[int32]int64{}
	var listErr error
	ends.Each(func(e kadm.ListedOffset) {
		if errors.Is(e.Err, kerr.UnknownTopicOrPartition) {
			return // nothing was ever published
		}
		if e.Err != nil {
			listErr = e.Err
			return
		}
		bound := func(l kadm.ListedOffsets) (int64, error) {
			o, ok := l.Lookup(r.topic, e.Partition)
			switch {
			case !ok:
				return e.Offset, nil
			case o.Err != nil:
				return 0, o.Err
			case o.Offset < 0 || o.Offset > e.Offset:
				return e.Offset, nil
			default:
				return o.Offset, nil
			}
		}
		lo, err := bound(afterStart)
		if err != nil {
			listErr = err
			return
		}
		hi, err := bound(afterEnd)
		if err != nil {
			listErr = err
			return
		}
		if lo >= hi {
			return
		}
		from[e.Partition] = kgo.NewOffset().At(lo)
		until[e.Partition] = hi
	})
	if listErr != nil {
		return nil, nil, listErr
	}
	return from, until, nil
}

// run reads the topic's records in the time range, publishes a copy per
// destination to the retry tier and calls report after each batch. It
// returns what it did and why it stopped early, if it did.
func (r *replay) run(ctx context.Context, report func(progress)) (progress, error) {
	var p progress
	cl, err := kgo.NewClient(kgo.SeedBrokers(r.brokers...), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		return p, fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	from, until, err := r.ranges(ctx, kadm.NewClient(cl))
	if err != nil {
		return p, fmt.Errorf("listing offsets of %s: %w", r.topic, err)
	}
	if len(from) == 0 || len(r.destinations) == 0 {
		return p, nil
	}
	err = copyRange(ctx, cl, r.topic, r.tier, from, until, func(rec *kgo.Record) []*kgo.Record {
		if !r.selects(rec) {
			return nil
		}
		now := r.now()
		out := make([]*kgo.Record, 0, len(r.destinations))
		for _, d := range r.destinations {
			out = append(out, r.retryRecord(rec, d, now))
		}
		return out
	}, &p, report)
	return p, err
}

// runOperation runs an operation's work and records its progress after
// each batch and how it ended; what names the work in the log.
func (s *Server) runOperation(ctx context.Context, op *v1.Operation, what string,
	run func(context.Context, func(progress)) (progress, error)) {
	log := s.log.With(slog.String("operation", op.GetId()), slog.String("pipeline", op.GetPipelineId()))
	// The store keeps working after ctx ends: the final state must land.
	bg := context.WithoutCancel(ctx)
	p, err := run(ctx, func(p progress) {
		if err := s.store.SetOperationProgress(bg, op.GetId(), p.selected, p.done); err != nil {
			log.Warn("recording "+what+" progress", slog.Any("error", err))
		}
	})
	state, msg := v1.OperationState_OPERATION_STATE_SUCCEEDED, ""
	switch cause := context.Cause(ctx); {
	case err == nil:
	case errors.Is(cause, errCancelled):
		state = v1.OperationState_OPERATION_STATE_CANCELLED
	case errors.Is(cause, errServerClosed):
		state, msg = v1.OperationState_OPERATION_STATE_FAILED, errServerClosed.Error()
	default:
		state, msg = v1.OperationState_OPERATION_STATE_FAILED, err.Error()
	}
	total := p.selected
	if state == v1.OperationState_OPERATION_STATE_SUCCEEDED {
		total = p.done
	}
	end, cancel := context.WithTimeout(bg, 10*time.Second)
	defer cancel()
	if _, err := s.store.EndOperation(end, op.GetId(), state, total, p.done, msg); err != nil {
		log.Error("recording the end of a "+what, slog.Any("error", err))
		return
	}
	log.Info(what+" ended", slog.String("state", state.String()), slog.Uint64("done", p.done),
		slog.String("error", msg))
}

// startOperation records a running operation of kind for pipeline p and
// runs run for it; after Close the operation is recorded as failed at once.
func (s *eventService) startOperation(ctx context.Context, p *v1.Pipeline, kind v1.OperationKind,
	run func(ctx context.Context, op *v1.Operation)) (*v1.Operation, error) {
	op, err := s.store.CreateOperation(ctx, &v1.Operation{
		TenantId: p.GetTenantId(), PipelineId: p.GetId(),
		Kind: kind, State: v1.OperationState_OPERATION_STATE_RUNNING,
	})
	if err != nil {
		return nil, s.storeError(ctx, err, "operation", "")
	}
	if !s.ops.start(op.GetId(), func(ctx context.Context) { run(ctx, op) }) {
		id := op.GetId()
		op, err = s.store.EndOperation(context.WithoutCancel(ctx), id, v1.OperationState_OPERATION_STATE_FAILED,
			0, 0, errServerClosed.Error())
		if err != nil {
			return nil, s.storeError(ctx, err, "operation", id)
		}
	}
	return op, nil
}

// ReplayEvents starts an operation that reads the events the pipeline's
// topic stored in the time range and publishes a copy per destination of
// the pipeline to the shortest retry tier, due at once, so the data plane
// delivers them again into that pipeline only, with their original ids.
func (s *eventService) ReplayEvents(ctx context.Context, req *v1.ReplayEventsRequest) (*v1.ReplayEventsResponse, error) {
	p, err := s.pipelines(nil).fetch(ctx, s.Server, req.GetPipelineId())
	if err != nil {
		return nil, err
	}
	r, err := s.replayFor(ctx, req, p)
	if err != nil {
		return nil, err
	}
	op, err := s.startOperation(ctx, p, v1.OperationKind_OPERATION_KIND_REPLAY, func(ctx context.Context, op *v1.Operation) {
		s.runOperation(ctx, op, "replay", r.run)
	})
	if err != nil {
		return nil, err
	}
	return &v1.ReplayEventsResponse{Operation: op}, nil
}

// replayFor builds the replay of req into pipeline p.
func (s *eventService) replayFor(ctx context.Context, req *v1.ReplayEventsRequest, p *v1.Pipeline) (*replay, error) {
	start, end := timeRange(req.GetTimeRange())
	if !start.Before(end) {
		return nil, invalidArgument(violation(
			fieldPath(req.ProtoReflect().Descriptor(), "time_range"),
			"replay.time_range.order", "start_time must be before end_time"))
	}
	t, brokers, err := s.pipelineKafka(ctx, p)
	if err != nil {
		return nil, err
	}
	r := &replay{
		pipelineID: p.GetId(),
		brokers:    brokers,
		topic:      t.GetKafkaTopic(),
		start:      start,
		end:        end,
		tier:       s.redriveTopic,
		now:        time.Now,
	}
	if r.topic == "" {
		r.topic = kafkaname.TenantTopic(t.GetTenantId(), t.GetId())
	}
	for _, d := range p.GetDestinations() {
		r.destinations = append(r.destinations, d.GetName())
	}
	return r, nil
}
