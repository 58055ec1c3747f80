package controlplane

import (
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/switchyard-dev/switchyard/controlplane/ledger"
	"github.com/switchyard-dev/switchyard/internal/acklog"
	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
)

// ledgerAck returns an ack of event id on pipeline p's destination "hook".
func ledgerAck(p *v1.Pipeline, id string, attempt int, o acklog.Outcome, at time.Time) *acklog.Ack {
	origin := "sy.x/0/" + id
	dest := "hook"
	if o == acklog.Filtered {
		dest, attempt = "", 0
	}
	a := &acklog.Ack{
		V: acklog.Version, ID: acklog.ID(origin, p.GetId(), dest, attempt), EventID: id,
		TenantID: p.GetTenantId(), TopicID: p.GetTopicId(), PipelineID: p.GetId(), Destination: dest,
		Attempt: attempt, Outcome: o, Time: at, Origin: origin, NodeID: "nod_a",
		Event: &acklog.Attributes{Source: "/orders", Type: "order.created", Subject: id},
	}
	if attempt == 1 {
		a.IngestTime = at.Add(-time.Millisecond)
	}
	switch o {
	case acklog.Retrying:
		a.HTTPStatus, a.Error, a.NextAttemptTime, a.Latency = 503, "503 Service Unavailable", at.Add(5*time.Second), 2*time.Millisecond
	case acklog.Delivered:
		a.HTTPStatus, a.Latency = 200, time.Millisecond
	case acklog.DeadLettered:
		a.HTTPStatus, a.Error, a.Reason = 500, "500 Internal Server Error", "max_attempts"
	}
	return a
}

