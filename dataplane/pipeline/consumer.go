package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// topicPartition names a partition.
type topicPartition struct {
	topic     string
	partition int32
}

// partState is what a consumer keeps about one partition it owns.
type partState struct {
	tp topicPartition
	// ctx is cancelled when the partition is given up: it ends the work of
	// its records.
	ctx    context.Context
	cancel context.CancelFunc
	// intake is cancelled first when the partition is given up: it stops
	// the start of queued records.
	intake     context.Context
	stopIntake context.CancelFunc
	// wg counts the goroutines working on the partition's records.
	wg sync.WaitGroup

	mu        sync.Mutex
	wm        watermark
	committed int64 // last offset committed; -1 for none
	lanes     map[string]*keyLane
	queue     []queued
	wake      chan struct{}
}

// queued is a polled record with its watermark ticket.
type queued struct {
	rec    *kgo.Record
	ticket uint64
}

// capacity bounds the records in flight of a consumer.
type capacity struct {
	mu    sync.Mutex
	max   int
	used  int
	freed chan struct{}
}

func newCapacity(max int) *capacity {
	return &capacity{max: max, freed: make(chan struct{}, 1)}
}

// wait returns the number of free slots once there is one, or false when
// ctx ends first.
func (c *capacity) wait(ctx context.Context) (int, bool) {
	for {
		c.mu.Lock()
		free := c.max - c.used
		c.mu.Unlock()
		if free > 0 {
			return free, true
		}
		select {
		case <-ctx.Done():
			return 0, false
		case <-c.freed:
		}
	}
}

func (c *capacity) take() {
	c.mu.Lock()
	c.used++
	c.mu.Unlock()
}

func (c *capacity) release() {
	c.mu.Lock()
	c.used--
	c.mu.Unlock()
	select {
	case c.freed <- struct{}{}:
	default:
	}
}

// consumer is a Kafka consumer group member that processes records in
// parallel behind a per-partition commit watermark. The pipeline worker and
// the retry-tier consumers are consumers with their own dispatch.
type consumer struct {
	r     *Runner
	log   *slog.Logger
	group string
	topic string
	cl    *kgo.Client
	cap   *capacity
	// dispatch starts the work on a polled record, whose ticket is taken
	// and capacity used; the work must end with finish. It must not block.
	dispatch func(ps *partState, q queued)
	// onNew, when set, is called for every new partition state.
	onNew func(ps *partState)
	// lagPipeline, when set with metrics on, names the pipeline whose lag
	// this consumer reports.
	lagPipeline string

	mu    sync.Mutex
	parts map[topicPartition]*partState

	commitMu sync.Mutex
}

// run polls until ctx ends, then gives every partition up (draining,
// committing) and closes the client.
func (c *consumer) run(ctx context.Context) {
	var bg sync.WaitGroup
	bg.Go(func() { c.commitLoop(ctx) })
	if c.lagPipeline != "" && c.r.cfg.Metrics != nil {
		bg.Go(func() { c.lagLoop(ctx) })
	}
	c.pollLoop(ctx)
	bg.Wait()
	// Leaving the group revokes every partition: onRevoked drains and
	// commits them.
	c.cl.Close()
	c.mu.Lock()
	left := make([]*partState, 0, len(c.parts))
	for tp, ps := range c.parts {
		left = append(left, ps)
		delete(c.parts, tp)
	}
	c.mu.Unlock()
	c.giveUp(left, false)
}

