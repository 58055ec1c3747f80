package switchyard_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard-dev/switchyard/sdk/switchyard"
)

func newProducer(t *testing.T, c *switchyard.Client, opts ...switchyard.ProducerOption) *switchyard.Producer {
	t.Helper()
	p, err := switchyard.NewProducer(c, "orders", opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close(context.Background()) })
	return p
}

func TestProducerBatchesByCount(t *testing.T) {
	t.Parallel()
	s := newIngest()
	c := newClient(t, s.serve(t))
	// A linger of an hour: only a full batch, or Flush, sends.
	p := newProducer(t, c, switchyard.WithBatchSize(10), switchyard.WithLinger(time.Hour), switchyard.WithMaxInFlight(1))
	var futs []*switchyard.Future
	for _, ev := range events(t, 35, "t") {
		futs = append(futs, p.Produce(ctxT(t), ev))
	}
	for _, f := range futs[:30] {
		_, err := f.Wait(ctxT(t))
		require.NoError(t, err)
	}
	select {
	case <-futs[34].Done():
		t.Fatal("a partial batch was sent before its linger or a flush")
	default:
	}
	require.NoError(t, p.Flush(ctxT(t)))
	for _, f := range futs {
		r, err := f.Wait(ctxT(t))
		require.NoError(t, err)
		require.NotEmpty(t, r.EventID)
	}
	_, _, batches := s.snapshot()
	require.Equal(t, []int{10, 10, 10, 5}, batches)
}

func TestProducerBatchesByBytes(t *testing.T) {
	t.Parallel()
	s := newIngest()
	c := newClient(t, s.serve(t))
	p := newProducer(t, c, switchyard.WithBatchBytes(3000), switchyard.WithLinger(time.Hour), switchyard.WithMaxInFlight(1))
	payload := make([]byte, 900)
	var futs []*switchyard.Future
	for range 7 {
		ev, err := switchyard.NewEvent("/test", "t", switchyard.WithData(payload, "application/octet-stream"))
		require.NoError(t, err)
		futs = append(futs, p.Produce(ctxT(t), ev))
	}
	require.NoError(t, p.Flush(ctxT(t)))
	for _, f := range futs {
		_, err := f.Wait(ctxT(t))
		require.NoError(t, err)
	}
	_, _, batches := s.snapshot()
	// ~1 KB each: three fit under 3,000 bytes, the fourth would not.
	require.Equal(t, []int{3, 3, 1}, batches)
}

func TestProducerBufferFull(t *testing.T) {
	t.Parallel()
	for _, failFast := range []bool{true, false} {
		t.Run(fmt.Sprint("failFast=", failFast), func(t *testing.T) {
			t.Parallel()
			s := newIngest()
			s.gate, s.started = make(chan struct{}), make(chan struct{}, 1)
			c := newClient(t, s.serve(t))
			opts := []switchyard.ProducerOption{switchyard.WithBufferSize(5), switchyard.WithLinger(0), switchyard.WithMaxInFlight(1)}
			if failFast {
				opts = append(opts, switchyard.WithFailFast())
			}
			p := newProducer(t, c, opts...)
			var futs []*switchyard.Future
			for _, ev := range events(t, 5, "t") {
				futs = append(futs, p.Produce(ctxT(t), ev))
			}
			<-s.started // the first batch is held by the server
			extra := events(t, 1, "t")[0]
			if failFast {
				_, err := p.Produce(ctxT(t), extra).Wait(ctxT(t))
				require.ErrorIs(t, err, switchyard.ErrBufferFull)
			} else {
				ctx, cancel := context.WithCancel(ctxT(t))
				cancel()
				_, err := p.Produce(ctx, extra).Wait(ctxT(t))
				require.ErrorIs(t, err, context.Canceled, "a full buffer waits for room, bounded by the context")
			}
			close(s.gate)
			for _, f := range futs {
				_, err := f.Wait(ctxT(t))
				require.NoError(t, err)
			}
			// Room again.
			_, err := p.Produce(ctxT(t), events(t, 1, "t")[0]).Wait(ctxT(t))
			require.NoError(t, err)
		})
	}
}

// TestProducerExactlyOnceThroughFailures produces from several goroutines
// while the service fails requests before and after accepting them, and
// checks every event is resolved, accepted by the service, and that the
// service saw no id it was not given.
func TestProducerExactlyOnceThroughFailures(t *testing.T) {
	t.Parallel()
	s := newIngest()
	s.failNext, s.loseNext, s.rateLimitNext = 3, 3, 2
	s.eventUnavailable["flaky"] = true
	c := newClient(t, s.serve(t))
	p := newProducer(t, c, switchyard.WithBatchSize(25))

	const producers, each = 4, 250
	var (
		mu       sync.Mutex
		produced = map[string]bool{}
		resolved atomic.Int64
		wg       sync.WaitGroup
	)
	for g := range producers {
		wg.Go(func() {
			typ := "t"
			if g == 0 {
				typ = "flaky"
			}
			for _, ev := range events(t, each, typ) {
				mu.Lock()
				produced[ev.ID] = true
				mu.Unlock()
				p.ProduceFunc(ctxT(t), ev, func(r switchyard.Result, err error) {
					if err != nil {
						t.Errorf("event %s: %v", r.EventID, err)
					}
					resolved.Add(1)
				})
			}
		})
	}
	wg.Wait()
	require.NoError(t, p.Close(ctxT(t)))
	require.EqualValues(t, producers*each, resolved.Load(), "every event is resolved once")
	accepted, _, _ := s.snapshot()
	require.Len(t, accepted, producers*each)
	for id := range accepted {
		require.True(t, produced[id], "unknown id %s", id)
	}
	for id := range produced {
		require.GreaterOrEqual(t, accepted[id], 1, "event %s was not delivered", id)
	}
}

