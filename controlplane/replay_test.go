package controlplane

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/switchyard-dev/switchyard/internal/kafkaname"
	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
)

// publishEvents creates the Kafka topic of pipeline p's topic with three
// partitions and writes events n0..n-1 to it, event i stamped at(i).
func publishEvents(t *testing.T, b *testBundle, cl *kgo.Client, p *v1.Pipeline, n int, at func(i int) time.Time) string {
	t.Helper()
	top, err := b.store.GetTopic(t.Context(), p.GetTopicId())
	require.NoError(t, err)
	name := top.GetKafkaTopic()
	if name == "" {
		name = kafkaname.TenantTopic(top.GetTenantId(), top.GetId())
	}
	_, err = kadm.NewClient(cl).CreateTopic(t.Context(), 3, 1, nil, name)
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		require.NoError(t, err)
	}
	var recs []*kgo.Record
	for i := range n {
		id := fmt.Sprintf("ev-%04d", i)
		recs = append(recs, &kgo.Record{
			Topic: name, Key: []byte("k" + id), Value: []byte(`{"n":` + strconv.Itoa(i) + `}`), Timestamp: at(i),
			Headers: []kgo.RecordHeader{
				{Key: "ce_id", Value: []byte(id)},
				{Key: "ce_type", Value: []byte("order.created")},
				{Key: kafkaname.HeaderTenant, Value: []byte(p.GetTenantId())},
				{Key: kafkaname.HeaderTopic, Value: []byte(top.GetId())},
			},
		})
	}
	require.NoError(t, cl.ProduceSync(t.Context(), recs...).FirstErr())
	return name
}

func TestReplayEvents(t *testing.T) {
	t.Parallel()
	b, cl, p0, own, other := newRedriveWorld(t)
	ctx := t.Context()
	// A pipeline with two destinations over the same topic.
	spec := webhookPipeline(p0.GetTopicId())
	second := proto.Clone(spec.GetDestinations()[0]).(*v1.Destination)
	second.Name = "second"
	spec.Destinations = append(spec.Destinations, second)
	created, err := b.op.pipelines.CreatePipeline(ctx, &v1.CreatePipelineRequest{TenantId: p0.GetTenantId(), Pipeline: spec})
	require.NoError(t, err)
	p := created.GetPipeline()
	dests := []string{p.GetDestinations()[0].GetName(), "second"}

	t0 := time.Now().Add(-10 * time.Minute).Truncate(time.Millisecond)
	topic := publishEvents(t, b, cl, p, 30, func(i int) time.Time { return t0.Add(time.Duration(i) * time.Second) })
	offsets := map[string]string{}
	{
		c, err := kgo.NewClient(kgo.SeedBrokers(cl.OptValue(kgo.SeedBrokers).([]string)...),
			kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		require.NoError(t, err)
		for len(offsets) < 30 {
			c.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
				id, _ := header(r, "ce_id")
				offsets[id] = fmt.Sprintf("%s/%d/%d", topic, r.Partition, r.Offset)
			})
		}
		c.Close()
	}

	// [t0+10s, t0+20s): events 10..19, once per destination.
	before := time.Now()
	res, err := own.events.ReplayEvents(ctx, &v1.ReplayEventsRequest{PipelineId: p.GetId(), TimeRange: &v1.TimeRange{
		StartTime: timestamppb.New(t0.Add(10 * time.Second)), EndTime: timestamppb.New(t0.Add(20 * time.Second))}})
	require.NoError(t, err)
	op := res.GetOperation()
	require.Equal(t, v1.OperationKind_OPERATION_KIND_REPLAY, op.GetKind())
	require.Equal(t, v1.OperationState_OPERATION_STATE_RUNNING, op.GetState())
	require.Equal(t, p.GetId(), op.GetPipelineId())
	op = waitOperation(t, own, op.GetId())
	require.Equal(t, v1.OperationState_OPERATION_STATE_SUCCEEDED, op.GetState(), op.GetError())
	require.Equal(t, uint64(20), op.GetDone())
	require.Equal(t, uint64(20), op.GetTotal())

	got := retried(t, cl, 20)
	require.Len(t, got, 20)
	perDest := map[string][]string{}
	for _, r := range got {
		h := func(k string) string { v, _ := header(r, k); return v }
		id := h("ce_id")
		perDest[h(kafkaname.HeaderDestination)] = append(perDest[h(kafkaname.HeaderDestination)], id)
		require.Equal(t, []byte("k"+id), r.Key)
		require.Equal(t, p.GetId(), h(kafkaname.HeaderPipeline))
		require.Equal(t, "0", h(kafkaname.HeaderAttempt))
		require.Equal(t, "order.created", h("ce_type"))
		require.Equal(t, p.GetTenantId(), h(kafkaname.HeaderTenant))
		require.Equal(t, offsets[id], h(kafkaname.HeaderOrigin))
		for _, k := range []string{kafkaname.HeaderFirstAttempt, kafkaname.HeaderDue, kafkaname.HeaderRedrive} {
			ts, err := time.Parse(time.RFC3339Nano, h(k))
			require.NoError(t, err)
			require.False(t, ts.Before(before.Add(-time.Second)), "%s %v", k, ts)
			require.False(t, ts.After(time.Now()), "%s %v", k, ts)
		}
	}
	var want []string
	for i := 10; i < 20; i++ {
		want = append(want, fmt.Sprintf("ev-%04d", i))
	}
	require.Len(t, perDest, 2)
	for _, d := range dests {
		ids := perDest[d]
		require.ElementsMatch(t, want, ids, d)
	}

	// A window after every event: nothing to do.
	res, err = own.events.ReplayEvents(ctx, &v1.ReplayEventsRequest{PipelineId: p.GetId(), TimeRange: &v1.TimeRange{
		StartTime: timestamppb.New(t0.Add(time.Minute)), EndTime: timestamppb.New(t0.Add(2 * time.Minute))}})
	require.NoError(t, err)
	op = waitOperation(t, own, res.GetOperation().GetId())
	require.Equal(t, v1.OperationState_OPERATION_STATE_SUCCEEDED, op.GetState(), op.GetError())
	require.Zero(t, op.GetDone())
	// A window ending after every event: the tail, up to the end offset.
	res, err = own.events.ReplayEvents(ctx, &v1.ReplayEventsRequest{PipelineId: p.GetId(), TimeRange: &v1.TimeRange{
		StartTime: timestamppb.New(t0.Add(25 * time.Second)), EndTime: timestamppb.New(time.Now().Add(time.Hour))}})
	require.NoError(t, err)
	op = waitOperation(t, own, res.GetOperation().GetId())
	require.Equal(t, v1.OperationState_OPERATION_STATE_SUCCEEDED, op.GetState(), op.GetError())
	require.Equal(t, uint64(10), op.GetDone())
	require.Len(t, retried(t, cl, 30), 30)

	// An empty or inverted range is refused; another tenant sees nothing.
	_, err = own.events.ReplayEvents(ctx, &v1.ReplayEventsRequest{PipelineId: p.GetId(), TimeRange: &v1.TimeRange{
		StartTime: timestamppb.New(t0), EndTime: timestamppb.New(t0)}})
	require.Contains(t, violationsOf(t, err), "time_range")
	_, err = other.events.ReplayEvents(ctx, &v1.ReplayEventsRequest{PipelineId: p.GetId(), TimeRange: &v1.TimeRange{
		StartTime: timestamppb.New(t0), EndTime: timestamppb.Now()}})
	requireCode(t, err, connect.CodeNotFound)
}

