package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"buf.build/go/protovalidate"
	"connectrpc.com/connect"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/switchyard-dev/switchyard/dataplane/record"
	"github.com/switchyard-dev/switchyard/dataplane/snapshot"
	"github.com/switchyard-dev/switchyard/internal/ids"
	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
)

// Codes of per-event errors, as Connect's JSON errors spell them.
const (
	codeInvalidArgument   = "invalid_argument"
	codeResourceExhausted = "resource_exhausted"
	codeUnavailable       = "unavailable"
	codeCanceled          = "canceled"
	codeDeadlineExceeded  = "deadline_exceeded"
)

// reservedExtensions are names an extension may not take: the CloudEvents
// core attributes, which have fields of their own.
var reservedExtensions = map[string]bool{
	"id": true, "source": true, "type": true, "specversion": true, "subject": true,
	"time": true, "datacontenttype": true, "dataschema": true, "data": true,
}

// target is where a request publishes: a topic of the caller's tenant, with
// the snapshot it was resolved in and the tenant's quotas.
type target struct {
	snap      *snapshot.Snapshot
	principal *principal
	topic     *v1.Topic
	quotas    quotas
}

// resolve finds the topic ref (a name, or an id "top_...") of p's tenant.
// tenantID, when set, must be p's tenant. A topic that does not exist, or
// belongs to another tenant, is NotFound; one the key may not publish to is
// PermissionDenied.
func (s *Service) resolve(snap *snapshot.Snapshot, p *principal, tenantID, ref string) (*target, *connect.Error) {
	notFound := connect.NewError(connect.CodeNotFound, fmt.Errorf("topic %q not found", ref))
	if tenantID != "" && tenantID != p.tenantID {
		return nil, notFound
	}
	var (
		topic *v1.Topic
		ok    bool
	)
	if strings.HasPrefix(ref, "top_") {
		topic, ok = snap.Topic(ref)
		ok = ok && topic.GetTenantId() == p.tenantID
	} else {
		topic, ok = snap.TopicByName(p.tenantID, ref)
	}
	if !ok {
		return nil, notFound
	}
	if !p.mayPublish(topic.GetId()) {
		return nil, connect.NewError(connect.CodePermissionDenied,
			fmt.Errorf("this key may not publish to topic %q", ref))
	}
	return &target{snap: snap, principal: p, topic: topic, quotas: quotasOf(snap, p.tenantID)}, nil
}

// publish writes the events to t's topic and returns one result per event,
// in order. decodeErrs, when not nil, holds per event an error found while
// decoding it; such events are not written. Events that break a rule get an
// error result and are not written either; the others are, and their results
// carry their partition and offset once the broker acknowledged them, or an
// error. The only error publish returns is a *rateLimitError, refusing the
// whole batch.
func (s *Service) publish(ctx context.Context, t *target, events []*v1.Event, decodeErrs []*v1.ErrorStatus, tc traceContext) ([]*v1.PublishResult, error) {
	results := make([]*v1.PublishResult, len(events))
	accepted := make([]int, 0, len(events))
	for i, ev := range events {
		if i < len(decodeErrs) && decodeErrs[i] != nil {
			results[i] = &v1.PublishResult{EventId: ev.GetId(), Error: decodeErrs[i]}
			s.metrics.add(resultInvalid, 1)
			continue
		}
		if st, r := s.check(ev, t.quotas); st != nil {
			results[i] = &v1.PublishResult{EventId: ev.GetId(), Error: st}
			s.metrics.add(r, 1)
			continue
		}
		accepted = append(accepted, i)
	}
	if len(accepted) == 0 {
		return results, nil
	}
	now := s.now()
	if err := s.limiters.admit(t.snap, t.principal.tenantID, t.quotas, len(accepted), now); err != nil {
		s.metrics.add(resultRateLimited, len(accepted))
		return nil, err
	}
	var stamps []timestamppb.Timestamp // the times of events without one, allocated together
	for _, i := range accepted {
		ev := events[i]
		if ev.Id == "" {
			ev.Id = ids.NewUUIDv7()
		}
		if ev.Time == nil {
			if len(stamps) == 0 {
				stamps = make([]timestamppb.Timestamp, len(accepted))
			}
			ts := &stamps[0]
			stamps = stamps[1:]
			ts.Seconds, ts.Nanos = now.Unix(), int32(now.Nanosecond())
			ev.Time = ts
		}
	}
	s.produce(ctx, t, events, accepted, results, tc)
	return results, nil
}

