package e2e

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"buf.build/go/protovalidate"
	"connectrpc.com/connect"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/switchyard-dev/switchyard/controlplane"
	"github.com/switchyard-dev/switchyard/controlplane/store/pgstore"
	"github.com/switchyard-dev/switchyard/dataplane"
	"github.com/switchyard-dev/switchyard/internal/kafkaname"
	"github.com/switchyard-dev/switchyard/internal/netguard"
	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
	"github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1/switchyardv1connect"
)

// redriveEvents returns an EventService client of a control plane over the
// env's database whose redrives publish to the env's shortest retry tier
// (the env's node reads the test's own tiers, not the shared ones).
func (e *env) redriveEvents() switchyardv1connect.EventServiceClient {
	e.t.Helper()
	cp, err := controlplane.New(controlplane.Config{
		Store:         pgstore.New(e.pool),
		OperatorToken: operatorToken,
		NodeToken:     nodeToken,
		Logger:        testLogger(e.t, slog.LevelInfo),
		WebhookPolicy: netguard.Policy{AllowLoopback: true},
		RedriveTopic:  e.tiers[0].Topic,
	})
	require.NoError(e.t, err)
	hs := httptest.NewServer(cp.Handler())
	e.t.Cleanup(hs.Close)
	e.t.Cleanup(cp.Close)
	return switchyardv1connect.NewEventServiceClient(e.hc, hs.URL, connect.WithInterceptors(bearer(operatorToken)))
}

// testRedrive dead-letters n events through a sink that fails every
// request, fixes the sink, redrives the pipeline's dead letters by time
// range and checks that every event arrives with its id.
func testRedrive(t *testing.T, n int, timeout time.Duration) {
	e := newEnv(t, envOptions{webhookPolicy: netguard.Policy{AllowLoopback: true}})
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	events := makeEvents("red", n, 17)
	want := idSet(events, nil)

	topic := e.createTopic("redriven", 4)
	s := newSink(t)
	var fixed atomic.Bool
	s.respond = func(string, []byte) int {
		if fixed.Load() {
			return http.StatusOK
		}
		return http.StatusInternalServerError
	}
	pipe := e.createPipeline(&v1.Pipeline{
		Name: "redriven", TopicId: topic.GetId(),
		Destinations: []*v1.Destination{webhook("hook", s.url(), 32)},
		RetryPolicy:  fastRetries(2),
	})
	// A sink failing every request would open the circuit breaker; this
	// test is about dead letters, not the breaker.
	node := e.startNodeWith(dataplane.Config{WebhookPolicy: netguard.Policy{AllowLoopback: true}, BreakerThreshold: 1_000_000})
	e.waitKafkaTopic(ctx, kafkaname.TenantTopic(e.tenant.GetId(), topic.GetId()))
	start := time.Now().Add(-time.Minute)
	e.publishAll(ctx, e.ingestClient(node.Addr(), e.producerKey), "redriven", events, 250)
	began := time.Now()
	dls := consumeDeadLetters(t, e.brokers, pipe.GetDeadLetterTopic(), n, timeout/2)
	require.Len(t, dls, n)
	t.Logf("%d events dead-lettered in %v", n, time.Since(began).Round(time.Millisecond))
	require.Zero(t, s.tally(want).unique, "nothing is accepted before the fix")

	fixed.Store(true)
	events2 := e.redriveEvents()
	began = time.Now()
	res, err := events2.RedriveDeadLetters(ctx, &v1.RedriveDeadLettersRequest{
		PipelineId: pipe.GetId(),
		Selector: &v1.RedriveDeadLettersRequest_TimeRange{TimeRange: &v1.TimeRange{
			StartTime: timestamppb.New(start), EndTime: timestamppb.New(time.Now().Add(time.Minute))}},
	})
	require.NoError(t, err)
	id := res.GetOperation().GetId()
	var (
		op       *v1.Operation
		progress []uint64
	)
	for {
		got, err := events2.GetOperation(ctx, &v1.GetOperationRequest{Id: id})
		require.NoError(t, err)
		op = got.GetOperation()
		if len(progress) == 0 || progress[len(progress)-1] != op.GetDone() {
			progress = append(progress, op.GetDone())
		}
		if op.GetState() != v1.OperationState_OPERATION_STATE_RUNNING {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("operation %s still running: %v", id, op)
		case <-time.After(20 * time.Millisecond):
		}
	}
	published := time.Since(began)
	require.Equal(t, v1.OperationState_OPERATION_STATE_SUCCEEDED, op.GetState(), op.GetError())
	require.Equal(t, uint64(n), op.GetDone())
	require.Equal(t, uint64(n), op.GetTotal())
	t.Logf("redrive of %d dead letters: SUCCEEDED in %v; done as polled: %v", n, published.Round(time.Millisecond), progress)

	got := s.waitAll(t, "redrive", want, time.Until(deadlineOf(ctx)))
	require.Zero(t, got.unexpected, got.String())
	t.Logf("after the redrive, %v later: %s", time.Since(began).Round(time.Millisecond), got)
}

