package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/switchyard-dev/switchyard/dataplane/record"
	"github.com/switchyard-dev/switchyard/internal/kafkaname"
	"github.com/switchyard-dev/switchyard/internal/netguard"
	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
	"github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1/switchyardv1connect"
)

// waitOperation polls operation id until it is no longer running.
func waitOperation(ctx context.Context, t *testing.T, events switchyardv1connect.EventServiceClient, id string) *v1.Operation {
	t.Helper()
	for {
		g, err := events.GetOperation(ctx, &v1.GetOperationRequest{Id: id})
		require.NoError(t, err)
		if op := g.GetOperation(); op.GetState() != v1.OperationState_OPERATION_STATE_RUNNING {
			return op
		}
		select {
		case <-ctx.Done():
			t.Fatalf("operation %s still running", id)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestReplayOneMinuteWindow stores 180 events stamped one second apart
// over the three minutes before the pipeline existed (so none is delivered
// at first: they predate it), then replays the middle minute: exactly its
// 60 events are delivered, once each, with their ids and payloads.
func TestReplayOneMinuteWindow(t *testing.T) {
	t.Parallel()
	const n = 180
	e := newEnv(t, envOptions{webhookPolicy: netguard.Policy{AllowLoopback: true}})
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()

	topic := e.createTopic("minute", 4)
	e.startNode(netguard.Policy{AllowLoopback: true})
	kafkaTopic := kafkaname.TenantTopic(e.tenant.GetId(), topic.GetId())
	e.waitKafkaTopic(ctx, kafkaTopic)

	// The records are stored with their own timestamps (CreateTime), from
	// five to two minutes ago: older than the pipeline by more than
	// CreationSkew.
	t0 := time.Now().Add(-5 * time.Minute).Truncate(time.Second)
	events := makeEvents("min", n, 7)
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.brokers...))
	require.NoError(t, err)
	defer cl.Close()
	recs := make([]*kgo.Record, n)
	for i, ev := range events {
		ev.Time = timestamppb.New(t0.Add(time.Duration(i) * time.Second))
		rec := record.Encode(e.tenant.GetId(), topic.GetId(), ev)
		rec.Topic, rec.Timestamp = kafkaTopic, ev.GetTime().AsTime()
		recs[i] = rec
	}
	require.NoError(t, cl.ProduceSync(ctx, recs...).FirstErr())

	s := newSink(t)
	pipe := e.createPipeline(&v1.Pipeline{
		Name: "minute", TopicId: topic.GetId(),
		Destinations: []*v1.Destination{webhook("hook", s.url(), 32)},
		RetryPolicy:  fastRetries(3),
	})
	// The pipeline reads the topic from its start and skips every record:
	// all predate it. Its consumer group committing past them shows it.
	adm := kadm.NewClient(cl)
	require.Eventually(t, func() bool {
		offs, err := adm.FetchOffsets(ctx, pipe.GetConsumerGroup())
		if err != nil {
			return false
		}
		var committed int64
		offs.Each(func(o kadm.OffsetResponse) {
			if o.Topic == kafkaTopic && o.At > 0 {
				committed += o.At
			}
		})
		return committed == n
	}, 30*time.Second, 50*time.Millisecond, "the pipeline went past the old records")
	require.Empty(t, s.countsOf(), "records older than the pipeline are not delivered")

	start, end := t0.Add(60*time.Second), t0.Add(120*time.Second)
	svc := e.redriveEvents()
	res, err := svc.ReplayEvents(ctx, &v1.ReplayEventsRequest{PipelineId: pipe.GetId(),
		TimeRange: &v1.TimeRange{StartTime: timestamppb.New(start), EndTime: timestamppb.New(end)}})
	require.NoError(t, err)
	op := waitOperation(ctx, t, svc, res.GetOperation().GetId())
	require.Equal(t, v1.OperationState_OPERATION_STATE_SUCCEEDED, op.GetState(), op.GetError())
	require.Equal(t, uint64(60), op.GetTotal())

	want := idSet(events[60:120], nil)
	got := s.waitAll(t, "replayed minute", want, time.Until(deadlineOf(ctx)))
	require.Zero(t, got.unexpected, got.String())
	require.Zero(t, got.duplicates, got.String())
	time.Sleep(2 * time.Second) // anything wrongly replayed has time to arrive
	c := s.countsOf()
	require.Len(t, c, 60, "only the window's events are delivered")
	for id, k := range c {
		require.True(t, want[id], "%s is outside the window", id)
		require.Equal(t, 1, k, "deliveries of %s", id)
	}
	t.Logf("replay of [%s, %s): %d of %d stored events delivered, once each (%s)",
		start.Format(time.TimeOnly), end.Format(time.TimeOnly), len(c), n, got)
}

// countsOf returns a copy of the sink's accepted deliveries per event id.
func (s *sink) countsOf() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.counts))
	for id, n := range s.counts {
		out[id] = n
	}
	return out
}