func TestReplayCancelAndClose(t *testing.T) {
	t.Parallel()
	b, _, p, own, _ := newRedriveWorld(t)
	ctx := t.Context()
	setBrokers(t, b, p, silentBroker(t))
	blocked := func() string {
		res, err := own.events.ReplayEvents(ctx, &v1.ReplayEventsRequest{PipelineId: p.GetId(), TimeRange: &v1.TimeRange{
			StartTime: timestamppb.New(time.Now().Add(-time.Hour)), EndTime: timestamppb.Now()}})
		require.NoError(t, err)
		return res.GetOperation().GetId()
	}
	id := blocked()
	res, err := own.events.CancelOperation(ctx, &v1.CancelOperationRequest{Id: id})
	require.NoError(t, err)
	require.Equal(t, v1.OperationState_OPERATION_STATE_CANCELLED, res.GetOperation().GetState())
	require.Equal(t, v1.OperationKind_OPERATION_KIND_REPLAY, res.GetOperation().GetKind())

	id = blocked()
	b.server.Close()
	got, err := own.events.GetOperation(ctx, &v1.GetOperationRequest{Id: id})
	require.NoError(t, err)
	require.Equal(t, v1.OperationState_OPERATION_STATE_FAILED, got.GetOperation().GetState())
	require.Equal(t, errServerClosed.Error(), got.GetOperation().GetError())
}

// silentBroker returns the address of a listener that accepts connections
// and never answers.
func silentBroker(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	accepted := make(chan net.Conn, 64)
	t.Cleanup(func() {
		_ = l.Close()
		close(accepted)
		for c := range accepted {
			_ = c.Close()
		}
	})
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			select {
			case accepted <- conn:
			default:
				_ = conn.Close()
			}
		}
	}()
	return l.Addr().String()
}
