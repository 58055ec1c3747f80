package pipeline

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/switchyard-dev/switchyard/dataplane/deliver"
	"github.com/switchyard-dev/switchyard/dataplane/record"
	"github.com/switchyard-dev/switchyard/internal/acklog"
	"github.com/switchyard-dev/switchyard/internal/kafkaname"
	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
)

// worker runs one pipeline: its consumer group on the pipeline's topic.
type worker struct {
	r      *Runner
	spec   spec
	p      *v1.Pipeline
	pol    retryPolicy
	progs  *programs
	keyed  bool
	c      *consumer
	cancel context.CancelFunc
	done   chan struct{}
}

// CreationSkew is how much older than its pipeline a record may be and
// still be delivered by it: it covers clock differences between the control
// plane, which stamps the pipeline's creation, and the ingest nodes, which
// stamp the records.
const CreationSkew = time.Minute

// before reports whether rec was published before the pipeline existed
// (with CreationSkew to spare).
func (w *worker) before(rec *kgo.Record) bool {
	ct := w.p.GetCreateTime()
	return ct != nil && rec.Timestamp.Before(ct.AsTime().Add(-CreationSkew))
}

// keyLane holds the records of one key of a KEY-ordered partition that wait
// for the record ahead of them.
type keyLane struct {
	queue []queued
}

// startWorker starts the worker of s.
func (r *Runner) startWorker(s spec) (*worker, error) {
	progs, err := r.programsFor(s.p)
	if err != nil {
		return nil, err
	}
	w := &worker{
		r:     r,
		spec:  s,
		p:     s.p,
		pol:   policyOf(s.p.GetRetryPolicy()),
		progs: progs,
		keyed: s.p.GetOrdering() == v1.OrderingMode_ORDERING_MODE_KEY,
		done:  make(chan struct{}),
	}
	group := s.p.GetConsumerGroup()
	if group == "" {
		group = consumerGroupOf(s.p)
	}
	w.c = &consumer{
		r:           r,
		log:         r.cfg.Logger.With("pipeline", s.p.GetId()),
		group:       group,
		topic:       s.kafkaTopic,
		cap:         newCapacity(r.cfg.MaxInFlight),
		dispatch:    w.dispatch,
		lagPipeline: s.p.GetId(),
		parts:       make(map[topicPartition]*partState),
	}
	// A new group reads the log from its start and skips what was published
	// before the pipeline existed (see process). Seeking by time instead
	// (AfterMilli) races with producers: on a partition with no record after
	// the time yet, the client asks for the end offset in a second request,
	// and records appended in between are skipped for good.
	cl, err := kgo.NewClient(r.clientOpts(group, s.kafkaTopic, kgo.NewOffset().AtStart(), w.c)...)
	if err != nil {
		return nil, fmt.Errorf("pipeline %s: kafka client: %w", s.p.GetId(), err)
	}
	w.c.cl = cl
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	go func() {
		defer close(w.done)
		w.c.run(ctx)
		r.cfg.Metrics.forgetLag(s.p.GetId())
	}()
	r.cfg.Logger.Info("pipeline worker started", "pipeline", s.p.GetId(), "topic", s.kafkaTopic, "group", group)
	return w, nil
}

// stop stops the worker and waits until it has committed what is final and
// left its group.
func (w *worker) stop() {
	w.cancel()
	<-w.done
	w.r.cfg.Logger.Info("pipeline worker stopped", "pipeline", w.p.GetId())
}

// dispatch starts the work on a polled record.
func (w *worker) dispatch(ps *partState, q queued) {
	if !w.keyed {
		ps.wg.Go(func() {
			w.c.finish(ps, q.ticket, w.process(ps.ctx, q.rec, nil))
		})
		return
	}
	key := string(q.rec.Key)
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if l, ok := ps.lanes[key]; ok {
		l.queue = append(l.queue, q)
		return
	}
	if ps.lanes == nil {
		ps.lanes = make(map[string]*keyLane)
	}
	l := &keyLane{queue: []queued{q}}
	ps.lanes[key] = l
	ps.wg.Go(func() { w.runLane(ps, key, l) })
}

