package switchyard

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
	"github.com/switchyard-dev/switchyard/sdk/publishwire"
)

// Defaults of a Producer.
const (
	DefaultBatchSize   = 500
	DefaultBatchBytes  = 512 << 10
	DefaultLinger      = 5 * time.Millisecond
	DefaultBufferSize  = 10_000
	DefaultMaxInFlight = 8
)

// ErrBufferFull is the error of an event produced while the buffer is full
// by a producer made [WithFailFast].
var ErrBufferFull = errors.New("switchyard: producer buffer full")

// ErrClosed is the error of an event produced after [Producer.Close] began,
// and of every event Close could not send before its context ended.
var ErrClosed = errors.New("switchyard: producer closed")

// A ProducerOption configures a [Producer]. The set is closed: the options
// of this package are the only ones.
type ProducerOption interface {
	applyProducer(*producerConfig)
}

// producerConfig is what the options set.
type producerConfig struct {
	batchSize   int
	batchBytes  int
	linger      time.Duration
	bufferSize  int
	failFast    bool
	maxInFlight int
}

// producerOptionFunc adapts a function to ProducerOption.
type producerOptionFunc func(*producerConfig)

func (f producerOptionFunc) applyProducer(c *producerConfig) { f(c) }

// WithBatchSize sends a batch once it holds n events (default
// [DefaultBatchSize], at most [MaxBatch]).
func WithBatchSize(n int) ProducerOption {
	return producerOptionFunc(func(c *producerConfig) { c.batchSize = n })
}

// WithBatchBytes sends a batch once its events' encoded size reaches n bytes
// (default [DefaultBatchBytes]). A larger event goes in a batch of its own.
func WithBatchBytes(n int) ProducerOption {
	return producerOptionFunc(func(c *producerConfig) { c.batchBytes = n })
}

// WithLinger waits up to d after the first event of a batch for more to
// join it (default [DefaultLinger]); 0 sends at once whatever is buffered.
func WithLinger(d time.Duration) ProducerOption {
	return producerOptionFunc(func(c *producerConfig) { c.linger = d })
}

// WithBufferSize bounds the events produced and not yet resolved (default
// [DefaultBufferSize]).
func WithBufferSize(n int) ProducerOption {
	return producerOptionFunc(func(c *producerConfig) { c.bufferSize = n })
}

// WithFailFast makes Produce resolve an event with [ErrBufferFull] at once
// when the buffer is full, instead of waiting for room (the default, bounded
// by Produce's context).
func WithFailFast() ProducerOption {
	return producerOptionFunc(func(c *producerConfig) { c.failFast = true })
}

// WithMaxInFlight sets the number of lanes, each sending one batch at a
// time (default [DefaultMaxInFlight]).
func WithMaxInFlight(n int) ProducerOption {
	return producerOptionFunc(func(c *producerConfig) { c.maxInFlight = n })
}

// Producer publishes events to one topic in the background, in batches.
//
// Every event produced is resolved exactly once — through its [Future] or
// its callback — with its [Result] or a final error; none is dropped
// silently. [Producer.Flush] waits for what was produced before it;
// [Producer.Close] flushes and then resolves whatever is left with
// [ErrClosed].
//
// # Ordering
//
// Events are spread over lanes (see [WithMaxInFlight]) by a hash of their
// partition key, or of their id when they have none. A lane sends one batch
// at a time and the next only after the previous one is resolved, retries
// included. So events with the same partition key, produced one after the
// other (from one goroutine, or otherwise ordered), are written to Kafka in
// the order produced. The one exception: when the service accepts part of a
// batch and answers unavailable for an event of it, that event is retried
// after the accepted ones, which may include later events of its key. An
// event that fails for good does not hold back those after it.
//
// A Producer is safe for concurrent use.
type Producer struct {
	c     *Client
	topic string
	cfg   producerConfig

	slots  chan struct{} // one token per event buffered or in flight
	lanes  []*lane
	wg     sync.WaitGroup
	ctx    context.Context // canceled when Close gives up
	cancel context.CancelFunc

	mu       sync.RWMutex
	closed   bool
	closedCh chan struct{}

	failed  atomic.Int64
	lastErr atomic.Pointer[error]
}