// TestProducerKeyOrder checks that the events of a key reach the service in
// the order produced, through failed requests.
func TestProducerKeyOrder(t *testing.T) {
	t.Parallel()
	s := newIngest()
	s.failNext, s.loseNext = 4, 4
	c := newClient(t, s.serve(t))
	p := newProducer(t, c, switchyard.WithBatchSize(7), switchyard.WithMaxInFlight(4))
	const keys, perKey = 16, 40
	for i := range perKey {
		for k := range keys {
			ev, err := switchyard.NewEvent("/test", "t", switchyard.WithPartitionKey(fmt.Sprint("key-", k)),
				switchyard.WithExtension("seq", fmt.Sprint(i)))
			require.NoError(t, err)
			p.Produce(ctxT(t), ev)
		}
	}
	require.NoError(t, p.Flush(ctxT(t)))
	_, order, _ := s.snapshot()
	require.Len(t, order, keys*perKey)
	next := map[string]int{}
	for _, ev := range order {
		k := ev.GetPartitionKey()
		require.Equal(t, fmt.Sprint(next[k]), ev.GetExtensions()["seq"], "key %s out of order", k)
		next[k]++
	}
}

func TestProducerPerEventErrors(t *testing.T) {
	t.Parallel()
	s := newIngest()
	c := newClient(t, s.serve(t))
	p := newProducer(t, c)
	good := p.Produce(ctxT(t), events(t, 1, "t")[0])
	bad := p.Produce(ctxT(t), events(t, 1, "invalid")[0])
	_, err := good.Wait(ctxT(t))
	require.NoError(t, err)
	_, err = bad.Wait(ctxT(t))
	require.ErrorIs(t, err, switchyard.ErrInvalidArgument)
}

// TestProducerCloseAfterOutage checks that Close during an outage resolves
// every event with an error, and says so.
func TestProducerCloseAfterOutage(t *testing.T) {
	t.Parallel()
	t.Run("retries spent", func(t *testing.T) {
		t.Parallel()
		s := newIngest()
		s.down = true
		c := newClient(t, s.serve(t), switchyard.WithRetry(switchyard.RetryPolicy{MaxAttempts: 3, InitialBackoff: time.Millisecond, MaxBackoff: time.Millisecond}))
		p := newProducer(t, c)
		var futs []*switchyard.Future
		for _, ev := range events(t, 50, "t") {
			futs = append(futs, p.Produce(ctxT(t), ev))
		}
		err := p.Close(ctxT(t))
		require.ErrorIs(t, err, switchyard.ErrClosed)
		require.ErrorIs(t, err, switchyard.ErrUnavailable)
		require.Contains(t, err.Error(), "50 events not delivered")
		for _, f := range futs {
			_, err := f.Wait(ctxT(t))
			require.ErrorIs(t, err, switchyard.ErrUnavailable)
		}
		_, err = p.Produce(ctxT(t), events(t, 1, "t")[0]).Wait(ctxT(t))
		require.ErrorIs(t, err, switchyard.ErrClosed)
	})
	t.Run("close gives up", func(t *testing.T) {
		t.Parallel()
		s := newIngest()
		s.down = true
		s.started = make(chan struct{}, 1)
		// Retries that would go on for a very long time.
		c := newClient(t, s.serve(t), switchyard.WithRetry(switchyard.RetryPolicy{MaxAttempts: 1 << 30, InitialBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond}))
		p := newProducer(t, c, switchyard.WithBatchSize(10), switchyard.WithMaxInFlight(2))
		var futs []*switchyard.Future
		for _, ev := range events(t, 100, "t") {
			futs = append(futs, p.Produce(ctxT(t), ev))
		}
		<-s.started
		ctx, cancel := context.WithCancel(ctxT(t))
		cancel()
		err := p.Close(ctx)
		require.ErrorIs(t, err, switchyard.ErrClosed)
		require.ErrorIs(t, err, context.Canceled)
		for _, f := range futs {
			_, err := f.Wait(ctxT(t))
			require.ErrorIs(t, err, switchyard.ErrClosed, "every event is resolved with a final error")
		}
	})
}

func TestNewProducerValidates(t *testing.T) {
	t.Parallel()
	c := newClient(t, "http://127.0.0.1:1")
	_, err := switchyard.NewProducer(c, "orders", switchyard.WithBatchSize(501), switchyard.WithBufferSize(0))
	require.ErrorContains(t, err, "batch size")
	require.ErrorContains(t, err, "buffer size")
	_, err = switchyard.NewProducer(c, "")
	require.ErrorContains(t, err, "topic")
}