// runLane processes the records of one key in order until none is left.
// When the partition is given up the lane stops; the records left are not
// final.
func (w *worker) runLane(ps *partState, key string, l *keyLane) {
	for {
		ps.mu.Lock()
		if len(l.queue) == 0 || ps.ctx.Err() != nil {
			rest := l.queue
			l.queue = nil
			delete(ps.lanes, key)
			ps.mu.Unlock()
			for _, q := range rest {
				w.c.finish(ps, q.ticket, false)
			}
			return
		}
		q := l.queue[0]
		l.queue = l.queue[1:]
		ps.mu.Unlock()
		// The key's next record need not wait for this one's acks to reach
		// the broker, only for its deliveries: the acks are collected and
		// the record becomes final once they are acknowledged.
		acks := &ackWait{}
		ok := w.process(ps.ctx, q.rec, acks)
		if !acks.pending() {
			w.c.finish(ps, q.ticket, ok)
			continue
		}
		ps.wg.Go(func() { w.c.finish(ps, q.ticket, acks.wait() && ok) })
	}
}

// process takes a record of the pipeline's topic to a final outcome for
// every destination, and reports whether it got there (it does not when ctx
// ends first). With acks set, the acks it writes are collected there
// rather than waited for, and the outcome is final only once acks.wait
// also reports true.
func (w *worker) process(ctx context.Context, rec *kgo.Record, acks *ackWait) bool {
	if w.before(rec) {
		w.r.cfg.Metrics.record(w.p.GetId(), ResultBeforePipeline)
		return true
	}
	now := w.r.cfg.Now()
	base := &attempt{p: w.p, pol: w.pol, rec: rec, n: 1, first: now, origin: originOf(rec), ingest: rec.Timestamp, acks: acks}
	dec, err := record.Decode(rec)
	if err != nil {
		base.n = 0
		return w.r.deadLetter(ctx, base, ReasonMalformed, deliver.Result{Err: err})
	}
	base.ev = dec.Event // the delivered event, once transformed, below
	base.orig = dec.Event
	base.payload = w.r.keepsPayloads(w.p.GetTenantId())
	ok, err := w.progs.match(ctx, dec.Event)
	if err != nil {
		if ctx.Err() != nil {
			return false
		}
		base.n = 0
		return w.r.deadLetter(ctx, base, ReasonFilterError, deliver.Result{Err: err})
	}
	if !ok {
		base.n = 0
		if !w.r.ack(ctx, base, acklog.Filtered, "", deliver.Result{}, time.Time{}) {
			return false
		}
		w.r.cfg.Metrics.record(w.p.GetId(), ResultFiltered)
		return true
	}
	ev, err := w.progs.apply(ctx, dec.Event)
	if err != nil {
		if ctx.Err() != nil {
			return false
		}
		base.n = 0
		return w.r.deadLetter(ctx, base, ReasonTransformError, deliver.Result{Err: err})
	}
	base.ev = ev
	dests := w.p.GetDestinations()
	if len(dests) == 1 {
		return w.destination(ctx, base, dests[0], true)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		final = true
	)
	for i, d := range dests {
		wg.Go(func() {
			ok := w.destination(ctx, base, d, i == 0)
			mu.Lock()
			final = final && ok
			mu.Unlock()
		})
	}
	wg.Wait()
	return final
}

// destination delivers the first attempt to one destination; only the
// first destination's first ack carries the payload.
func (w *worker) destination(ctx context.Context, base *attempt, d *v1.Destination, first bool) bool {
	a := *base
	a.dest = d
	a.payload = base.payload && first
	if w.keyed {
		return w.r.deliverInPlace(ctx, &a)
	}
	res := w.r.deliverOnce(ctx, &a)
	return w.r.settleUnordered(ctx, &a, res)
}

// consumerGroupOf returns the consumer group of a pipeline that does not
// name one.
func consumerGroupOf(p *v1.Pipeline) string {
	return kafkaname.ConsumerGroup(p.GetTenantId(), p.GetId())
}
