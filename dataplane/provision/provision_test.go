package provision_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/switchyard-dev/switchyard/dataplane/provision"
	"github.com/switchyard-dev/switchyard/dataplane/snapshot"
	"github.com/switchyard-dev/switchyard/internal/ids"
	"github.com/switchyard-dev/switchyard/internal/kafkaname"
	"github.com/switchyard-dev/switchyard/internal/testenv/kafkatest"
	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fixture is a configuration with topics in and out of the provisioned
// region.
type fixture struct {
	region, other, failed string
	tenant                string
	home, away, takenOver *v1.Topic
	pipeline              *v1.Pipeline
	retry                 []string
}

func newFixture() *fixture {
	f := &fixture{
		region: ids.New("reg"), other: ids.New("reg"), failed: ids.New("reg"),
		tenant: ids.New("ten"),
	}
	topic := func(region string, partitions uint32, retention time.Duration) *v1.Topic {
		id := ids.New("top")
		t := &v1.Topic{Id: id, TenantId: f.tenant, Name: id, RegionId: region, Partitions: partitions,
			KafkaTopic: kafkaname.TenantTopic(f.tenant, id)}
		if retention > 0 {
			t.Retention = durationpb.New(retention)
		}
		return t
	}
	f.home = topic(f.region, 3, 2*time.Hour)
	f.away = topic(f.other, 2, 0)
	f.takenOver = topic(f.failed, 0, 0)
	pid := ids.New("pip")
	f.pipeline = &v1.Pipeline{Id: pid, TenantId: f.tenant, TopicId: f.home.Id,
		DeadLetterPolicy: &v1.DeadLetterPolicy{Retention: durationpb.New(90 * time.Minute)}}
	suffix := ids.New("t")
	f.retry = []string{"sy._retry.test-a." + suffix, "sy._retry.test-b." + suffix}
	return f
}

// snapshot builds a snapshot of the fixture as it is now. It copies the
// messages, since a snapshot must not change once published and the tests
// go on to edit the fixture.
func (f *fixture) snapshot(version int64) *snapshot.Snapshot {
	clone := func(t *v1.Topic) *v1.Topic { return proto.Clone(t).(*v1.Topic) }
	return snapshot.New(&v1.ConfigSnapshot{
		Version: version,
		Regions: []*v1.Region{
			{Id: f.region, Name: "home", Status: v1.RegionStatus_REGION_STATUS_ACTIVE},
			{Id: f.other, Name: "other", Status: v1.RegionStatus_REGION_STATUS_ACTIVE},
			{Id: f.failed, Name: "failed", Status: v1.RegionStatus_REGION_STATUS_FAILED, FailoverRegionId: f.region},
		},
		Topics:    []*v1.Topic{clone(f.home), clone(f.away), clone(f.takenOver)},
		Pipelines: []*v1.Pipeline{proto.Clone(f.pipeline).(*v1.Pipeline)},
	})
}

func (f *fixture) dlq() string { return kafkaname.DeadLetterTopic(f.tenant, f.pipeline.Id) }