// waitKafkaTopic waits until the broker lists topic with its partitions.
func (e *env) waitKafkaTopic(ctx context.Context, topic string) {
	e.t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.brokers...))
	require.NoError(e.t, err)
	defer cl.Close()
	adm := kadm.NewClient(cl)
	for {
		md, err := adm.Metadata(ctx, topic)
		if err == nil {
			if d, ok := md.Topics[topic]; ok && d.Err == nil && len(d.Partitions) > 0 {
				return
			}
		}
		select {
		case <-ctx.Done():
			e.t.Fatalf("topic %s not provisioned: %v", topic, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// deadlineOf returns ctx's deadline.
func deadlineOf(ctx context.Context) time.Time {
	d, _ := ctx.Deadline()
	return d
}

// TestRedriveDeadLetters dead-letters 200 events, fixes the sink and
// redrives them by time range: every event is delivered, with its id.
func TestRedriveDeadLetters(t *testing.T) {
	t.Parallel()
	testRedrive(t, 200, 90*time.Second)
}

// TestRedriveManyDeadLetters is TestRedriveDeadLetters with 10,000 events,
// logging the progress the operation reports.
func TestRedriveManyDeadLetters(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000 events: not in -short")
	}
	t.Parallel()
	testRedrive(t, 10_000, 4*time.Minute)
}

// TestRedriveToOverride dead-letters events through a sink that fails
// every request and redrives them with a destination override naming a
// second, healthy sink: every event arrives there once, signed with the
// pipeline destination's secret, with its id; the first sink gets nothing
// more; the ledger names the override in the attempts and holds the
// payload. Bad overrides are refused with field violations.
func TestRedriveToOverride(t *testing.T) {
	t.Parallel()
	const n = 100
	e := newEnv(t, envOptions{webhookPolicy: netguard.Policy{AllowLoopback: true}, ledger: true})
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	events := makeEvents("ovr", n, 7)
	want := idSet(events, nil)

	topic := e.createTopic("overridden", 4)
	failing := newSink(t)
	failing.respond = func(string, []byte) int { return http.StatusInternalServerError }
	pipe := e.createPipeline(&v1.Pipeline{
		Name: "overridden", TopicId: topic.GetId(),
		Destinations: []*v1.Destination{webhook("hook", failing.url(), 32)},
		RetryPolicy:  fastRetries(2),
	})
	healthy := newSink(t)
	healthy.secret = secretOf(pipe, "hook")
	node := e.startNodeWith(dataplane.Config{WebhookPolicy: netguard.Policy{AllowLoopback: true}, BreakerThreshold: 1_000_000})
	e.waitKafkaTopic(ctx, kafkaname.TenantTopic(e.tenant.GetId(), topic.GetId()))
	e.publishAll(ctx, e.ingestClient(node.Addr(), e.producerKey), "overridden", events, 50)
	require.Len(t, consumeDeadLetters(t, e.brokers, pipe.GetDeadLetterTopic(), n, 45*time.Second), n)
	before := failing.requests.Load()

	events2 := e.redriveEvents()
	redrive := func(url string) (*v1.RedriveDeadLettersResponse, error) {
		return events2.RedriveDeadLetters(ctx, &v1.RedriveDeadLettersRequest{
			PipelineId:          pipe.GetId(),
			Selector:            &v1.RedriveDeadLettersRequest_Reason{Reason: "max_attempts"},
			DestinationOverride: webhook("hook", url, 32),
		})
	}
	for _, bad := range []string{"ftp://example.com/hook", "http://10.0.0.7/hook", "http://169.254.169.254/latest/meta-data"} {
		_, err := redrive(bad)
		require.Equal(t, connect.CodeInvalidArgument, connect.CodeOf(err), bad)
		require.Contains(t, fieldViolations(t, err), "destination_override.webhook.url", bad)
	}

	res, err := redrive(healthy.url())
	require.NoError(t, err)
	op := res.GetOperation()
	for op.GetState() == v1.OperationState_OPERATION_STATE_RUNNING {
		time.Sleep(20 * time.Millisecond)
		got, err := events2.GetOperation(ctx, &v1.GetOperationRequest{Id: op.GetId()})
		require.NoError(t, err)
		op = got.GetOperation()
	}
	require.Equal(t, v1.OperationState_OPERATION_STATE_SUCCEEDED, op.GetState(), op.GetError())
	require.Equal(t, uint64(n), op.GetDone())

	got := healthy.waitAll(t, "override", want, time.Until(deadlineOf(ctx)))
	time.Sleep(500 * time.Millisecond) // any duplicate would come now
	got = healthy.tally(want)
	require.Zero(t, got.unexpected, got.String())
	require.Zero(t, got.duplicates, got.String())
	require.Equal(t, before, failing.requests.Load(), "the failing destination got no redriven event")

	// The ledger names the override in the redriven attempt.
	id := events[0].GetId()
	require.Eventually(t, func() bool {
		res, err := e.events.GetEvent(ctx, &v1.GetEventRequest{TopicId: topic.GetId(), EventId: id})
		if err != nil {
			return false
		}
		for _, a := range res.GetAttempts() {
			if a.GetTarget() == healthy.url() && a.GetStatus() == v1.DeliveryStatus_DELIVERY_STATUS_DELIVERED {
				return true
			}
		}
		return false
	}, 30*time.Second, 100*time.Millisecond)
	// And it holds the payload as published (the tenant keeps payloads).
	rec, err := e.events.GetEvent(ctx, &v1.GetEventRequest{TopicId: topic.GetId(), EventId: id})
	require.NoError(t, err)
	require.Equal(t, events[0].GetData(), rec.GetEvent().GetEvent().GetData())
}

// fieldViolations returns the field paths of an error's violations.
func fieldViolations(t *testing.T, err error) []string {
	t.Helper()
	var ce *connect.Error
	require.ErrorAs(t, err, &ce)
	var out []string
	for _, d := range ce.Details() {
		v, derr := d.Value()
		require.NoError(t, derr)
		if vs, ok := v.(*validate.Violations); ok {
			for _, x := range vs.GetViolations() {
				out = append(out, protovalidate.FieldPathString(x.GetField()))
			}
		}
	}
	return out
}
