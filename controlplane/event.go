package controlplane

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/switchyard-dev/switchyard/controlplane/ledger"
	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
)

// eventService implements switchyardv1connect.EventServiceHandler over the
// ledger and runs dead-letter redrives and replays as operations.
type eventService struct{ *Server }

// reader returns the ledger reader, or Unimplemented when the server has
// none.
func (s *eventService) reader() (*ledger.Reader, error) {
	if s.events == nil {
		return nil, connect.NewError(connect.CodeUnimplemented, errors.New("the event ledger is not configured on this server"))
	}
	return s.events, nil
}

// GetEvent returns an event of a topic the caller may see, its status per
// pipeline and destination and every attempt, oldest first.
func (s *eventService) GetEvent(ctx context.Context, req *v1.GetEventRequest) (*v1.GetEventResponse, error) {
	r, err := s.reader()
	if err != nil {
		return nil, err
	}
	if _, err := s.topics().fetch(ctx, s.Server, req.GetTopicId()); err != nil {
		return nil, err
	}
	rec, attempts, err := r.GetEvent(ctx, req.GetTopicId(), req.GetEventId())
	if err != nil {
		return nil, s.storeError(ctx, err, "event", req.GetEventId())
	}
	return &v1.GetEventResponse{Event: rec, Attempts: attempts}, nil
}

// ListEvents lists a tenant's events, newest first.
func (s *eventService) ListEvents(ctx context.Context, req *v1.ListEventsRequest) (*v1.ListEventsResponse, error) {
	r, err := s.reader()
	if err != nil {
		return nil, err
	}
	if err := s.requireTenant(ctx, req.GetTenantId()); err != nil {
		return nil, err
	}
	if id := req.GetTopicId(); id != "" {
		t, err := s.topics().fetch(ctx, s.Server, id)
		if err != nil {
			return nil, err
		}
		if t.GetTenantId() != req.GetTenantId() {
			return nil, errNotFound("topic", id)
		}
	}
	if id := req.GetPipelineId(); id != "" {
		p, err := s.pipelines(nil).fetch(ctx, s.Server, id)
		if err != nil {
			return nil, err
		}
		if p.GetTenantId() != req.GetTenantId() {
			return nil, errNotFound("pipeline", id)
		}
	}
	var after *ledger.EventCursor
	if err := decodeCursor(req, req.GetPageToken(), &after); err != nil {
		return nil, err
	}
	size := pageSize(req.GetPageSize())
	q := ledger.EventQuery{
		TenantID: req.GetTenantId(), TopicID: req.GetTopicId(), PipelineID: req.GetPipelineId(),
		Status: req.GetStatus(), After: after, Limit: size + 1,
	}
	q.Start, q.End = timeRange(req.GetTimeRange())
	recs, err := r.ListEvents(ctx, q)
	if err != nil {
		return nil, s.storeError(ctx, err, "event", "")
	}
	res := &v1.ListEventsResponse{Events: recs}
	if len(recs) > size {
		res.Events = recs[:size]
		last := recs[size-1]
		res.NextPageToken = encodeCursor(req, &ledger.EventCursor{
			IngestTime: last.GetIngestTime().AsTime(), TopicID: last.GetTopicId(), EventID: last.GetEvent().GetId()})
	}
	return res, nil
}

// ListDeadLetters lists a pipeline's dead letters, newest first.
func (s *eventService) ListDeadLetters(ctx context.Context, req *v1.ListDeadLettersRequest) (*v1.ListDeadLettersResponse, error) {
	r, err := s.reader()
	if err != nil {
		return nil, err
	}
	if _, err := s.pipelines(nil).fetch(ctx, s.Server, req.GetPipelineId()); err != nil {
		return nil, err
	}
	var after *ledger.DeadLetterCursor
	if err := decodeCursor(req, req.GetPageToken(), &after); err != nil {
		return nil, err
	}
	size := pageSize(req.GetPageSize())
	q := ledger.DeadLetterQuery{PipelineID: req.GetPipelineId(), Reason: req.GetReason(), After: after, Limit: size + 1}
	q.Start, q.End = timeRange(req.GetTimeRange())
	dls, cursors, err := r.ListDeadLetters(ctx, q)
	if err != nil {
		return nil, s.storeError(ctx, err, "dead letter", "")
	}
	res := &v1.ListDeadLettersResponse{DeadLetters: dls}
	if len(dls) > size {
		res.DeadLetters = dls[:size]
		res.NextPageToken = encodeCursor(req, &cursors[size-1])
	}
	return res, nil
}

// RedriveDeadLetters starts an operation that publishes the pipeline's
// selected dead letters to the shortest retry tier, with a fresh attempt
// budget, so the data plane delivers them again with the same event ids.
func (s *eventService) RedriveDeadLetters(ctx context.Context, req *v1.RedriveDeadLettersRequest) (*v1.RedriveDeadLettersResponse, error) {
	p, err := s.pipelines(nil).fetch(ctx, s.Server, req.GetPipelineId())
	if err != nil {
		return nil, err
	}
	r, err := s.redriveFor(ctx, req, p)
	if err != nil {
		return nil, err
	}
	op, err := s.startOperation(ctx, p, v1.OperationKind_OPERATION_KIND_REDRIVE, func(ctx context.Context, op *v1.Operation) {
		s.runOperation(ctx, op, "redrive", r.run)
	})
	if err != nil {
		return nil, err
	}
	return &v1.RedriveDeadLettersResponse{Operation: op}, nil
}

