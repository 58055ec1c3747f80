package controlplane

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/switchyard-dev/switchyard/controlplane/store"
	"github.com/switchyard-dev/switchyard/internal/kafkaname"
	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
)

// newRedriveWorld returns a server, a client of a fake Kafka cluster, a
// pipeline of a tenant in the cluster's region, clients of an admin of that
// tenant and of an admin of another tenant.
func newRedriveWorld(t *testing.T) (*testBundle, *kgo.Client, *v1.Pipeline, *clients, *clients) {
	t.Helper()
	b := setup(t)
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, kafkaname.RetryTopic(kafkaname.RetryTiers[0])))
	require.NoError(t, err)
	t.Cleanup(c.Close)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	require.NoError(t, err)
	t.Cleanup(cl.Close)
	res, err := b.op.regions.CreateRegion(t.Context(), &v1.CreateRegionRequest{Region: &v1.Region{
		Name: uniqueName("reg"), KafkaBrokers: c.ListenAddrs(),
	}})
	require.NoError(t, err)
	ten := b.tenant(t)
	top := b.topic(t, ten.GetId(), res.GetRegion().GetId())
	pip := b.pipeline(t, ten.GetId(), top.GetId())
	_, adminKey := b.key(t, ten.GetId(), v1.ApiKeyRole_API_KEY_ROLE_ADMIN)
	other := b.tenant(t)
	_, otherKey := b.key(t, other.GetId(), v1.ApiKeyRole_API_KEY_ROLE_ADMIN)
	return b, cl, pip, b.clients(adminKey), b.clients(otherKey)
}

// deadLetter returns dead letter i of pipeline p as the data plane writes
// it, stamped at.
func deadLetter(p *v1.Pipeline, i int, reason string, at time.Time) *kgo.Record {
	id := fmt.Sprintf("ev-%04d", i)
	return &kgo.Record{
		Topic: p.GetDeadLetterTopic(), Key: []byte("k" + id), Value: []byte(`{"n":` + strconv.Itoa(i) + `}`), Timestamp: at,
		Headers: []kgo.RecordHeader{
			{Key: "ce_id", Value: []byte(id)},
			{Key: "ce_type", Value: []byte("order.created")},
			{Key: kafkaname.HeaderPipeline, Value: []byte(p.GetId())},
			{Key: kafkaname.HeaderDestination, Value: []byte("hook")},
			{Key: kafkaname.HeaderReason, Value: []byte(reason)},
			{Key: kafkaname.HeaderAttempt, Value: []byte("5")},
			{Key: kafkaname.HeaderFirstAttempt, Value: []byte(at.Add(-time.Hour).UTC().Format(time.RFC3339Nano))},
			{Key: kafkaname.HeaderOrigin, Value: []byte("sy.x/0/" + strconv.Itoa(i))},
			{Key: kafkaname.HeaderLastStatus, Value: []byte("500")},
		},
	}
}

// produceDeadLetters writes recs to the dead-letter topic of p, creating
// it with three partitions first.
func produceDeadLetters(t *testing.T, cl *kgo.Client, p *v1.Pipeline, recs ...*kgo.Record) {
	t.Helper()
	_, err := kadm.NewClient(cl).CreateTopic(t.Context(), 3, 1, nil, p.GetDeadLetterTopic())
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		require.NoError(t, err)
	}
	require.NoError(t, cl.ProduceSync(t.Context(), recs...).FirstErr())
}