// check reports what is wrong with an event about to be published: its
// payload over the tenant's quota (resource_exhausted), or an attribute
// breaking the API's rules (invalid_argument). It returns nil for a good
// event.
func (s *Service) check(ev *v1.Event, q quotas) (*v1.ErrorStatus, result) {
	if ev == nil {
		return &v1.ErrorStatus{Code: codeInvalidArgument, Message: "empty event"}, resultInvalid
	}
	if n := len(ev.GetData()); n > q.maxEventBytes {
		return &v1.ErrorStatus{
			Code:    codeResourceExhausted,
			Message: fmt.Sprintf("data is %d bytes, over the tenant's limit of %d bytes", n, q.maxEventBytes),
		}, resultTooLarge
	}
	if err := s.validateEvent(ev); err != nil {
		return &v1.ErrorStatus{Code: codeInvalidArgument, Message: err.Error()}, resultInvalid
	}
	if t := ev.GetTime(); t != nil {
		if err := t.CheckValid(); err != nil {
			return &v1.ErrorStatus{Code: codeInvalidArgument, Message: "time: " + err.Error()}, resultInvalid
		}
	}
	for k := range ev.GetExtensions() {
		if reservedExtensions[k] {
			return &v1.ErrorStatus{
				Code:    codeInvalidArgument,
				Message: fmt.Sprintf("extensions: %q is a CloudEvents core attribute, not an extension", k),
			}, resultInvalid
		}
	}
	return nil, 0
}

// produce writes events[i] for every i in accepted and waits for every
// acknowledgement, filling results[i]. The records and the results of the
// batch are allocated together, and the records' contents share the
// encoder's allocations.
func (s *Service) produce(ctx context.Context, t *target, events []*v1.Event, accepted []int, results []*v1.PublishResult, tc traceContext) {
	traceHeaders := tc.headers()
	tenantID, topicID := t.topic.GetTenantId(), t.topic.GetId()
	enc := record.NewEncoder(tenantID, topicID, traceHeaders)
	recs := make([]kgo.Record, len(accepted))
	stored := make([]v1.PublishResult, len(accepted))
	start := time.Now()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		failures int
		firstErr error
	)
	wg.Add(len(accepted))
	for j, i := range accepted {
		ev := events[i]
		rec := &recs[j]
		enc.Encode(rec, ev)
		s.producer.Produce(ctx, rec, func(r *kgo.Record, err error) {
			defer wg.Done()
			if err != nil {
				st, res := produceError(err)
				results[i] = &v1.PublishResult{EventId: ev.GetId(), Error: st}
				s.metrics.add(res, 1)
				mu.Lock()
				failures++
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
				return
			}
			res := &stored[j]
			res.EventId, res.Partition, res.Offset = ev.GetId(), r.Partition, r.Offset
			results[i] = res
		})
	}
	wg.Wait()
	s.metrics.add(resultAccepted, len(accepted)-failures)
	s.metrics.observePublish(time.Since(start))
	if failures > 0 {
		s.log.WarnContext(ctx, "broker did not store events",
			slog.String("tenant_id", tenantID), slog.String("topic_id", topicID),
			slog.Int("failed", failures), slog.Int("batch", len(accepted)), slog.Any("error", firstErr))
	}
}

// produceError is the per-event error of a record the producer could not
// write.
func produceError(err error) (*v1.ErrorStatus, result) {
	switch {
	case errors.Is(err, context.Canceled):
		return &v1.ErrorStatus{Code: codeCanceled, Message: "the request was canceled before the event was stored"}, resultFailed
	case errors.Is(err, context.DeadlineExceeded):
		return &v1.ErrorStatus{Code: codeDeadlineExceeded, Message: "the request's deadline passed before the event was stored"}, resultFailed
	case errors.Is(err, kerr.MessageTooLarge):
		return &v1.ErrorStatus{Code: codeResourceExhausted, Message: "the event is larger than the broker accepts"}, resultTooLarge
	default:
		return &v1.ErrorStatus{Code: codeUnavailable, Message: "the event was not stored: " + err.Error()}, resultFailed
	}
}

// rpcHandler serves IngestService over Connect.
type rpcHandler struct{ s *Service }

