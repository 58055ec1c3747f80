package scenario

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/switchyard-dev/switchyard/internal/kafkaname"
)

// deadLetters reads pipelines' dead-letter topics from their start, in the
// background, and keeps the event ids it finds per topic.
type deadLetters struct {
	brokers []string
	topics  []string
	cl      *kgo.Client
	cancel  context.CancelFunc
	done    chan struct{}

	mu      sync.Mutex
	ids     map[string]map[string]bool // topic -> event id
	records map[string]int64           // topic -> records read
	next    map[string]map[int32]int64 // topic -> partition -> next offset
}

func readDeadLetters(brokers, topics []string) (*deadLetters, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.MetadataMinAge(500*time.Millisecond), kgo.MetadataMaxAge(2*time.Second))
	if err != nil {
		return nil, fmt.Errorf("dead letters: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	d := &deadLetters{
		brokers: brokers, topics: topics, cl: cl, cancel: cancel, done: make(chan struct{}),
		ids: make(map[string]map[string]bool), records: make(map[string]int64), next: make(map[string]map[int32]int64),
	}
	for _, t := range topics {
		d.ids[t] = make(map[string]bool)
		d.next[t] = make(map[int32]int64)
	}
	go d.loop(ctx)
	return d, nil
}

func (d *deadLetters) loop(ctx context.Context) {
	defer close(d.done)
	for ctx.Err() == nil {
		fs := d.cl.PollFetches(ctx)
		d.mu.Lock()
		fs.EachRecord(func(r *kgo.Record) {
			id := ""
			for _, h := range r.Headers {
				if h.Key == kafkaname.HeaderCEPrefix+"id" {
					id = string(h.Value)
				}
			}
			d.ids[r.Topic][id] = true
			d.records[r.Topic]++
			d.next[r.Topic][r.Partition] = r.Offset + 1
		})
		d.mu.Unlock()
	}
}

// IDs returns a copy of the event ids read from topic so far.
func (d *deadLetters) IDs(topic string) map[string]bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return maps.Clone(d.ids[topic])
}

// Records returns the number of records read from topic so far.
func (d *deadLetters) Records(topic string) int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.records[topic]
}

// CatchUp waits until every record written to the topics before the call
// has been read, or ctx ends.
func (d *deadLetters) CatchUp(ctx context.Context) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(d.brokers...))
	if err != nil {
		return err
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, d.topics...)
	if err != nil {
		return fmt.Errorf("dead letters: end offsets: %w", err)
	}
	for {
		behind := false
		d.mu.Lock()
		ends.Each(func(o kadm.ListedOffset) {
			if o.Err == nil && o.Offset > 0 && d.next[o.Topic][o.Partition] < o.Offset {
				behind = true
			}
		})
		d.mu.Unlock()
		if !behind {
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.Join(errors.New("dead letters: not caught up"), ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Close stops reading.
func (d *deadLetters) Close() {
	d.cancel()
	d.cl.Close()
	<-d.done
}