// NewProducer returns a producer publishing to topic (a name or an id)
// through c, which must be a client of a data-plane node.
func NewProducer(c *Client, topic string, opts ...ProducerOption) (*Producer, error) {
	cfg := producerConfig{batchSize: DefaultBatchSize, batchBytes: DefaultBatchBytes, linger: DefaultLinger,
		bufferSize: DefaultBufferSize, maxInFlight: DefaultMaxInFlight}
	for _, o := range opts {
		o.applyProducer(&cfg)
	}
	var errs []error
	if c == nil {
		errs = append(errs, errors.New("a client is required"))
	}
	if topic == "" {
		errs = append(errs, errors.New("a topic is required"))
	}
	if cfg.batchSize < 1 || cfg.batchSize > MaxBatch {
		errs = append(errs, fmt.Errorf("batch size must be in [1, %d], got %d", MaxBatch, cfg.batchSize))
	}
	if cfg.batchBytes < 1 {
		errs = append(errs, fmt.Errorf("batch bytes must be positive, got %d", cfg.batchBytes))
	}
	if cfg.linger < 0 {
		errs = append(errs, fmt.Errorf("linger must not be negative, got %v", cfg.linger))
	}
	if cfg.bufferSize < 1 {
		errs = append(errs, fmt.Errorf("buffer size must be positive, got %d", cfg.bufferSize))
	}
	if cfg.maxInFlight < 1 {
		errs = append(errs, fmt.Errorf("max in flight must be positive, got %d", cfg.maxInFlight))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("switchyard: new producer: %w", err)
	}
	p := &Producer{c: c, topic: topic, cfg: cfg, slots: make(chan struct{}, cfg.bufferSize), closedCh: make(chan struct{})}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	p.lanes = make([]*lane, cfg.maxInFlight)
	for i := range p.lanes {
		l := &lane{p: p, wake: make(chan struct{}, 1), changed: make(chan struct{})}
		p.lanes[i] = l
		p.wg.Go(l.run)
	}
	return p, nil
}

// Future is the outcome of an event handed to [Producer.Produce].
type Future struct {
	done chan struct{}
	res  Result
}

// Done is closed when the event is resolved.
func (f *Future) Done() <-chan struct{} { return f.done }