func (c *consumer) pollLoop(ctx context.Context) {
	for {
		free, ok := c.cap.wait(ctx)
		if !ok {
			return
		}
		fs := c.cl.PollRecords(ctx, free)
		if fs.IsClientClosed() || ctx.Err() != nil {
			c.cl.AllowRebalance()
			return
		}
		var failed bool
		fs.EachError(func(topic string, partition int32, err error) {
			failed = true
			c.log.Warn("fetch failed", "topic", topic, "partition", partition, "err", err)
		})
		fs.EachPartition(func(p kgo.FetchTopicPartition) {
			if len(p.Records) == 0 {
				return
			}
			ps := c.part(p.Topic, p.Partition)
			for _, rec := range p.Records {
				ps.mu.Lock()
				t := ps.wm.add(rec.Offset, rec.LeaderEpoch)
				ps.mu.Unlock()
				c.cap.take()
				c.dispatch(ps, queued{rec: rec, ticket: t})
			}
		})
		c.cl.AllowRebalance()
		if failed && fs.NumRecords() == 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
}

// part returns the state of a partition, creating it on first use.
func (c *consumer) part(topic string, partition int32) *partState {
	tp := topicPartition{topic, partition}
	c.mu.Lock()
	defer c.mu.Unlock()
	if ps, ok := c.parts[tp]; ok {
		return ps
	}
	ps := &partState{tp: tp, committed: -1, wake: make(chan struct{}, 1)}
	ps.ctx, ps.cancel = context.WithCancel(context.Background())
	ps.intake, ps.stopIntake = context.WithCancel(ps.ctx)
	c.parts[tp] = ps
	if c.onNew != nil {
		c.onNew(ps)
	}
	return ps
}

// finish ends the work on a record: a final record moves the watermark.
func (c *consumer) finish(ps *partState, ticket uint64, final bool) {
	if final {
		ps.mu.Lock()
		ps.wm.done(ticket)
		ps.mu.Unlock()
	}
	c.cap.release()
}

func (c *consumer) commitLoop(ctx context.Context) {
	t := time.NewTicker(c.r.cfg.CommitInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		c.mu.Lock()
		parts := make([]*partState, 0, len(c.parts))
		for _, ps := range c.parts {
			parts = append(parts, ps)
		}
		c.mu.Unlock()
		if err := c.commit(parts); err != nil {
			c.log.Warn("commit failed", "group", c.group, "err", err)
		}
	}
}

// commit commits the watermarks of parts that moved.
func (c *consumer) commit(parts []*partState) error {
	c.commitMu.Lock()
	defer c.commitMu.Unlock()
	offsets := make(map[string]map[int32]kgo.EpochOffset)
	var moved []*partState
	var at []int64
	for _, ps := range parts {
		ps.mu.Lock()
		eo, ok := ps.wm.commit()
		if ok && eo.Offset > ps.committed {
			if offsets[ps.tp.topic] == nil {
				offsets[ps.tp.topic] = make(map[int32]kgo.EpochOffset)
			}
			offsets[ps.tp.topic][ps.tp.partition] = eo
			moved = append(moved, ps)
			at = append(at, eo.Offset)
		}
		ps.mu.Unlock()
	}
	if len(moved) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), commitTimeout)
	defer cancel()
	var rerr error
	c.cl.CommitOffsetsSync(ctx, offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			rerr = err
			return
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
					rerr = errors.Join(rerr, fmt.Errorf("%s/%d: %w", t.Topic, p.Partition, err))
				}
			}
		}
	})
	if rerr != nil {
		return fmt.Errorf("committing offsets of group %s: %w", c.group, rerr)
	}
	for i, ps := range moved {
		ps.mu.Lock()
		ps.committed = max(ps.committed, at[i])
		ps.mu.Unlock()
	}
	return nil
}

// take removes the states of the given partitions.
func (c *consumer) take(tps map[string][]int32) []*partState {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*partState
	for topic, ps := range tps {
		for _, p := range ps {
			tp := topicPartition{topic, p}
			if st, ok := c.parts[tp]; ok {
				out = append(out, st)
				delete(c.parts, tp)
			}
		}
	}
	return out
}

// onRevoked gives up revoked partitions: drain (bounded), then commit.
func (c *consumer) onRevoked(_ context.Context, _ *kgo.Client, revoked map[string][]int32) {
	c.giveUp(c.take(revoked), true)
}

// onLost gives up lost partitions without committing: the group has moved
// on and the new owner delivers again whatever was not committed.
func (c *consumer) onLost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	c.giveUp(c.take(lost), false)
}

// giveUp stops taking queued records of parts, waits at most DrainTimeout
// for their work, cancels what still runs, waits for it to end and, when
// commit is set, commits the watermarks.
func (c *consumer) giveUp(parts []*partState, commit bool) {
	if len(parts) == 0 {
		return
	}
	for _, ps := range parts {
		ps.stopIntake()
	}
	deadline := time.NewTimer(c.r.cfg.DrainTimeout)
	defer deadline.Stop()
	for _, ps := range parts {
		done := make(chan struct{})
		go func() {
			ps.wg.Wait()
			close(done)
		}()
		select {
		case <-done:
		case <-deadline.C:
			// Fire for every remaining partition.
			deadline.Reset(0)
		}
		ps.cancel()
		<-done
	}
	if commit {
		if err := c.commit(parts); err != nil {
			c.log.Warn("commit on revoke failed", "group", c.group, "err", err)
		}
	}
}

func (c *consumer) lagLoop(ctx context.Context) {
	adm := kadm.NewClient(c.cl) // not closed: closing it would close c.cl
	t := time.NewTicker(lagInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		lag, err := groupLag(ctx, adm, c.group, c.topic)
		if err != nil {
			if ctx.Err() == nil {
				c.log.Debug("lag not measured", "group", c.group, "err", err)
			}
			continue
		}
		c.r.cfg.Metrics.setLag(c.lagPipeline, lag)
	}
}

// groupLag returns the records of topic at or after group's committed
// offsets (the log start where the group has not committed).
func groupLag(ctx context.Context, adm *kadm.Client, group, topic string) (int64, error) {
	commits, err := adm.FetchOffsetsForTopics(ctx, group, topic)
	if err != nil {
		return 0, fmt.Errorf("fetching offsets: %w", err)
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return 0, fmt.Errorf("listing end offsets: %w", err)
	}
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		return 0, fmt.Errorf("listing start offsets: %w", err)
	}
	var lag int64
	ends.Each(func(end kadm.ListedOffset) {
		if end.Err != nil {
			return
		}
		from := int64(0)
		if s, ok := starts.Lookup(end.Topic, end.Partition); ok && s.Err == nil {
			from = s.Offset
		}
		if c, ok := commits.Lookup(end.Topic, end.Partition); ok && c.Err == nil && c.At >= 0 {
			from = c.At
		}
		lag += max(0, end.Offset-from)
	})
	return lag, nil
}