// retried reads every record of the shortest retry tier.
func retried(t *testing.T, cl *kgo.Client, want int) []*kgo.Record {
	t.Helper()
	c, err := kgo.NewClient(kgo.SeedBrokers(cl.OptValue(kgo.SeedBrokers).([]string)...),
		kgo.ConsumeTopics(kafkaname.RetryTopic(kafkaname.RetryTiers[0])), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	require.NoError(t, err)
	defer c.Close()
	var out []*kgo.Record
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	for len(out) <= want { // one more than wanted, or the timeout
		fs := c.PollFetches(ctx)
		if ctx.Err() != nil {
			break
		}
		out = append(out, fs.Records()...)
	}
	return out
}

// waitOperation polls an operation until it ends.
func waitOperation(t *testing.T, c *clients, id string) *v1.Operation {
	t.Helper()
	var op *v1.Operation
	require.Eventually(t, func() bool {
		res, err := c.events.GetOperation(t.Context(), &v1.GetOperationRequest{Id: id})
		require.NoError(t, err)
		op = res.GetOperation()
		return op.GetState() != v1.OperationState_OPERATION_STATE_RUNNING
	}, 20*time.Second, 20*time.Millisecond)
	return op
}

func eventIDs(recs []*kgo.Record) []string {
	var out []string
	for _, r := range recs {
		id, _ := header(r, "ce_id")
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

func TestRedriveDeadLetters(t *testing.T) {
	t.Parallel()
	_, cl, p, own, other := newRedriveWorld(t)
	ctx := t.Context()
	t0 := time.Now().Add(-10 * time.Minute).Truncate(time.Millisecond)
	var recs []*kgo.Record
	for i := range 30 {
		reason := "max_attempts"
		if i%3 == 0 {
			reason = "non_retryable_status"
		}
		recs = append(recs, deadLetter(p, i, reason, t0.Add(time.Duration(i)*time.Second)))
	}
	// A dead letter of another pipeline sharing the topic is never selected.
	stray := deadLetter(p, 99, "max_attempts", t0)
	stray.Headers[2].Value = []byte("pip_00000000000000000000000000")
	recs = append(recs, stray)
	produceDeadLetters(t, cl, p, recs...)

	// By time range [t0+10s, t0+20s): events 10..19.
	before := time.Now()
	res, err := own.events.RedriveDeadLetters(ctx, &v1.RedriveDeadLettersRequest{PipelineId: p.GetId(),
		Selector: &v1.RedriveDeadLettersRequest_TimeRange{TimeRange: &v1.TimeRange{
			StartTime: timestamppb.New(t0.Add(10 * time.Second)), EndTime: timestamppb.New(t0.Add(20 * time.Second))}}})
	require.NoError(t, err)
	op := res.GetOperation()
	require.Regexp(t, `^op_[0-9a-z]{26}$`, op.GetId())
	require.Equal(t, v1.OperationState_OPERATION_STATE_RUNNING, op.GetState())
	require.Equal(t, v1.OperationKind_OPERATION_KIND_REDRIVE, op.GetKind())
	require.Equal(t, p.GetId(), op.GetPipelineId())
	op = waitOperation(t, own, op.GetId())
	require.Equal(t, v1.OperationState_OPERATION_STATE_SUCCEEDED, op.GetState(), op.GetError())
	require.Equal(t, uint64(10), op.GetDone())
	require.Equal(t, uint64(10), op.GetTotal())
	require.NotNil(t, op.GetEndTime())

	got := retried(t, cl, 10)
	var want []string
	for i := 10; i < 20; i++ {
		want = append(want, fmt.Sprintf("ev-%04d", i))
	}
	require.Equal(t, want, eventIDs(got))
	for _, r := range got {
		id, _ := header(r, "ce_id")
		require.Equal(t, []byte("k"+id), r.Key)
		h := func(k string) string { v, _ := header(r, k); return v }
		require.Equal(t, p.GetId(), h(kafkaname.HeaderPipeline))
		require.Equal(t, "hook", h(kafkaname.HeaderDestination))
		require.Equal(t, "0", h(kafkaname.HeaderAttempt))
		require.Equal(t, "order.created", h("ce_type"))
		require.Equal(t, "sy.x/0/"+strconv.Itoa(int(r.Value[5]-'0')*10+int(r.Value[6]-'0')), h(kafkaname.HeaderOrigin))
		for _, k := range []string{kafkaname.HeaderFirstAttempt, kafkaname.HeaderDue, kafkaname.HeaderRedrive} {
			ts, err := time.Parse(time.RFC3339Nano, h(k))
			require.NoError(t, err)
			require.False(t, ts.Before(before.Add(-time.Second)), "%s %v", k, ts)
		}
		for _, k := range []string{kafkaname.HeaderReason, kafkaname.HeaderLastStatus} {
			_, ok := header(r, k)
			require.False(t, ok, k)
		}
		n := 0
		for _, x := range r.Headers {
			if x.Key == kafkaname.HeaderAttempt {
				n++
			}
		}
		require.Equal(t, 1, n)
	}

	// By reason: events 0, 3, ..., 27 (10 more on the tier).
	res, err = own.events.RedriveDeadLetters(ctx, &v1.RedriveDeadLettersRequest{PipelineId: p.GetId(),
		Selector: &v1.RedriveDeadLettersRequest_Reason{Reason: "non_retryable_status"}})
	require.NoError(t, err)
	op = waitOperation(t, own, res.GetOperation().GetId())
	require.Equal(t, v1.OperationState_OPERATION_STATE_SUCCEEDED, op.GetState(), op.GetError())
	require.Equal(t, uint64(10), op.GetDone())
	got = retried(t, cl, 20)
	require.Len(t, got, 20)
	byReason := slices.Clone(want)
	for i := 0; i < 30; i += 3 {
		byReason = append(byReason, fmt.Sprintf("ev-%04d", i))
	}
	slices.Sort(byReason)
	require.Equal(t, byReason, eventIDs(got))

	// By ids, one unknown: only the two known ones, to the named destination.
	res, err = own.events.RedriveDeadLetters(ctx, &v1.RedriveDeadLettersRequest{PipelineId: p.GetId(),
		Selector:            &v1.RedriveDeadLettersRequest_Ids{Ids: &v1.EventIds{Ids: []string{"ev-0004", "ev-0029", "nope"}}},
		DestinationOverride: p.GetDestinations()[0]})
	require.NoError(t, err)
	op = waitOperation(t, own, res.GetOperation().GetId())
	require.Equal(t, v1.OperationState_OPERATION_STATE_SUCCEEDED, op.GetState(), op.GetError())
	require.Equal(t, uint64(2), op.GetDone())
	got = retried(t, cl, 22)
	require.Len(t, got, 22)
	byIDs := append(slices.Clone(byReason), "ev-0004", "ev-0029")
	slices.Sort(byIDs)
	require.Equal(t, byIDs, eventIDs(got))

	// Another tenant sees neither the pipeline nor the operation.
	_, err = other.events.RedriveDeadLetters(ctx, &v1.RedriveDeadLettersRequest{PipelineId: p.GetId(),
		Selector: &v1.RedriveDeadLettersRequest_Reason{Reason: "x"}})
	requireCode(t, err, connect.CodeNotFound)
	_, err = other.events.GetOperation(ctx, &v1.GetOperationRequest{Id: op.GetId()})
	requireCode(t, err, connect.CodeNotFound)
	_, err = other.events.CancelOperation(ctx, &v1.CancelOperationRequest{Id: op.GetId()})
	requireCode(t, err, connect.CodeNotFound)

	// Cancelling an ended operation changes nothing.
	c, err := own.events.CancelOperation(ctx, &v1.CancelOperationRequest{Id: op.GetId()})
	require.NoError(t, err)
	require.Equal(t, v1.OperationState_OPERATION_STATE_SUCCEEDED, c.GetOperation().GetState())
}

func TestRedriveDestinationOverride(t *testing.T) {
	t.Parallel()
	_, cl, p, own, other := newRedriveWorld(t)
	ctx := t.Context()
	sel := &v1.RedriveDeadLettersRequest_Reason{Reason: "max_attempts"}
	hook := func(name, url string) *v1.Destination {
		return &v1.Destination{Name: name, Kind: &v1.Destination_Webhook{Webhook: &v1.WebhookDestination{Url: url}}}
	}
	redrive := func(c *clients, o *v1.Destination) (*v1.Operation, error) {
		res, err := c.events.RedriveDeadLetters(ctx, &v1.RedriveDeadLettersRequest{PipelineId: p.GetId(), Selector: sel,
			DestinationOverride: o})
		return res.GetOperation(), err
	}

	// Bad overrides: a name the pipeline lacks, a scheme other than http(s),
	// literal private, loopback and metadata addresses, a secret of its own.
	_, err := redrive(own, hook("other", "https://example.com/hook"))
	require.Contains(t, violationsOf(t, err), "destination_override.name")
	for _, url := range []string{"ftp://example.com/hook", "http://10.1.2.3/hook", "http://127.0.0.1:8080/hook",
		"http://169.254.169.254/latest/meta-data", "http://[::1]/hook"} {
		_, err := redrive(own, hook("hook", url))
		requireCode(t, err, connect.CodeInvalidArgument)
		require.Contains(t, violationsOf(t, err), "destination_override.webhook.url", url)
	}
	withSecret := hook("hook", "https://example.com/fixed")
	withSecret.GetWebhook().SigningSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	_, err = redrive(own, withSecret)
	require.Contains(t, violationsOf(t, err), "destination_override.webhook.signing_secret")
	// Another tenant cannot redrive the pipeline, override or not.
	_, err = redrive(other, hook("hook", "https://example.com/fixed"))
	requireCode(t, err, connect.CodeNotFound)

	// Another URL: the retry records carry the override.
	produceDeadLetters(t, cl, p, deadLetter(p, 1, "max_attempts", time.Now()), deadLetter(p, 2, "max_attempts", time.Now()))
	op, err := redrive(own, hook("hook", "https://example.com/fixed"))
	require.NoError(t, err)
	op = waitOperation(t, own, op.GetId())
	require.Equal(t, v1.OperationState_OPERATION_STATE_SUCCEEDED, op.GetState(), op.GetError())
	got := retried(t, cl, 2)
	require.Len(t, got, 2)
	for _, r := range got {
		v, ok := header(r, kafkaname.HeaderDestinationOverride)
		require.True(t, ok)
		var o v1.Destination
		require.NoError(t, proto.Unmarshal([]byte(v), &o))
		require.Equal(t, "hook", o.GetName())
		require.Equal(t, "https://example.com/fixed", o.GetWebhook().GetUrl())
		d, _ := header(r, kafkaname.HeaderDestination)
		require.Equal(t, "hook", d)
	}

	// A redrive of those records again without an override (or with the
	// pipeline's own destination) does not keep the earlier override.
	// got[0] dead-lettered again, as the data plane writes it (with the
	// override header it carried).
	dl := &kgo.Record{Topic: p.GetDeadLetterTopic(), Key: got[0].Key, Value: got[0].Value,
		Headers: append(slices.Clone(got[0].Headers), kgo.RecordHeader{Key: kafkaname.HeaderReason, Value: []byte("max_attempts")})}
	produceDeadLetters(t, cl, p, dl)
	op, err = redrive(own, p.GetDestinations()[0])
	require.NoError(t, err)
	op = waitOperation(t, own, op.GetId())
	require.Equal(t, v1.OperationState_OPERATION_STATE_SUCCEEDED, op.GetState(), op.GetError())
	again := retried(t, cl, 5)
	require.Len(t, again, 5) // 2 + the 3 dead letters now on the topic
	overridden := func(recs []*kgo.Record) map[string]int {
		out := map[string]int{}
		for _, r := range recs {
			if v, ok := header(r, kafkaname.HeaderDestinationOverride); ok {
				var o v1.Destination
				require.NoError(t, proto.Unmarshal([]byte(v), &o))
				out[o.GetWebhook().GetUrl()+o.GetKafka().GetTopic()]++
			}
		}
		return out
	}
	require.Equal(t, map[string]int{"https://example.com/fixed": 2}, overridden(again), "only the first redrive's records")

	// A Kafka topic.
	op, err = redrive(own, &v1.Destination{Name: "hook", Kind: &v1.Destination_Kafka{Kafka: &v1.KafkaDestination{Topic: "orders.fixed"}}})
	require.NoError(t, err)
	op = waitOperation(t, own, op.GetId())
	require.Equal(t, v1.OperationState_OPERATION_STATE_SUCCEEDED, op.GetState(), op.GetError())
	last := retried(t, cl, 8)
	require.Len(t, last, 8)
	require.Equal(t, map[string]int{"https://example.com/fixed": 2, "orders.fixed": 3}, overridden(last))
}

func TestRedriveEmptyAndProgress(t *testing.T) {
	t.Parallel()
	_, cl, p, own, _ := newRedriveWorld(t)
	ctx := t.Context()
	// No dead-letter topic yet: nothing to do.
	res, err := own.events.RedriveDeadLetters(ctx, &v1.RedriveDeadLettersRequest{PipelineId: p.GetId(),
		Selector: &v1.RedriveDeadLettersRequest_Reason{Reason: "max_attempts"}})
	require.NoError(t, err)
	op := waitOperation(t, own, res.GetOperation().GetId())
	require.Equal(t, v1.OperationState_OPERATION_STATE_SUCCEEDED, op.GetState(), op.GetError())
	require.Zero(t, op.GetDone())

	// More than a batch: progress is recorded batch by batch.
	n := 3*redriveBatch + 17
	var recs []*kgo.Record
	for i := range n {
		recs = append(recs, deadLetter(p, i, "max_attempts", time.Now()))
	}
	produceDeadLetters(t, cl, p, recs...)
	res, err = own.events.RedriveDeadLetters(ctx, &v1.RedriveDeadLettersRequest{PipelineId: p.GetId(),
		Selector: &v1.RedriveDeadLettersRequest_Reason{Reason: "max_attempts"}})
	require.NoError(t, err)
	op = waitOperation(t, own, res.GetOperation().GetId())
	require.Equal(t, v1.OperationState_OPERATION_STATE_SUCCEEDED, op.GetState(), op.GetError())
	require.Equal(t, uint64(n), op.GetDone())
	require.Equal(t, uint64(n), op.GetTotal())
	require.Len(t, retried(t, cl, n), n)
}

func TestRedriveCancelAndClose(t *testing.T) {
	t.Parallel()
	b, cl, p, own, _ := newRedriveWorld(t)
	ctx := t.Context()
	produceDeadLetters(t, cl, p, deadLetter(p, 1, "max_attempts", time.Now()))

	// A redrive that cannot make progress: its region's broker accepts
	// connections and never answers.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	accepted := make(chan net.Conn, 64)
	t.Cleanup(func() {
		_ = silent.Close()
		close(accepted)
		for c := range accepted {
			_ = c.Close()
		}
	})
	go func() {
		for {
			conn, err := silent.Accept()
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
	setBrokers(t, b, p, silent.Addr().String())
	blocked := func() string {
		res, err := own.events.RedriveDeadLetters(ctx, &v1.RedriveDeadLettersRequest{PipelineId: p.GetId(),
			Selector: &v1.RedriveDeadLettersRequest_Reason{Reason: "max_attempts"}})
		require.NoError(t, err)
		return res.GetOperation().GetId()
	}
	id := blocked()
	res, err := own.events.CancelOperation(ctx, &v1.CancelOperationRequest{Id: id})
	require.NoError(t, err)
	require.Equal(t, v1.OperationState_OPERATION_STATE_CANCELLED, res.GetOperation().GetState())
	require.NotNil(t, res.GetOperation().GetEndTime())
	got, err := own.events.GetOperation(ctx, &v1.GetOperationRequest{Id: id})
	require.NoError(t, err)
	require.Equal(t, v1.OperationState_OPERATION_STATE_CANCELLED, got.GetOperation().GetState())

	// Close stops what runs: it ends FAILED.
	id = blocked()
	b.server.Close()
	got, err = own.events.GetOperation(ctx, &v1.GetOperationRequest{Id: id})
	require.NoError(t, err)
	require.Equal(t, v1.OperationState_OPERATION_STATE_FAILED, got.GetOperation().GetState())
	require.Equal(t, errServerClosed.Error(), got.GetOperation().GetError())
	// After Close a redrive ends FAILED at once.
	res2, err := own.events.RedriveDeadLetters(ctx, &v1.RedriveDeadLettersRequest{PipelineId: p.GetId(),
		Selector: &v1.RedriveDeadLettersRequest_Reason{Reason: "max_attempts"}})
	require.NoError(t, err)
	require.Equal(t, v1.OperationState_OPERATION_STATE_FAILED, res2.GetOperation().GetState())
}

// setBrokers points the region of pipeline p at brokers.
func setBrokers(t *testing.T, b *testBundle, p *v1.Pipeline, brokers ...string) {
	t.Helper()
	top, err := b.store.GetTopic(t.Context(), p.GetTopicId())
	require.NoError(t, err)
	reg, err := b.store.GetRegion(t.Context(), top.GetRegionId())
	require.NoError(t, err)
	v, err := strconv.ParseInt(reg.GetEtag(), 10, 64)
	require.NoError(t, err)
	reg.KafkaBrokers = brokers
	_, err = b.store.UpdateRegion(t.Context(), store.Actor{Kind: store.ActorOperator, ID: "test"}, reg, v)
	require.NoError(t, err)
}