// Wait waits until the event is resolved and returns its result and its
// error (the result's Err), or ctx's error if ctx ends first.
func (f *Future) Wait(ctx context.Context) (Result, error) {
	select {
	case <-f.done:
		return f.res, f.res.Err
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
}

// item is an event on its way.
type item struct {
	ev   *v1.Event
	pe   v1.Event // what ev points to: one allocation for both
	size int
	seq  uint64
	at   time.Time
	fut  *Future
	cb   func(Result, error)
}

// resolve delivers the outcome of it.
func (it *item) resolve(r Result) {
	if it.fut != nil {
		it.fut.res = r
		close(it.fut.done)
	}
	if it.cb != nil {
		it.cb(r, r.Err)
	}
}

// Produce hands ev to the producer and returns its future. ev's id is fixed
// now (a UUIDv7 when it has none), and ev may be reused once Produce
// returns. ctx bounds only the wait for room in a full buffer.
func (p *Producer) Produce(ctx context.Context, ev *Event) *Future {
	f := &Future{done: make(chan struct{})}
	p.produce(ctx, ev, &item{fut: f})
	return f
}

// ProduceFunc is Produce with a callback instead of a future: f is called
// once with the event's result and error, from the producer's goroutine (or
// from this one when the event is refused at once). f must not block for
// long: it holds up its lane.
func (p *Producer) ProduceFunc(ctx context.Context, ev *Event, f func(Result, error)) {
	p.produce(ctx, ev, &item{cb: f})
}

func (p *Producer) produce(ctx context.Context, ev *Event, it *item) {
	if ev == nil {
		it.resolve(Result{Err: errors.New("switchyard: nil event")})
		return
	}
	ev.prepareInto(&it.pe)
	it.ev = &it.pe
	it.size = publishwire.EventSize(it.ev) // proto.Size's figure, without reflection
	fail := func(err error) { it.resolve(Result{EventID: it.ev.GetId(), Err: err}) }
	if p.isClosed() {
		fail(ErrClosed)
		return
	}
	select {
	case p.slots <- struct{}{}:
	default:
		if p.cfg.failFast {
			fail(ErrBufferFull)
			return
		}
		select {
		case p.slots <- struct{}{}:
		case <-ctx.Done():
			fail(ctx.Err())
			return
		case <-p.closedCh:
			fail(ErrClosed)
			return
		}
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		<-p.slots
		fail(ErrClosed)
		return
	}
	it.at = time.Now()
	p.laneOf(it.ev).push(it)
}

func (p *Producer) isClosed() bool {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.closed
}

// laneOf returns the lane of an event: by its partition key, or its id.
func (p *Producer) laneOf(ev *v1.Event) *lane {
	if len(p.lanes) == 1 {
		return p.lanes[0]
	}
	key := ev.GetPartitionKey()
	if key == "" {
		key = ev.GetId()
	}
	// FNV-1a, inline: no allocation per event.
	h := uint32(2166136261)
	for i := 0; i < len(key); i++ {
		h ^= uint32(key[i])
		h *= 16777619
	}
	return p.lanes[h%uint32(len(p.lanes))]
}

// Flush sends what is buffered without lingering and waits until every
// event produced before the call is resolved, or ctx ends.
func (p *Producer) Flush(ctx context.Context) error {
	targets := make([]uint64, len(p.lanes))
	for i, l := range p.lanes {
		targets[i] = l.flush()
	}
	for i, l := range p.lanes {
		if err := l.waitDone(ctx, targets[i]); err != nil {
			return err
		}
	}
	return nil
}

// Close stops taking events (Produce then resolves them with ErrClosed),
// sends what is buffered and waits for it, retries included. If ctx ends
// first, the batches in flight are abandoned and every event not yet
// resolved is resolved with an error matching ErrClosed (and wrapping the
// last error the producer saw). Close returns nil when every event produced
// before it was delivered, and otherwise an error saying how many were not
// during Close. It does not close the Client.
func (p *Producer) Close(ctx context.Context) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return ErrClosed
	}
	p.closed = true
	close(p.closedCh)
	p.mu.Unlock()
	failedBefore := p.failed.Load()

	flushErr := p.Flush(ctx)
	if flushErr != nil {
		p.cancel() // abandon in-flight batches and their retries
	}
	for _, l := range p.lanes {
		l.close()
	}
	p.wg.Wait()
	p.cancel()

	failed := p.failed.Load() - failedBefore
	if failed == 0 && flushErr == nil {
		return nil
	}
	last := p.lastError()
	if flushErr != nil {
		return fmt.Errorf("%w: %d events not delivered: %w", ErrClosed, failed, errors.Join(flushErr, last))
	}
	return fmt.Errorf("%w: %d events not delivered: %w", ErrClosed, failed, last)
}

// lastError returns the last error an event was resolved with, or nil.
func (p *Producer) lastError() error {
	if e := p.lastErr.Load(); e != nil {
		return *e
	}
	return nil
}

// abandoned is the error of an event Close could not send.
func (p *Producer) abandoned(cause error) error {
	if cause == nil {
		cause = p.lastError()
	}
	if cause == nil {
		return ErrClosed
	}
	return fmt.Errorf("%w: not sent: %w", ErrClosed, cause)
}

// lane sends the batches of a share of the events, one at a time.
type lane struct {
	p    *Producer
	wake chan struct{}

	mu      sync.Mutex
	queue   []*item
	enq     uint64 // seq of the last event pushed
	done    uint64 // seq of the last event resolved; events resolve in seq order
	flushTo uint64 // events up to this seq are sent without lingering
	closing bool
	changed chan struct{} // closed and replaced whenever done moves
}

