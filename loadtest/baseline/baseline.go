// Package baseline measures what the machine can do without Switchyard, in
// the same run, on the same broker and the same sink: raw franz-go produce
// and consume of the records Switchyard's ingest writes, and a raw Go HTTP
// client posting the bodies Switchyard delivers. A Switchyard figure means
// little alone; its ratio to these says what Switchyard costs.
package baseline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/switchyard-dev/switchyard/dataplane/ingest"
)

// Throughput is a closed-loop measurement: n items in elapsed.
type Throughput struct {
	// Name says what was measured, e.g. "raw franz-go produce".
	Name string `json:"name"`
	// Events is the number of items moved.
	Events int64 `json:"events"`
	// Seconds is the time it took.
	Seconds float64 `json:"seconds"`
	// PerSecond is Events / Seconds.
	PerSecond float64 `json:"per_second"`
}

// NewThroughput returns the throughput of n items in d.
func NewThroughput(name string, n int64, d time.Duration) Throughput {
	t := Throughput{Name: name, Events: n, Seconds: d.Seconds()}
	if d > 0 {
		t.PerSecond = float64(n) / d.Seconds()
	}
	return t
}

// CreateTopic creates a Kafka topic with partitions (replication factor
// the broker's default) for the raw baseline.
func CreateTopic(ctx context.Context, brokers []string, topic string, partitions int32) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return fmt.Errorf("baseline: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	res, err := adm.CreateTopic(ctx, partitions, -1, nil, topic)
	if err == nil {
		err = res.Err
	}
	if err != nil {
		return fmt.Errorf("baseline: creating topic %s: %w", topic, err)
	}
	// Wait until every partition has a leader, so that the measurement
	// does not time the election.
	for {
		details, err := adm.ListTopics(ctx, topic)
		if err == nil && details.Error() == nil {
			d := details[topic]
			ready := d.Err == nil && len(d.Partitions) == int(partitions)
			for _, p := range d.Partitions {
				ready = ready && p.Err == nil && p.Leader >= 0
			}
			if ready {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("baseline: topic %s: partitions without a leader: %w", topic, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// warmRecords is how many records Produce sends before its clock starts.
const warmRecords = 64

// Produce writes n records, record(0) to record(n-1), with a franz-go
// client configured as Switchyard's ingest is (acks=all, idempotent, the
// same linger and buffers), as fast as the client takes them (it blocks
// while its buffer is full), and waits for every ack.
func Produce(ctx context.Context, brokers []string, n int, record func(i int) *kgo.Record) (Throughput, error) {
	cl, err := kgo.NewClient(ingest.NewProducerOpts(brokers)...)
	if err != nil {
		return Throughput{}, fmt.Errorf("baseline: %w", err)
	}
	defer cl.Close()
	warm := min(warmRecords, n/2)
	if warm < 1 {
		return Throughput{}, errors.New("baseline: produce needs at least 2 records")
	}
	// The first records, sent before the clock starts, connect the client,
	// get its producer id and reach every partition (the records' keys
	// vary), as a running ingest node has done long before: the clock
	// times the rest.
	warmUp := make([]*kgo.Record, warm)
	for i := range warmUp {
		warmUp[i] = record(i)
	}
	if err := cl.ProduceSync(ctx, warmUp...).FirstErr(); err != nil {
		return Throughput{}, fmt.Errorf("baseline: first records: %w", err)
	}
	var failed atomic.Int64
	var firstErr error
	var once sync.Once
	start := time.Now()
	for i := warm; i < n; i++ {
		cl.Produce(ctx, record(i), func(_ *kgo.Record, err error) {
			if err != nil {
				failed.Add(1)
				once.Do(func() { firstErr = err })
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return Throughput{}, fmt.Errorf("baseline: flush: %w", err)
	}
	elapsed := time.Since(start)
	if n := failed.Load(); n > 0 {
		return Throughput{}, fmt.Errorf("baseline: %d records not produced: %w", n, firstErr)
	}
	return NewThroughput("raw franz-go produce", int64(n-warm), elapsed), nil
}

// Consume reads n records of topic from its start with a franz-go
// consumer (no group), and returns how fast.
func Consume(ctx context.Context, brokers []string, topic string, n int64) (Throughput, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return Throughput{}, fmt.Errorf("baseline: %w", err)
	}
	defer cl.Close()
	var got int64
	start := time.Now()
	for got < n {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return Throughput{}, fmt.Errorf("baseline: consumed %d of %d: %w", got, n, err)
		}
		var ferr error
		fs.EachError(func(_ string, _ int32, err error) { ferr = errors.Join(ferr, err) })
		if ferr != nil {
			return Throughput{}, fmt.Errorf("baseline: consume: %w", ferr)
		}
		got += int64(fs.NumRecords())
	}
	return NewThroughput("raw franz-go consume", got, time.Since(start)), nil
}

// Post sends each body to url with a plain Go HTTP client and concurrency
// requests in flight, headers as a webhook would carry, and returns how
// fast; any answer but 2xx is an error.
func Post(ctx context.Context, url string, bodies [][]byte, concurrency int) (Throughput, error) {
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: concurrency}, Timeout: 30 * time.Second}
	defer hc.CloseIdleConnections()
	var next atomic.Int64
	var failed atomic.Int64
	var firstErr error
	var once sync.Once
	fail := func(err error) {
		failed.Add(1)
		once.Do(func() { firstErr = err })
	}
	var wg sync.WaitGroup
	start := time.Now()
	for range concurrency {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(len(bodies)) || ctx.Err() != nil {
					return
				}
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(bodies[i]))
				if err != nil {
					fail(err)
					continue
				}
				id := fmt.Sprintf("raw-http-%d", i)
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Webhook-Id", id)
				req.Header.Set("Ce-Id", id)
				res, err := hc.Do(req)
				if err != nil {
					fail(err)
					continue
				}
				_, _ = io.Copy(io.Discard, res.Body)
				_ = res.Body.Close()
				if res.StatusCode/100 != 2 {
					fail(fmt.Errorf("status %d", res.StatusCode))
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := ctx.Err(); err != nil {
		return Throughput{}, fmt.Errorf("baseline: %w", err)
	}
	if n := failed.Load(); n > 0 {
		return Throughput{}, fmt.Errorf("baseline: %d posts failed: %w", n, firstErr)
	}
	return NewThroughput("raw Go HTTP post", int64(len(bodies)), elapsed), nil
}
