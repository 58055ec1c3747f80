package kafkatest_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	"github.com/switchyard-dev/switchyard/internal/testenv/kafkatest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// kinds are the Kafkas every test here runs against.
var kinds = []struct {
	name    string
	brokers func(t *testing.T) []string
}{
	{"kfake", func(t *testing.T) []string { return kafkatest.NewFake(t, kfake.NumBrokers(3)) }},
	{"real", func(t *testing.T) []string { return kafkatest.RealBrokers(t) }},
}

func TestProduceAndConsumeInAUniqueGroup(t *testing.T) {
	t.Parallel()
	for _, kind := range kinds {
		t.Run(kind.name, func(t *testing.T) {
			t.Parallel()
			brokers := kind.brokers(t)
			topic := kafkatest.Topic(t, brokers, 3)
			group := kafkatest.Group(t)
			const n = 100
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()

			producer, err := kgo.NewClient(
				kgo.SeedBrokers(brokers...),
				kgo.DefaultProduceTopic(topic),
				kgo.RequiredAcks(kgo.AllISRAcks()), // idempotent writes are kgo's default
			)
			require.NoError(t, err)
			defer producer.Close()
			records := make([]*kgo.Record, n)
			for i := range records {
				records[i] = &kgo.Record{Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, "v%d", i)}
			}
			require.NoError(t, producer.ProduceSync(ctx, records...).FirstErr())

			consumer, err := kgo.NewClient(
				kgo.SeedBrokers(brokers...),
				kgo.ConsumerGroup(group),
				kgo.ConsumeTopics(topic),
				kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
				kgo.DisableAutoCommit(),
			)
			require.NoError(t, err)
			defer consumer.Close()
			seen := map[string]int{}
			partitions := map[int32]bool{}
			for len(seen) < n {
				fetches := consumer.PollFetches(ctx)
				require.NoError(t, ctx.Err(), "consumed %d of %d records", len(seen), n)
				require.Empty(t, fetches.Errors())
				fetches.EachRecord(func(r *kgo.Record) {
					seen[string(r.Value)]++
					partitions[r.Partition] = true
				})
			}
			for i := range n {
				require.Equal(t, 1, seen[fmt.Sprintf("v%d", i)], "record v%d", i)
			}
			require.Len(t, seen, n)
			require.Len(t, partitions, 3, "keys spread over every partition")
			require.NoError(t, consumer.CommitUncommittedOffsets(ctx))

			adm := kadm.NewClient(producer)
			offsets, err := adm.FetchOffsets(ctx, group)
			require.NoError(t, err)
			var committed int64
			offsets.Each(func(o kadm.OffsetResponse) {
				require.NoError(t, o.Err)
				require.Equal(t, topic, o.Topic)
				committed += o.At
			})
			require.EqualValues(t, n, committed, "the group committed every record")
			t.Logf("%s: %d records through %s in group %s", kind.name, n, topic, group)
		})
	}
}

func TestTopicIsDeletedAtCleanup(t *testing.T) {
	t.Parallel()
	for _, kind := range kinds {
		t.Run(kind.name, func(t *testing.T) {
			t.Parallel()
			brokers := kind.brokers(t)
			var topic string
			t.Run("user", func(t *testing.T) {
				topic = kafkatest.Topic(t, brokers, 2)
			})
			require.NotEmpty(t, topic)

			cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
			require.NoError(t, err)
			defer cl.Close()
			adm := kadm.NewClient(cl)
			require.Eventually(t, func() bool {
				topics, err := adm.ListTopics(t.Context())
				return err == nil && !topics.Has(topic)
			}, 20*time.Second, 50*time.Millisecond, "topic %s outlived its test", topic)
		})
	}
}

func TestNamesAreUnique(t *testing.T) {
	t.Parallel()
	brokers := kafkatest.NewFake(t)
	a, b := kafkatest.Topic(t, brokers, 1), kafkatest.Topic(t, brokers, 1)
	require.NotEqual(t, a, b)
	require.NotEqual(t, kafkatest.Group(t), kafkatest.Group(t))
	require.Regexp(t, `^sytest\.TestNamesAreUnique\.[0-9a-f]{12}$`, a)
}