// Publish implements switchyardv1connect.IngestServiceHandler.
func (h rpcHandler) Publish(ctx context.Context, req *v1.PublishRequest) (*v1.PublishResponse, error) {
	s := h.s
	c := callFrom(ctx)
	if c == nil {
		// Handler always authenticates first; reaching here without a call is
		// a wiring error.
		return nil, errUnauthenticated()
	}
	if n := len(req.GetEvents()); n > s.maxBatch {
		s.metrics.add(resultInvalid, n)
		return nil, invalidArgument(violation(eventsPath, "repeated.max_items",
			fmt.Sprintf("must contain no more than %d item(s)", s.maxBatch)))
	}
	t, cerr := s.resolve(s.snapshots.Current(), c.principal, req.GetTenantId(), req.GetTopic())
	if cerr != nil {
		s.metrics.add(resultOfRefusal(cerr), len(req.GetEvents()))
		return nil, cerr
	}
	results, err := s.publish(ctx, t, req.GetEvents(), nil, c.trace)
	if err != nil {
		return nil, rpcError(err)
	}
	return &v1.PublishResponse{Results: results}, nil
}

// resultOfRefusal is the metrics outcome of a request refused by resolve.
func resultOfRefusal(err *connect.Error) result {
	if err.Code() == connect.CodeNotFound {
		return resultUnknownTopic
	}
	return resultUnauthorized
}

// rpcError converts an error of publish into a Connect error: a rate limit is
// ResourceExhausted with a google.rpc.RetryInfo detail saying when to retry,
// or, for a batch larger than the burst (which no wait admits), a
// google.rpc.QuotaFailure detail.
func rpcError(err error) error {
	rl := new(rateLimitError)
	if !errors.As(err, &rl) {
		return connect.NewError(connect.CodeInternal, errors.New(msgInternal))
	}
	ce := connect.NewError(connect.CodeResourceExhausted, errors.New(rl.Error()))
	var detail proto.Message
	if rl.retryAfter > 0 {
		detail = &errdetails.RetryInfo{RetryDelay: durationpb.New(rl.retryAfter)}
	} else {
		detail = &errdetails.QuotaFailure{Violations: []*errdetails.QuotaFailure_Violation{{
			Subject:     "events",
			Description: fmt.Sprintf("a batch may hold at most %d events, the tenant's burst", rl.burst),
		}}}
	}
	if d, derr := connect.NewErrorDetail(detail); derr == nil {
		ce.AddDetail(d)
	}
	return ce
}

// eventDescriptor is the descriptor of v1.Event.
var eventDescriptor = (&v1.Event{}).ProtoReflect().Descriptor()

// skipEvents is the filter leaving out the fields of every Event.
var skipEvents = protovalidate.WithFilter(protovalidate.FilterFunc(
	func(_ protoreflect.Message, d protoreflect.Descriptor) bool {
		fd, ok := d.(protoreflect.FieldDescriptor)
		return !ok || fd.ContainingMessage().FullName() != eventDescriptor.FullName()
	}))

// eventsPath is the field path of PublishRequest.events.
var eventsPath = func() *validate.FieldPath {
	fd := (&v1.PublishRequest{}).ProtoReflect().Descriptor().Fields().ByName("events")
	return validate.FieldPath_builder{Elements: []*validate.FieldPathElement{
		validate.FieldPathElement_builder{
			FieldNumber: proto.Int32(int32(fd.Number())),
			FieldName:   proto.String(string(fd.Name())),
			FieldType:   descriptorpb.FieldDescriptorProto_Type(fd.Kind()).Enum(),
		}.Build(),
	}}.Build()
}()

// violation builds one violation of the field at path.
func violation(path *validate.FieldPath, ruleID, message string) *validate.Violation {
	return validate.Violation_builder{
		Field:   path,
		RuleId:  proto.String(ruleID),
		Message: proto.String(message),
	}.Build()
}

// invalidArgument returns an InvalidArgument error carrying the violation as
// a buf.validate.Violations detail, the detail the validation interceptor
// attaches, so clients parse one format.
func invalidArgument(v *validate.Violation) *connect.Error {
	msg := v.GetMessage()
	if els := v.GetField().GetElements(); len(els) > 0 {
		msg = els[len(els)-1].GetFieldName() + ": " + msg
	}
	ce := connect.NewError(connect.CodeInvalidArgument, errors.New(msg))
	if d, err := connect.NewErrorDetail(validate.Violations_builder{Violations: []*validate.Violation{v}}.Build()); err == nil {
		ce.AddDetail(d)
	}
	return ce
}