func TestEventService(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	region := b.region(t)
	a, other := b.tenant(t), b.tenant(t)
	topA := b.topic(t, a.GetId(), region.GetId())
	pipA := b.pipeline(t, a.GetId(), topA.GetId())
	topB := b.topic(t, other.GetId(), region.GetId())
	pipB := b.pipeline(t, other.GetId(), topB.GetId())

	t0 := time.Now().UTC().Truncate(time.Millisecond).Add(-time.Minute)
	acks := []*acklog.Ack{
		ledgerAck(pipA, "e1", 1, acklog.Retrying, t0),
		ledgerAck(pipA, "e1", 2, acklog.Delivered, t0.Add(5*time.Second)),
		ledgerAck(pipA, "e2", 1, acklog.Retrying, t0.Add(time.Second)),
		ledgerAck(pipA, "e2", 2, acklog.DeadLettered, t0.Add(6*time.Second)),
		ledgerAck(pipA, "e3", 0, acklog.Filtered, t0.Add(2*time.Second)),
		ledgerAck(pipA, "e3", 0, acklog.Filtered, t0.Add(2*time.Second)), // again: kept once
		ledgerAck(pipB, "b1", 1, acklog.Delivered, t0.Add(3*time.Second)),
	}
	acks[4].IngestTime = t0.Add(2 * time.Second)
	_, err := ledger.NewWriter(b.pool).Write(ctx, acks)
	require.NoError(t, err)

	_, adminA := b.key(t, a.GetId(), v1.ApiKeyRole_API_KEY_ROLE_ADMIN)
	as := b.clients(adminA).events

	// GetEvent: the full history of the retried event.
	got, err := as.GetEvent(ctx, &v1.GetEventRequest{TopicId: topA.GetId(), EventId: "e1"})
	require.NoError(t, err)
	ev := got.GetEvent()
	require.Equal(t, "e1", ev.GetEvent().GetId())
	require.Equal(t, "/orders", ev.GetEvent().GetSource())
	require.Equal(t, a.GetId(), ev.GetTenantId())
	require.True(t, t0.Add(-time.Millisecond).Equal(ev.GetIngestTime().AsTime()))
	require.Len(t, ev.GetStatuses(), 1)
	require.Equal(t, v1.DeliveryStatus_DELIVERY_STATUS_DELIVERED, ev.GetStatuses()[0].GetStatus())
	require.Equal(t, uint32(2), ev.GetStatuses()[0].GetAttempts())
	require.Len(t, got.GetAttempts(), 2)
	first, second := got.GetAttempts()[0], got.GetAttempts()[1]
	require.Equal(t, uint32(1), first.GetAttempt())
	require.Equal(t, v1.DeliveryStatus_DELIVERY_STATUS_RETRYING, first.GetStatus())
	require.Equal(t, uint32(503), first.GetHttpStatus())
	require.Equal(t, "503 Service Unavailable", first.GetError())
	require.Equal(t, 2*time.Millisecond, first.GetLatency().AsDuration())
	require.Equal(t, "nod_a", first.GetNodeId())
	require.Equal(t, "hook", first.GetDestination())
	require.Equal(t, v1.DeliveryStatus_DELIVERY_STATUS_DELIVERED, second.GetStatus())

	// A missing event, and another tenant's, are NotFound alike.
	_, err = as.GetEvent(ctx, &v1.GetEventRequest{TopicId: topA.GetId(), EventId: "nope"})
	require.Equal(t, connect.CodeNotFound, connect.CodeOf(err))
	_, err = as.GetEvent(ctx, &v1.GetEventRequest{TopicId: topB.GetId(), EventId: "b1"})
	require.Equal(t, connect.CodeNotFound, connect.CodeOf(err))

	// ListEvents: newest first, paged, filtered.
	list := func(req *v1.ListEventsRequest) []string {
		t.Helper()
		var out []string
		for {
			res, err := as.ListEvents(ctx, req)
			require.NoError(t, err)
			for _, e := range res.GetEvents() {
				out = append(out, e.GetEvent().GetId())
			}
			if res.GetNextPageToken() == "" {
				return out
			}
			req.PageToken = res.GetNextPageToken()
		}
	}
	require.Equal(t, []string{"e3", "e2", "e1"}, list(&v1.ListEventsRequest{TenantId: a.GetId(), PageSize: 2}))
	require.Equal(t, []string{"e3", "e2", "e1"}, list(&v1.ListEventsRequest{TenantId: a.GetId(), PageSize: 1, TopicId: topA.GetId(), PipelineId: pipA.GetId()}))
	require.Equal(t, []string{"e2"}, list(&v1.ListEventsRequest{TenantId: a.GetId(), Status: v1.DeliveryStatus_DELIVERY_STATUS_DEAD_LETTERED}))
	require.Equal(t, []string{"e3"}, list(&v1.ListEventsRequest{TenantId: a.GetId(), Status: v1.DeliveryStatus_DELIVERY_STATUS_FILTERED}))
	require.Empty(t, list(&v1.ListEventsRequest{TenantId: a.GetId(), Status: v1.DeliveryStatus_DELIVERY_STATUS_RETRYING}))
	require.Equal(t, []string{"e2", "e1"}, list(&v1.ListEventsRequest{TenantId: a.GetId(),
		TimeRange: &v1.TimeRange{StartTime: timestamppb.New(t0.Add(-time.Second)), EndTime: timestamppb.New(t0.Add(2 * time.Second))}}))

	// A page token used with other parameters is refused.
	res, err := as.ListEvents(ctx, &v1.ListEventsRequest{TenantId: a.GetId(), PageSize: 1})
	require.NoError(t, err)
	require.NotEmpty(t, res.GetNextPageToken())
	_, err = as.ListEvents(ctx, &v1.ListEventsRequest{TenantId: a.GetId(), PageSize: 1, PageToken: res.GetNextPageToken(),
		Status: v1.DeliveryStatus_DELIVERY_STATUS_DELIVERED})
	require.Equal(t, connect.CodeInvalidArgument, connect.CodeOf(err))
	_, err = as.ListEvents(ctx, &v1.ListEventsRequest{TenantId: a.GetId(), PageToken: "garbage"})
	require.Equal(t, connect.CodeInvalidArgument, connect.CodeOf(err))

	// Another tenant's topic or pipeline in the filter is NotFound.
	_, err = as.ListEvents(ctx, &v1.ListEventsRequest{TenantId: a.GetId(), TopicId: topB.GetId()})
	require.Equal(t, connect.CodeNotFound, connect.CodeOf(err))
	_, err = as.ListEvents(ctx, &v1.ListEventsRequest{TenantId: a.GetId(), PipelineId: pipB.GetId()})
	require.Equal(t, connect.CodeNotFound, connect.CodeOf(err))
	// The operator names B's topic under A: NotFound too.
	_, err = b.op.events.ListEvents(ctx, &v1.ListEventsRequest{TenantId: a.GetId(), TopicId: topB.GetId()})
	require.Equal(t, connect.CodeNotFound, connect.CodeOf(err))

	// ListDeadLetters.
	dls, err := as.ListDeadLetters(ctx, &v1.ListDeadLettersRequest{PipelineId: pipA.GetId()})
	require.NoError(t, err)
	require.Len(t, dls.GetDeadLetters(), 1)
	dl := dls.GetDeadLetters()[0]
	require.Equal(t, "e2", dl.GetEvent().GetId())
	require.Equal(t, "max_attempts", dl.GetReason())
	require.Equal(t, uint32(2), dl.GetAttempts())
	require.Equal(t, uint32(500), dl.GetLastHttpStatus())
	require.Equal(t, "hook", dl.GetDestination())
	dls, err = as.ListDeadLetters(ctx, &v1.ListDeadLettersRequest{PipelineId: pipA.GetId(), Reason: "max_age"})
	require.NoError(t, err)
	require.Empty(t, dls.GetDeadLetters())
	_, err = as.ListDeadLetters(ctx, &v1.ListDeadLettersRequest{PipelineId: pipB.GetId()})
	require.Equal(t, connect.CodeNotFound, connect.CodeOf(err))
}

