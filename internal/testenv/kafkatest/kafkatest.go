// Package kafkatest gives tests a Kafka to talk to: an in-process fake
// (franz-go's kfake) for fast unit tests, or the real broker an integration
// run points at, with a unique topic and consumer group per test.
//
// A real broker is named by SWITCHYARD_TEST_KAFKA_BROKERS; `make test` and
// scripts/kafka.sh start one:
//
//	eval "$(scripts/kafka.sh start)" && export SWITCHYARD_TEST_KAFKA_BROKERS
//	go test ./...
//	scripts/kafka.sh stop
package kafkatest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// EnvBrokers names the environment variable holding the seed brokers of a
// real Kafka cluster for integration tests, comma-separated.
const EnvBrokers = "SWITCHYARD_TEST_KAFKA_BROKERS"

// topicReadyTimeout bounds the wait for a new topic's partitions to have
// leaders.
const topicReadyTimeout = 30 * time.Second

// NewFake starts an in-process Kafka cluster (kfake) with opts, closed when
// the test ends, and returns its seed brokers. kfake has no fsync and no
// replication: never measure performance on it.
func NewFake(t testing.TB, opts ...kfake.Opt) []string {
	t.Helper()
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatalf("kafkatest: starting kfake: %v", err)
	}
	t.Cleanup(c.Close)
	t.Logf("kafkatest: using kfake (in-process fake Kafka) at %s", strings.Join(c.ListenAddrs(), ","))
	return c.ListenAddrs()
}

// RealBrokers returns the seed brokers of the real Kafka cluster named by
// SWITCHYARD_TEST_KAFKA_BROKERS, or skips the test when it is unset.
func RealBrokers(t testing.TB) []string {
	t.Helper()
	var brokers []string
	for b := range strings.SplitSeq(os.Getenv(EnvBrokers), ",") {
		if b = strings.TrimSpace(b); b != "" {
			brokers = append(brokers, b)
		}
	}
	if len(brokers) == 0 {
		t.Skipf("kafkatest: integration test needs a real Kafka broker: set %s=host:port[,...]; "+
			"`make test` starts one, or run `eval \"$(scripts/kafka.sh start)\"; export %s` "+
			"(and `scripts/kafka.sh stop` afterwards)", EnvBrokers, EnvBrokers)
	}
	t.Logf("kafkatest: using real Kafka at %s", strings.Join(brokers, ","))
	return brokers
}

// Topic creates a topic with a unique name and the given number of
// partitions on brokers, waits until every partition has a leader, and
// deletes the topic when the test ends. The replication factor is the
// cluster's default.
func Topic(t testing.TB, brokers []string, partitions int32) string {
	t.Helper()
	adm, err := newAdmin(brokers)
	if err != nil {
		t.Fatalf("kafkatest: %v", err)
	}
	defer adm.Close()

	name := "sytest." + sanitize(t.Name()) + "." + randomSuffix()
	ctx, cancel := context.WithTimeout(context.Background(), topicReadyTimeout)
	defer cancel()
	if _, err := adm.CreateTopic(ctx, partitions, -1, nil, name); err != nil {
		t.Fatalf("kafkatest: creating topic %s: %v", name, err)
	}
	t.Cleanup(func() {
		adm, err := newAdmin(brokers)
		if err != nil {
			t.Errorf("kafkatest: deleting topic %s: %v", name, err)
			return
		}
		defer adm.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := adm.DeleteTopic(ctx, name); err != nil {
			t.Errorf("kafkatest: deleting topic %s: %v", name, err)
		}
	})
	if err := waitLeaders(ctx, adm, name, partitions); err != nil {
		t.Fatalf("kafkatest: topic %s: %v", name, err)
	}
	return name
}

// Group returns a consumer group name no other test uses.
func Group(t testing.TB) string {
	t.Helper()
	return "sytest." + sanitize(t.Name()) + "." + randomSuffix()
}

func newAdmin(brokers []string) (*kadm.Client, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return nil, fmt.Errorf("admin client: %w", err)
	}
	return kadm.NewClient(cl), nil
}

// waitLeaders waits until the topic's metadata shows n partitions, each
// with a leader, so a test's first produce does not race topic creation.
func waitLeaders(ctx context.Context, adm *kadm.Client, topic string, n int32) error {
	var last error
	for {
		details, err := adm.ListTopics(ctx, topic)
		if err == nil {
			if err = details.Error(); err == nil {
				err = checkLeaders(details[topic], n)
			}
		}
		if err == nil {
			return nil
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("partitions not ready: %w", last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func checkLeaders(d kadm.TopicDetail, n int32) error {
	if d.Err != nil {
		return d.Err
	}
	if got := int32(len(d.Partitions)); got != n {
		return fmt.Errorf("%d of %d partitions visible", got, n)
	}
	for _, p := range d.Partitions {
		if p.Err != nil {
			return fmt.Errorf("partition %d: %w", p.Partition, p.Err)
		}
		if p.Leader < 0 {
			return fmt.Errorf("partition %d has no leader", p.Partition)
		}
	}
	return nil
}

// sanitize maps a test name to characters legal in topic and group names,
// short enough to leave room for the rest of the name.
func sanitize(name string) string {
	var b strings.Builder
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
		if b.Len() == 100 {
			break
		}
	}
	return b.String()
}

func randomSuffix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