func TestWanted(t *testing.T) {
	t.Parallel()
	f := newFixture()
	got := provision.Wanted(f.snapshot(1), f.region, f.retry, 4)
	want := map[string]provision.Spec{
		f.home.KafkaTopic:      {Name: f.home.KafkaTopic, Partitions: 3, Retention: 2 * time.Hour},
		f.dlq():                {Name: f.dlq(), Partitions: 3, Retention: 90 * time.Minute},
		f.takenOver.KafkaTopic: {Name: f.takenOver.KafkaTopic, Partitions: provision.DefaultPartitions, Retention: provision.DefaultTopicRetention},
		f.retry[0]:             {Name: f.retry[0], Partitions: 4},
		f.retry[1]:             {Name: f.retry[1], Partitions: 4},
	}
	require.Len(t, got, len(want))
	for i, s := range got {
		require.Equal(t, want[s.Name], s)
		if i > 0 {
			require.Less(t, got[i-1].Name, s.Name, "sorted by name")
		}
	}

	// A pipeline without a dead-letter policy keeps dead letters 14 days.
	f.pipeline.DeadLetterPolicy = nil
	for _, s := range provision.Wanted(f.snapshot(2), f.region, nil, 1) {
		if s.Name == f.dlq() {
			require.Equal(t, provision.DefaultDeadLetterRetention, s.Retention)
		}
	}
	// The other region wants only its own topic.
	other := provision.Wanted(f.snapshot(3), f.other, nil, 1)
	require.Equal(t, []provision.Spec{{Name: f.away.KafkaTopic, Partitions: 2, Retention: provision.DefaultTopicRetention}}, other)
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	_, err := provision.New(provision.Config{})
	require.ErrorContains(t, err, "Admin is required")
	require.ErrorContains(t, err, "Snapshots is required")
	require.ErrorContains(t, err, "RegionID is required")
	_, err = provision.New(provision.Config{Internal: []provision.Spec{{Name: "x"}}})
	require.ErrorContains(t, err, `internal topic "x" needs a name and partitions`)
}

func TestProvisionFake(t *testing.T) {
	t.Parallel()
	testProvision(t, kafkatest.NewFake(t, kfake.NumBrokers(1)))
}

func TestProvisionRealKafka(t *testing.T) {
	t.Parallel()
	testProvision(t, kafkatest.RealBrokers(t))
}

func testProvision(t *testing.T, brokers []string) {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	require.NoError(t, err)
	defer cl.Close()
	adm := kadm.NewClient(cl)

	f := newFixture()
	var holder snapshot.Holder
	holder.Set(f.snapshot(1))
	acks := f.home.KafkaTopic + ".acks"
	p, err := provision.New(provision.Config{
		Admin: adm, Snapshots: &holder, RegionID: f.region,
		RetryTopics: f.retry, RetryPartitions: 2, Interval: time.Hour,
		Internal: []provision.Spec{{Name: acks, Partitions: 3, MaxMessageBytes: 3 << 20}, {Name: f.retry[0], Partitions: 1},
			{Name: f.retry[1], Partitions: 1, MaxMessageBytes: 2 << 20}},
	})
	require.NoError(t, err)

	all := []string{f.home.KafkaTopic, f.dlq(), f.takenOver.KafkaTopic, f.retry[0], f.retry[1], f.away.KafkaTopic, acks}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
		if err != nil {
			t.Errorf("cleanup: %v", err)
			return
		}
		defer cl.Close()
		_, _ = kadm.NewClient(cl).DeleteTopics(ctx, all...)
	})

	// One retry topic exists already, smaller and with its own retention:
	// it is grown, its retention kept, and nothing fails.
	pre := "86400000"
	_, err = adm.CreateTopic(ctx, 1, -1, map[string]*string{"retention.ms": &pre}, f.retry[1])
	require.NoError(t, err)

	require.NoError(t, p.Reconcile(ctx))
	requireTopic(ctx, t, adm, f.home.KafkaTopic, 3, 2*time.Hour)
	requireTopic(ctx, t, adm, f.dlq(), 3, 90*time.Minute)
	requireTopic(ctx, t, adm, f.takenOver.KafkaTopic, provision.DefaultPartitions, provision.DefaultTopicRetention)
	requireTopic(ctx, t, adm, f.retry[0], 2, 0)
	requireTopic(ctx, t, adm, f.retry[1], 2, 0)
	requireTopic(ctx, t, adm, acks, 3, 0)
	require.Equal(t, pre, retention(ctx, adm, f.retry[1]))
	// max.message.bytes set on create, and on a topic that existed.
	require.Equal(t, strconv.Itoa(3<<20), topicConfig(ctx, adm, acks, "max.message.bytes"))
	require.Equal(t, strconv.Itoa(2<<20), topicConfig(ctx, adm, f.retry[1], "max.message.bytes"))
	requireMissing(ctx, t, adm, f.away.KafkaTopic)

	// Idempotent.
	require.NoError(t, p.Reconcile(ctx))

	// Run picks up new snapshots: partitions grow, retention changes, and a
	// topic that left the configuration is not deleted.
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- p.Run(runCtx) }()
	defer func() {
		stop()
		require.NoError(t, <-done)
	}()

	f.home.Partitions = 5
	f.home.Retention = durationpb.New(3 * time.Hour)
	f.pipeline.DeadLetterPolicy = nil
	holder.Set(f.snapshot(2))
	require.Eventually(t, func() bool {
		return partitions(ctx, adm, f.home.KafkaTopic) == 5 && partitions(ctx, adm, f.dlq()) == 5 &&
			retention(ctx, adm, f.home.KafkaTopic) == "10800000" &&
			retention(ctx, adm, f.dlq()) == strconv.FormatInt(provision.DefaultDeadLetterRetention.Milliseconds(), 10)
	}, 30*time.Second, 50*time.Millisecond)

	// A smaller partition count in the config does not shrink the topic and
	// is not an error.
	f.home.Partitions = 2
	holder.Set(f.snapshot(3))
	require.NoError(t, p.Reconcile(ctx))
	require.Equal(t, 5, partitions(ctx, adm, f.home.KafkaTopic))

	// Removing a topic from the configuration keeps its Kafka topic.
	f.takenOver.RegionId = f.other
	holder.Set(f.snapshot(4))
	require.NoError(t, p.Reconcile(ctx))
	require.Equal(t, provision.DefaultPartitions, partitions(ctx, adm, f.takenOver.KafkaTopic))

	// A topic deleted behind the provisioner's back comes back.
	_, err = adm.DeleteTopics(ctx, f.retry[0])
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		return p.Reconcile(ctx) == nil && partitions(ctx, adm, f.retry[0]) == 2
	}, 30*time.Second, 200*time.Millisecond)
}