func TestListDeadLettersPages(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	region := b.region(t)
	ten := b.tenant(t)
	p := b.pipeline(t, ten.GetId(), b.topic(t, ten.GetId(), region.GetId()).GetId())
	t0 := time.Now().UTC().Add(-time.Hour)
	var acks []*acklog.Ack
	for i := range 25 {
		acks = append(acks, ledgerAck(p, "d"+string(rune('a'+i)), 1, acklog.DeadLettered, t0.Add(time.Duration(i%5)*time.Second)))
	}
	_, err := ledger.NewWriter(b.pool).Write(ctx, acks)
	require.NoError(t, err)
	seen := map[string]bool{}
	req := &v1.ListDeadLettersRequest{PipelineId: p.GetId(), PageSize: 4}
	var last time.Time
	for {
		res, err := b.op.events.ListDeadLetters(ctx, req)
		require.NoError(t, err)
		for _, dl := range res.GetDeadLetters() {
			id := dl.GetEvent().GetId()
			require.False(t, seen[id], "%s twice", id)
			seen[id] = true
			at := dl.GetDeadLetterTime().AsTime()
			require.True(t, last.IsZero() || !at.After(last), "newest first")
			last = at
		}
		if res.GetNextPageToken() == "" {
			break
		}
		req.PageToken = res.GetNextPageToken()
	}
	require.Len(t, seen, 25)
}

// TestEventPayloadsPurgedOnUpdate checks that GetEvent returns a stored
// payload, and that turning drop_payloads on purges the tenant's payloads
// before UpdateTenant returns, and only that tenant's.
func TestEventPayloadsPurgedOnUpdate(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	region := b.region(t)
	a, other := b.tenant(t), b.tenant(t)
	topA := b.topic(t, a.GetId(), region.GetId())
	pipA := b.pipeline(t, a.GetId(), topA.GetId())
	topB := b.topic(t, other.GetId(), region.GetId())
	pipB := b.pipeline(t, other.GetId(), topB.GetId())

	t0 := time.Now().UTC().Add(-time.Minute)
	withData := func(p *v1.Pipeline, id, data string) *acklog.Ack {
		ack := ledgerAck(p, id, 1, acklog.Delivered, t0)
		ack.Data = []byte(data)
		return ack
	}
	w := ledger.NewWriter(b.pool)
	_, err := w.Write(ctx, []*acklog.Ack{withData(pipA, "a1", `{"card":"4111"}`), withData(pipB, "b1", `{"b":1}`)})
	require.NoError(t, err)

	_, adminA := b.key(t, a.GetId(), v1.ApiKeyRole_API_KEY_ROLE_ADMIN)
	_, adminB := b.key(t, other.GetId(), v1.ApiKeyRole_API_KEY_ROLE_ADMIN)
	ca, cb := b.clients(adminA), b.clients(adminB)
	data := func(c *clients, topic, id string) string {
		t.Helper()
		res, err := c.events.GetEvent(ctx, &v1.GetEventRequest{TopicId: topic, EventId: id})
		require.NoError(t, err)
		return string(res.GetEvent().GetEvent().GetData())
	}
	require.JSONEq(t, `{"card":"4111"}`, data(ca, topA.GetId(), "a1"))
	require.JSONEq(t, `{"b":1}`, data(cb, topB.GetId(), "b1"))
	// Another tenant cannot read it.
	_, err = cb.events.GetEvent(ctx, &v1.GetEventRequest{TopicId: topA.GetId(), EventId: "a1"})
	requireCode(t, err, connect.CodeNotFound)

	got, err := ca.tenants.GetTenant(ctx, &v1.GetTenantRequest{Id: a.GetId()})
	require.NoError(t, err)
	_, err = b.op.tenants.UpdateTenant(ctx, &v1.UpdateTenantRequest{
		Tenant:     &v1.Tenant{Id: a.GetId(), Retention: &v1.RetentionPolicy{Days: 30, DropPayloads: true}, Etag: got.GetTenant().GetEtag()},
		UpdateMask: mask("retention"),
	})
	require.NoError(t, err)
	require.Empty(t, data(ca, topA.GetId(), "a1"), "purged by the update")
	require.JSONEq(t, `{"b":1}`, data(cb, topB.GetId(), "b1"), "another tenant's payload stays")
	var detail string
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT detail::text FROM audit_log
		WHERE tenant_id = $1 AND action = 'tenant.update' ORDER BY id DESC LIMIT 1`, a.GetId()).Scan(&detail))
	require.JSONEq(t, `{"name":"`+a.GetName()+`","payloads_purged":1}`, detail)

	// A payload that reaches the ledger afterwards is not stored.
	_, err = w.Write(ctx, []*acklog.Ack{withData(pipA, "a2", `{"card":"5500"}`)})
	require.NoError(t, err)
	require.Empty(t, data(ca, topA.GetId(), "a2"))
}