// operation reads an operation the caller may see; another tenant's is
// NotFound.
func (s *eventService) operation(ctx context.Context, id string) (*v1.Operation, error) {
	op, err := s.store.GetOperation(ctx, id)
	if err != nil {
		return nil, s.storeError(ctx, err, "operation", id)
	}
	if !principalFrom(ctx).canSeeTenant(op.GetTenantId()) {
		return nil, errNotFound("operation", id)
	}
	return op, nil
}

// GetOperation returns the progress of a redrive or replay.
func (s *eventService) GetOperation(ctx context.Context, req *v1.GetOperationRequest) (*v1.GetOperationResponse, error) {
	op, err := s.operation(ctx, req.GetId())
	if err != nil {
		return nil, err
	}
	return &v1.GetOperationResponse{Operation: op}, nil
}

// CancelOperation stops a running operation and returns it once it has
// ended; an operation that has already ended is returned unchanged.
func (s *eventService) CancelOperation(ctx context.Context, req *v1.CancelOperationRequest) (*v1.CancelOperationResponse, error) {
	op, err := s.operation(ctx, req.GetId())
	if err != nil {
		return nil, err
	}
	if op.GetState() != v1.OperationState_OPERATION_STATE_RUNNING {
		return &v1.CancelOperationResponse{Operation: op}, nil
	}
	if done := s.ops.cancel(op.GetId()); done != nil {
		select {
		case <-done:
		case <-ctx.Done():
			return nil, connect.NewError(connect.CodeDeadlineExceeded, errors.New("the operation is still stopping"))
		}
	}
	// Not run by this server (e.g. one that stopped): end it here. When it
	// ran here it has ended already and this changes nothing.
	op, err = s.store.EndOperation(ctx, op.GetId(), v1.OperationState_OPERATION_STATE_CANCELLED, op.GetTotal(), op.GetDone(), "")
	if err != nil {
		return nil, s.storeError(ctx, err, "operation", req.GetId())
	}
	return &v1.CancelOperationResponse{Operation: op}, nil
}

// timeRange returns the bounds of tr; zero for an open side.
func timeRange(tr *v1.TimeRange) (start, end time.Time) {
	if tr.GetStartTime() != nil {
		start = tr.GetStartTime().AsTime()
	}
	if tr.GetEndTime() != nil {
		end = tr.GetEndTime().AsTime()
	}
	return start, end
}

// cursorToken is the decoded form of a ledger list's page token: where the
// next page starts and a hash of the list's parameters.
type cursorToken struct {
	After  json.RawMessage `json:"a"`
	Filter string          `json:"f"`
}

// requestHash is a short hash of a list request without its page fields,
// so a token used with other parameters is refused.
func requestHash(req pageRequest) string {
	c := proto.Clone(req)
	m := c.ProtoReflect()
	for _, name := range []string{"page_size", "page_token"} {
		m.Clear(m.Descriptor().Fields().ByName(protoName(name)))
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(c)
	if err != nil {
		// A valid request always marshals.
		panic("controlplane: hashing a list request: " + err.Error())
	}
	sum := sha256.Sum256(append([]byte(m.Descriptor().FullName()+"\x00"), b...))
	return hex.EncodeToString(sum[:8])
}

// encodeCursor returns the page token of the page after cursor.
func encodeCursor(req pageRequest, cursor any) string {
	a, err := json.Marshal(cursor)
	if err != nil {
		panic("controlplane: encoding a cursor: " + err.Error())
	}
	b, err := json.Marshal(cursorToken{After: a, Filter: requestHash(req)})
	if err != nil {
		panic("controlplane: encoding a page token: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeCursor decodes token into *into (a pointer to a cursor pointer),
// leaving it nil for an empty token; a malformed token, or one issued for
// other parameters, is an InvalidArgument on page_token.
func decodeCursor[T any](req pageRequest, token string, into **T) error {
	if token == "" {
		return nil
	}
	bad := invalidArgument(violation(
		fieldPath(req.ProtoReflect().Descriptor(), "page_token"),
		"page_token.valid",
		"page_token is not valid for this list; start again without it"))
	if len(token) > maxPageTokenLen {
		return bad
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(token)
	if err != nil {
		return bad
	}
	var ct cursorToken
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ct); err != nil || dec.More() || ct.Filter != requestHash(req) {
		return bad
	}
	c := new(T)
	cdec := json.NewDecoder(strings.NewReader(string(ct.After)))
	cdec.DisallowUnknownFields()
	if err := cdec.Decode(c); err != nil {
		return bad
	}
	*into = c
	return nil
}

// protoName converts a field name for descriptor lookups.
func protoName(s string) protoreflect.Name { return protoreflect.Name(s) }
