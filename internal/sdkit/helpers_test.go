package sdkit

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/switchyard-dev/switchyard/dataplane/snapshot"
	"github.com/switchyard-dev/switchyard/internal/kafkaname"
	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
	"github.com/switchyard-dev/switchyard/sdk/switchyard"
)

// testTimeout bounds every wait of a test.
const testTimeout = time.Minute

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

var nameSeq atomic.Int64

// uniqueName returns a slug not used before in this test binary.
func uniqueName(prefix string) string { return fmt.Sprintf("%s-%d", prefix, nameSeq.Add(1)) }

// tenantFixture is a tenant with a topic (and its Kafka topic) and a
// producer key the node knows.
type tenantFixture struct {
	tenant *v1.Tenant
	topic  *v1.Topic
	key    string
	// kafkaTopic is the topic's Kafka topic.
	kafkaTopic string
}

// newTenant creates, with the SDK's admin clients, a tenant with quotas, a
// topic of partitions partitions and a producer key, creates the Kafka
// topic, and waits until the node's configuration has them.
func newTenant(t testing.TB, s *Stack, partitions int32, quotas *v1.TenantQuotas) *tenantFixture {
	t.Helper()
	ctx := ctxT(t)
	ten, err := s.Admin.Tenants().Create(ctx, &v1.Tenant{Name: uniqueName("acme"), Quotas: quotas})
	require.NoError(t, err)
	top, err := s.Admin.Topics().Create(ctx, ten.GetId(), &v1.Topic{Name: "orders", Partitions: uint32(partitions)})
	require.NoError(t, err)
	key, secret, err := s.Admin.APIKeys().Create(ctx, ten.GetId(), &v1.ApiKey{Name: "producer", Role: v1.ApiKeyRole_API_KEY_ROLE_PRODUCER})
	require.NoError(t, err)
	require.NotEmpty(t, secret)

	f := &tenantFixture{tenant: ten, topic: top, key: secret, kafkaTopic: kafkaname.TenantTopic(ten.GetId(), top.GetId())}
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.Brokers...))
	require.NoError(t, err)
	defer cl.Close()
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, partitions, -1, nil, f.kafkaTopic)
	require.NoError(t, err)
	require.NoError(t, resp.Err)
	t.Cleanup(func() {
		cl, err := kgo.NewClient(kgo.SeedBrokers(s.Brokers...))
		if err != nil {
			return
		}
		defer cl.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = kadm.NewClient(cl).DeleteTopic(ctx, f.kafkaTopic)
	})
	require.NoError(t, s.WaitConfig(ctx, func(snap *snapshot.Snapshot) bool {
		_, okTopic := snap.Topic(top.GetId())
		_, okKey := snap.APIKey(key.GetId())
		return okTopic && okKey
	}))
	return f
}

// producerClient returns an SDK client of the node with f's key.
func (f *tenantFixture) producerClient(t testing.TB, s *Stack, opts ...switchyard.ClientOption) *switchyard.Client {
	t.Helper()
	c, err := switchyard.NewClient(s.IngestURL, append([]switchyard.ClientOption{switchyard.WithToken(f.key)}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c
}

// consumeAll reads every record of a Kafka topic, which must hold exactly
// want records (by its end offsets).
func consumeAll(t testing.TB, brokers []string, topic string, want int) []*kgo.Record {
	t.Helper()
	ctx := ctxT(t)
	admCl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	require.NoError(t, err)
	defer admCl.Close()
	ends, err := kadm.NewClient(admCl).ListEndOffsets(ctx, topic)
	require.NoError(t, err)
	require.NoError(t, ends.Error())
	var total int64
	ends.Each(func(o kadm.ListedOffset) { total += o.Offset })
	require.EqualValues(t, want, total, "records in %s", topic)
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	require.NoError(t, err)
	defer cl.Close()
	var recs []*kgo.Record
	for len(recs) < want {
		fs := cl.PollFetches(ctx)
		require.NoError(t, ctx.Err(), "consumed %d of %d records", len(recs), want)
		fs.EachError(func(_ string, _ int32, err error) { require.NoError(t, err) })
		recs = append(recs, fs.Records()...)
	}
	return recs
}