func (l *lane) signal() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

func (l *lane) push(it *item) {
	l.mu.Lock()
	l.enq++
	it.seq = l.enq
	l.queue = append(l.queue, it)
	l.mu.Unlock()
	l.signal()
}

// flush asks for everything pushed so far to be sent now, and returns the
// seq to wait for.
func (l *lane) flush() uint64 {
	l.mu.Lock()
	l.flushTo = l.enq
	target := l.enq
	l.mu.Unlock()
	l.signal()
	return target
}

func (l *lane) close() {
	l.mu.Lock()
	l.closing = true
	l.mu.Unlock()
	l.signal()
}

// waitDone waits until every event up to seq is resolved.
func (l *lane) waitDone(ctx context.Context, seq uint64) error {
	for {
		l.mu.Lock()
		if l.done >= seq {
			l.mu.Unlock()
			return nil
		}
		ch := l.changed
		l.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// run is the lane's loop: gather a batch, send it, resolve it.
func (l *lane) run() {
	p := l.p
	var timer *time.Timer
	for {
		l.mu.Lock()
		for {
			if len(l.queue) == 0 {
				if l.closing {
					l.mu.Unlock()
					return
				}
			} else if p.ctx.Err() != nil || l.closing || l.ready() {
				break
			}
			var tc <-chan time.Time
			if len(l.queue) > 0 {
				d := time.Until(l.queue[0].at.Add(p.cfg.linger))
				if d <= 0 {
					break
				}
				if timer == nil {
					timer = time.NewTimer(d)
				} else {
					timer.Reset(d)
				}
				tc = timer.C
			}
			l.mu.Unlock()
			select {
			case <-l.wake:
			case <-tc:
			}
			l.mu.Lock()
		}
		batch := l.take()
		l.mu.Unlock()
		l.send(batch)
	}
}

// ready reports whether the queue holds a full batch, or one being flushed.
// l.mu is held.
func (l *lane) ready() bool {
	if len(l.queue) >= l.p.cfg.batchSize || l.queue[0].seq <= l.flushTo {
		return true
	}
	var n int
	for _, it := range l.queue {
		n += it.size
		if n >= l.p.cfg.batchBytes {
			return true
		}
	}
	return false
}

// take removes the next batch from the queue: at most batchSize events
// and batchBytes bytes, at least one event. l.mu is held.
func (l *lane) take() []*item {
	var n, bytes int
	for n < len(l.queue) && n < l.p.cfg.batchSize {
		if n > 0 && bytes+l.queue[n].size > l.p.cfg.batchBytes {
			break
		}
		bytes += l.queue[n].size
		n++
	}
	batch := make([]*item, n)
	copy(batch, l.queue)
	clear(l.queue[:n])
	l.queue = l.queue[n:]
	return batch
}

// send publishes a batch, with retries, resolves its events and moves done.
func (l *lane) send(batch []*item) {
	p := l.p
	results := make([]Result, len(batch))
	if err := p.ctx.Err(); err != nil {
		for i, it := range batch {
			results[i] = Result{EventID: it.ev.GetId(), Err: p.abandoned(nil)}
		}
	} else {
		evs := make([]*v1.Event, len(batch))
		for i, it := range batch {
			evs[i] = it.ev
		}
		_ = p.c.publish(p.ctx, p.topic, evs, results)
		if p.ctx.Err() != nil {
			for i := range results {
				if results[i].Err != nil {
					results[i].Err = p.abandoned(results[i].Err)
				}
			}
		}
	}
	for i, it := range batch {
		if results[i].Err != nil {
			p.failed.Add(1)
			err := results[i].Err // declared here, only a failure escapes to the heap
			p.lastErr.Store(&err)
		}
		<-p.slots
		it.resolve(results[i])
	}
	l.mu.Lock()
	l.done = batch[len(batch)-1].seq
	close(l.changed)
	l.changed = make(chan struct{})
	l.mu.Unlock()
}
