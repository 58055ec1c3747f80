package sdkit

import (
	"fmt"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/switchyard-dev/switchyard/dataplane/record"
	"github.com/switchyard-dev/switchyard/internal/testenv/kafkatest"
	"github.com/switchyard-dev/switchyard/sdk/switchyard"
)

// TestProducerEveryEventOnce publishes 2,000 events with the async producer
// through the real ingest service (whose default rate limit, 1,000 events/s,
// refuses some batches with a RetryInfo the producer must honour), then
// reads the Kafka topic: every id exactly once, at the partition and offset
// its result gave, and the events of each key in the order produced.
func TestProducerEveryEventOnce(t *testing.T) {
	t.Parallel()
	s := NewStack(t, kafkatest.NewFake(t))
	f := newTenant(t, s, 4, nil)
	c := f.producerClient(t, s)
	p, err := switchyard.NewProducer(c, f.topic.GetName())
	require.NoError(t, err)

	const total, keys = 2000, 13
	futs := make([]*switchyard.Future, total)
	ids := make(map[string]int, total)
	for i := range total {
		ev, err := switchyard.NewEvent("/sdkit", "order.created",
			switchyard.WithJSONData(map[string]int{"i": i}),
			switchyard.WithPartitionKey(fmt.Sprint("customer-", i%keys)),
			switchyard.WithExtension("seq", strconv.Itoa(i)))
		require.NoError(t, err)
		ids[ev.ID] = i
		futs[i] = p.Produce(ctxT(t), ev)
	}
	require.NoError(t, p.Close(ctxT(t)))
	results := make(map[string]switchyard.Result, total)
	for i, fut := range futs {
		r, err := fut.Wait(ctxT(t))
		require.NoError(t, err, "event %d", i)
		results[r.EventID] = r
	}
	require.Len(t, results, total)

	recs := consumeAll(t, s.Brokers, f.kafkaTopic, total)
	seen := make(map[string]bool, total)
	lastSeq := map[string]int{}
	for _, rec := range recs {
		d, err := record.Decode(rec)
		require.NoError(t, err)
		id := d.Event.GetId()
		i, ok := ids[id]
		require.True(t, ok, "unknown event %q", id)
		require.False(t, seen[id], "event %q twice", id)
		seen[id] = true
		require.Equal(t, results[id].Partition, rec.Partition, id)
		require.Equal(t, results[id].Offset, rec.Offset, id)
		key := d.Event.GetPartitionKey()
		if last, ok := lastSeq[key]; ok {
			require.Greater(t, i, last, "key %s out of order", key)
		}
		lastSeq[key] = i
	}
	require.Len(t, seen, total)
}

// TestPublishPerEventErrors publishes a batch with a good event, one that
// breaks a rule and one over the tenant's size quota.
func TestPublishPerEventErrors(t *testing.T) {
	t.Parallel()
	s := NewStack(t, kafkatest.NewFake(t))
	f := newTenant(t, s, 1, nil)
	c := f.producerClient(t, s, switchyard.WithGRPC())
	good, err := switchyard.NewEvent("/sdkit", "ok")
	require.NoError(t, err)
	bad, err := switchyard.NewEvent("/sdkit", "bad", switchyard.WithExtension("Bad-Name", "x"))
	require.NoError(t, err)
	big, err := switchyard.NewEvent("/sdkit", "big", switchyard.WithData(make([]byte, 300<<10), "application/octet-stream"))
	require.NoError(t, err)
	res, err := c.Publish(ctxT(t), f.topic.GetName(), good, bad, big)
	require.NoError(t, err)
	require.NoError(t, res[0].Err)
	require.Equal(t, good.ID, res[0].EventID)
	require.ErrorIs(t, res[1].Err, switchyard.ErrInvalidArgument)
	require.ErrorIs(t, res[2].Err, switchyard.ErrResourceExhausted)

	_, err = c.Publish(ctxT(t), "no-such-topic", good)
	require.ErrorIs(t, err, switchyard.ErrNotFound)
	bogus, err := switchyard.NewClient(s.IngestURL, switchyard.WithToken("sy_bogus"))
	require.NoError(t, err)
	defer bogus.Close()
	_, err = bogus.Publish(ctxT(t), f.topic.GetName(), good)
	require.ErrorIs(t, err, switchyard.ErrUnauthenticated)
}