// TestReplayEvents publishes three batches of 100 events two seconds
// apart, waits until each is delivered once, then replays the middle
// batch's time window only: exactly its events are delivered a second
// time, with their ids, and the other batches are not.
func TestReplayEvents(t *testing.T) {
	t.Parallel()
	const n = 100
	e := newEnv(t, envOptions{webhookPolicy: netguard.Policy{AllowLoopback: true}})
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()

	topic := e.createTopic("replayed", 4)
	s := newSink(t)
	pipe := e.createPipeline(&v1.Pipeline{
		Name: "replayed", TopicId: topic.GetId(),
		Destinations: []*v1.Destination{webhook("hook", s.url(), 32)},
		RetryPolicy:  fastRetries(3),
	})
	node := e.startNode(netguard.Policy{AllowLoopback: true})
	e.waitKafkaTopic(ctx, kafkaname.TenantTopic(e.tenant.GetId(), topic.GetId()))
	ing := e.ingestClient(node.Addr(), e.producerKey)

	batches := [][]*v1.Event{makeEvents("rp1", n, 7), makeEvents("rp2", n, 7), makeEvents("rp3", n, 7)}
	var start, end time.Time
	for i, b := range batches {
		if i > 0 {
			time.Sleep(2 * time.Second)
		}
		if i == 1 {
			start = time.Now().Add(-time.Second)
		}
		took := e.publishAll(ctx, ing, "replayed", b, 50)
		if i == 1 {
			end = time.Now().Add(time.Second)
		}
		t.Logf("batch %d: %d events published in %v", i+1, len(b), took.Round(time.Millisecond))
	}
	all := map[string]bool{}
	for _, b := range batches {
		for id := range idSet(b, nil) {
			all[id] = true
		}
	}
	got := s.waitAll(t, "first delivery", all, time.Until(deadlineOf(ctx)))
	require.Zero(t, got.unexpected, got.String())
	require.Zero(t, got.duplicates, got.String())
	t.Logf("first delivery: %s", got)

	events := e.redriveEvents()
	began := time.Now()
	res, err := events.ReplayEvents(ctx, &v1.ReplayEventsRequest{PipelineId: pipe.GetId(),
		TimeRange: &v1.TimeRange{StartTime: timestamppb.New(start), EndTime: timestamppb.New(end)}})
	require.NoError(t, err)
	require.Equal(t, v1.OperationKind_OPERATION_KIND_REPLAY, res.GetOperation().GetKind())
	op := waitOperation(ctx, t, events, res.GetOperation().GetId())
	require.Equal(t, v1.OperationState_OPERATION_STATE_SUCCEEDED, op.GetState(), op.GetError())
	require.Equal(t, uint64(n), op.GetDone())
	require.Equal(t, uint64(n), op.GetTotal())
	t.Logf("replay of [%s, %s): SUCCEEDED in %v, done=%d total=%d", start.Format(time.StampMilli),
		end.Format(time.StampMilli), time.Since(began).Round(time.Millisecond), op.GetDone(), op.GetTotal())

	middle := idSet(batches[1], nil)
	wantCount := func(id string) int {
		if middle[id] {
			return 2
		}
		return 1
	}
	for {
		c := s.countsOf()
		twice := 0
		for id := range middle {
			if c[id] >= 2 {
				twice++
			}
		}
		if twice == n {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("replayed events delivered again: %d of %d", twice, n)
		case <-time.After(50 * time.Millisecond):
		}
	}
	redelivered := time.Since(began)
	// Give anything wrongly replayed time to arrive before counting.
	time.Sleep(3 * time.Second)
	c := s.countsOf()
	per := map[int]int{}
	for id := range all {
		per[c[id]]++
		require.Equal(t, wantCount(id), c[id], "deliveries of %s", id)
	}
	require.Len(t, c, len(all), "no other id is delivered")
	t.Logf("middle batch delivered again within %v; ids by delivery count: %v (%d ids)",
		redelivered.Round(time.Millisecond), per, len(c))
}
