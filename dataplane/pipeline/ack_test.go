package pipeline

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/switchyard-dev/switchyard/internal/acklog"
	"github.com/switchyard-dev/switchyard/internal/kafkaname"
	"github.com/switchyard-dev/switchyard/internal/testenv/kafkatest"
	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
)

// createAckTopic creates the ack-log topic on brokers.
func createAckTopic(t *testing.T, brokers []string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	require.NoError(t, err)
	defer cl.Close()
	_, err = kadm.NewClient(cl).CreateTopic(t.Context(), 2, -1, nil, kafkaname.AckLogTopic)
	require.NoError(t, err)
}

// readAcks reads the ack log until n acks arrived or the timeout, then
// reads on for settle to catch any extra ack.
func readAcks(t *testing.T, brokers []string, n int, timeout, settle time.Duration) []*acklog.Ack {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(kafkaname.AckLogTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
	require.NoError(t, err)
	defer cl.Close()
	var out []*acklog.Ack
	poll := func(ctx context.Context) {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			a, err := acklog.Decode(r.Value)
			require.NoError(t, err)
			out = append(out, a)
		})
	}
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	for len(out) < n && ctx.Err() == nil {
		poll(ctx)
	}
	sctx, scancel := context.WithTimeout(t.Context(), settle)
	defer scancel()
	for sctx.Err() == nil {
		poll(sctx)
	}
	return out
}

// TestAckEveryOutcome checks that every outcome, in unordered and KEY
// pipelines, writes exactly one ack with the attempt's details.
func TestAckEveryOutcome(t *testing.T) {
	t.Parallel()
	e := newFakeEnv(t)
	createAckTopic(t, e.brokers)
	top := e.topic("top_a", 2)

	// Per sink: ids ending in 0 fail once with 503, ids ending in 1 answer
	// 410 (dead letter at once), the others succeed.
	failing := func() func(string, payload) int {
		var mu sync.Mutex
		seen := map[string]bool{}
		return func(id string, _ payload) int {
			mu.Lock()
			defer mu.Unlock()
			switch id[len(id)-1] {
			case '0':
				if !seen[id] {
					seen[id] = true
					return http.StatusServiceUnavailable
				}
			case '1':
				return http.StatusGone
			}
			return 0
		}
	}
	s1, s2 := newSink(t, failing()), newSink(t, failing())
	unordered := e.pipeline("pip_u", top, s1.srv.URL)
	keyed := e.pipeline("pip_k", top, s2.srv.URL)
	keyed.Ordering = v1.OrderingMode_ORDERING_MODE_KEY
	for _, p := range []*v1.Pipeline{unordered, keyed} {
		p.Filter = &v1.Filter{EventTypes: []string{"order.*"}}
	}
	e.publish(unordered, keyed)
	orders := e.events(top, 20, 4, "order.created")
	users := e.eventsWithPrefix(top, "x", 5, "user.created")

	cfg := e.config(e.webhook)
	cfg.Acks = e.producer
	cfg.NodeID = func() string { return "nod_test" }
	e.start(cfg)

	// Per pipeline: 5 filtered, 20 first attempts, 2 retries of the ids
	// ending in 0.
	want := 2 * (5 + 20 + 2)
	acks := readAcks(t, e.brokers, want, 30*time.Second, 500*time.Millisecond)
	require.Len(t, acks, want)

	type slot struct {
		pipeline, event, dest string
		attempt               int
	}
	got := make(map[slot]*acklog.Ack)
	for _, a := range acks {
		k := slot{a.PipelineID, a.EventID, a.Destination, a.Attempt}
		require.NotContains(t, got, k, "two acks for %+v", k)
		got[k] = a
		require.Equal(t, acklog.ID(a.Origin, a.PipelineID, a.Destination, a.Attempt), a.ID)
		require.Equal(t, testTenant, a.TenantID)
		require.Equal(t, "top_a", a.TopicID)
		require.Equal(t, "nod_test", a.NodeID)
		require.NotZero(t, a.Time)
		require.NotZero(t, a.EventTime)
		require.Equal(t, "test", a.Event.Source)
		require.Regexp(t, `^`+top.GetKafkaTopic()+`/[01]/\d+$`, a.Origin)
	}
	for _, pid := range []string{"pip_u", "pip_k"} {
		for _, id := range users {
			a := got[slot{pid, id, "", 0}]
			require.NotNil(t, a, "filtered ack of %s in %s", id, pid)
			require.Equal(t, acklog.Filtered, a.Outcome)
			require.NotZero(t, a.IngestTime)
			require.JSONEq(t, `{"key":"","seq":`+strconv.Itoa(seq(id))+`,"total":`+strconv.Itoa(seq(id))+`}`, string(a.Data),
				"the pipeline's first ack of a record carries its payload")
		}
		for _, id := range orders {
			first := got[slot{pid, id, "d0", 1}]
			require.NotNil(t, first, "first ack of %s in %s", id, pid)
			require.NotZero(t, first.IngestTime)
			require.Contains(t, string(first.Data), `"seq":`+strconv.Itoa(seq(id))+`,`, "the first ack carries the payload")
			switch id[len(id)-1] {
			case '0':
				require.Equal(t, acklog.Retrying, first.Outcome)
				require.Equal(t, http.StatusServiceUnavailable, first.HTTPStatus)
				require.NotEmpty(t, first.Error)
				require.False(t, first.NextAttemptTime.IsZero())
				second := got[slot{pid, id, "d0", 2}]
				require.NotNil(t, second, "second ack of %s in %s", id, pid)
				require.Nil(t, second.Data, "only the first ack carries the payload")
				require.Equal(t, acklog.Delivered, second.Outcome)
				require.Equal(t, http.StatusOK, second.HTTPStatus)
				require.Equal(t, first.Origin, second.Origin)
			case '1':
				require.Equal(t, acklog.DeadLettered, first.Outcome)
				require.Equal(t, ReasonNonRetryableStatus, first.Reason)
				require.Equal(t, http.StatusGone, first.HTTPStatus)
			default:
				require.Equal(t, acklog.Delivered, first.Outcome)
				require.Equal(t, http.StatusOK, first.HTTPStatus)
				require.Positive(t, first.Latency)
			}
		}
	}
}