func partitions(ctx context.Context, adm *kadm.Client, topic string) int {
	d, err := adm.ListTopics(kadm.WithAuthorizedOps(ctx), topic)
	if err != nil || d[topic].Err != nil {
		return -1
	}
	return len(d[topic].Partitions)
}

func retention(ctx context.Context, adm *kadm.Client, topic string) string {
	return topicConfig(ctx, adm, topic, "retention.ms")
}

// topicConfig returns the value of a topic's config key; "" when unknown.
func topicConfig(ctx context.Context, adm *kadm.Client, topic, key string) string {
	rcs, err := adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		return ""
	}
	rc, err := rcs.On(topic, nil)
	if err != nil || rc.Err != nil {
		return ""
	}
	for _, c := range rc.Configs {
		if c.Key == key && c.Value != nil {
			return *c.Value
		}
	}
	return ""
}

// requireTopic checks a topic's partitions and, when want > 0, its
// retention.
func requireTopic(ctx context.Context, t *testing.T, adm *kadm.Client, topic string, parts int, want time.Duration) {
	t.Helper()
	// A broker answers metadata from its own view, which may trail a topic
	// created a moment ago by a few milliseconds.
	var got int
	require.Eventually(t, func() bool {
		got = partitions(ctx, adm, topic)
		return got == parts
	}, 10*time.Second, 20*time.Millisecond, "partitions of %s: got %d, want %d", topic, got, parts)
	if want > 0 {
		require.Equal(t, strconv.FormatInt(want.Milliseconds(), 10), retention(ctx, adm, topic), "retention of %s", topic)
	}
}

func requireMissing(ctx context.Context, t *testing.T, adm *kadm.Client, topic string) {
	t.Helper()
	d, err := adm.ListTopics(kadm.WithAuthorizedOps(ctx), topic)
	require.NoError(t, err)
	require.Error(t, d[topic].Err, "topic %s should not exist", topic)
}