// seq is the sequence number at the end of a test event id.
func seq(id string) int {
	n, _ := strconv.Atoi(id[strings.LastIndexByte(id, '_')+1:])
	return n
}

// TestAckPayloadOnlyWhenKept checks that no ack carries a payload when the
// tenant drops payloads, and that of a pipeline with two destinations only
// one ack carries it.
func TestAckPayloadOnlyWhenKept(t *testing.T) {
	t.Parallel()
	e := newFakeEnv(t)
	createAckTopic(t, e.brokers)
	top := e.topic("top_a", 2)
	s1, s2 := newSink(t, nil), newSink(t, nil)
	fanout := e.pipeline("pip_f", top, s1.srv.URL, s2.srv.URL)
	e.publish(fanout)
	kept := e.eventsWithPrefix(top, "k", 10, "order.created")
	cfg := e.config(e.webhook)
	cfg.Acks = e.producer
	e.start(cfg)
	acks := readAcks(t, e.brokers, 2*len(kept), 30*time.Second, 300*time.Millisecond)
	require.Len(t, acks, 2*len(kept))
	carried := map[string]int{}
	for _, a := range acks {
		if a.Data != nil {
			carried[a.EventID]++
		}
	}
	require.Len(t, carried, len(kept))
	for id, n := range carried {
		require.Equal(t, 1, n, "acks of %s carrying the payload", id)
	}

	// The tenant drops payloads: no ack carries one.
	e.raw.Tenants = []*v1.Tenant{{Id: testTenant, Name: "test", Retention: &v1.RetentionPolicy{DropPayloads: true}}}
	e.publish(fanout)
	dropped := e.eventsWithPrefix(top, "d", 10, "order.created")
	acks = readAcks(t, e.brokers, 2*(len(kept)+len(dropped)), 30*time.Second, 300*time.Millisecond)
	require.Len(t, acks, 2*(len(kept)+len(dropped)))
	for _, a := range acks {
		if slices.Contains(dropped, a.EventID) {
			require.Nil(t, a.Data, "ack of %s", a.EventID)
		}
	}
}

// TestWatermarkWaitsForAck checks that a record is not committed while its
// ack is not acknowledged: the ack log's topic is missing at first, so acks
// cannot be written although deliveries succeed.
// TestWatermarkWaitsForAck: a record is committed only once its ack is
// acknowledged, in both ordering modes; in KEY mode a key's next record does
// not wait for the ack of the one before (every record is delivered while
// no ack can be written).
func TestWatermarkWaitsForAck(t *testing.T) {
	t.Parallel()
	for _, mode := range []v1.OrderingMode{v1.OrderingMode_ORDERING_MODE_NONE, v1.OrderingMode_ORDERING_MODE_KEY} {
		t.Run(mode.String(), func(t *testing.T) {
			t.Parallel()
			testWatermarkWaitsForAck(t, mode)
		})
	}
}

func testWatermarkWaitsForAck(t *testing.T, mode v1.OrderingMode) {
	e := newFakeEnv(t)
	top := e.topic("top_a", 2)
	s := newSink(t, nil)
	p := e.pipeline("pip_a", top, s.srv.URL)
	p.Ordering = mode
	e.publish(p)
	ids := e.events(top, 50, 5, "order.created") // 10 records per key

	ackBrokers := kafkatest.NewFake(t) // no ack topic yet, no auto-creation
	acks, err := kgo.NewClient(kgo.SeedBrokers(ackBrokers...), kgo.ProducerLinger(0),
		kgo.UnknownTopicRetries(1))
	require.NoError(t, err)
	t.Cleanup(acks.Close)
	cfg := e.config(e.webhook)
	cfg.Acks = acks
	e.start(cfg)

	waitDelivered(t, s, ids, 30*time.Second)
	adm := kadm.NewClient(e.producer)
	committed := func() int64 {
		offs, err := adm.FetchOffsets(t.Context(), p.GetConsumerGroup())
		require.NoError(t, err)
		var n int64
		offs.Each(func(o kadm.OffsetResponse) {
			if o.Topic == top.GetKafkaTopic() && o.At > 0 {
				n += o.At
			}
		})
		return n
	}
	// Several commit intervals pass with every record delivered: nothing
	// is committed, for no ack was acknowledged.
	time.Sleep(1 * time.Second)
	require.Zero(t, committed(), "committed records whose acks were not written")

	createAckTopic(t, ackBrokers)
	require.Eventually(t, func() bool { return committed() == int64(len(ids)) }, 30*time.Second, 50*time.Millisecond)
	got := readAcks(t, ackBrokers, len(ids), 10*time.Second, 0)
	seen := map[string]bool{}
	for _, a := range got {
		require.Equal(t, acklog.Delivered, a.Outcome)
		seen[a.EventID] = true
	}
	require.Len(t, seen, len(ids))
}
