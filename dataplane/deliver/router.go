package deliver

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Router defaults.
const (
	// DefaultMaxInFlight is a destination's concurrency limit when it sets
	// none.
	DefaultMaxInFlight = 16
	// DefaultIdleAfter is how long a destination's state (limits, breaker)
	// is kept unused before it is dropped.
	DefaultIdleAfter = 10 * time.Minute
)

// ErrRouterClosed is the Err of a Retryable result from a closed Router.
var ErrRouterClosed = errors.New("delivery router closed")

// Router is a Deliverer for every kind of destination: it hands a request to
// Webhook or Kafka by the destination's kind, and wraps each destination in
// its limits:
//
//   - a concurrency limit, max_in_flight (DefaultMaxInFlight when 0);
//   - a token bucket, rate_limit (none when unset; burst 0 means
//     max(1, per_second));
//   - a circuit breaker: it opens when the attempts of the last
//     BreakerWindow hold at least BreakerThreshold Retryable ones and they
//     are at least BreakerFailureRatio of all; while open, Deliver answers Retryable with ErrCircuitOpen at once,
//     sending nothing; after BreakerCooldown one probe goes through
//     (half-open), and its success closes the circuit. Attempts cut short by
//     the caller's context do not count.
//
// Waiting for a limit honours ctx; a wait cut short is Retryable. The state
// of a destination is keyed by tenant, pipeline, destination name and a hash
// of the destination's delivery settings, so a changed destination starts
// afresh (while attempts on the old settings finish, both sets of limits
// apply side by side). State unused for IdleAfter is dropped, so deleted
// pipelines leave nothing behind; the sweep runs inside Deliver, so a Router
// starts no goroutine.
//
// The exported fields other than Webhook and Kafka are settings; set them
// before the first Deliver and do not change them afterwards.
type Router struct {
	// Webhook delivers to webhook destinations; nil refuses them
	// (Permanent).
	Webhook Deliverer
	// Kafka delivers to Kafka destinations; nil refuses them (Permanent).
	Kafka Deliverer

	// BreakerThreshold is the fewest Retryable attempts within BreakerWindow
	// that open a circuit; 0 means DefaultBreakerThreshold.
	BreakerThreshold int
	// BreakerFailureRatio is the share of Retryable attempts within
	// BreakerWindow that opens a circuit (0 < r <= 1); 0 means
	// DefaultBreakerFailureRatio.
	BreakerFailureRatio float64
	// BreakerCooldown is how long a circuit stays open; 0 means
	// DefaultBreakerCooldown.
	BreakerCooldown time.Duration
	// IdleAfter is how long unused destination state is kept; 0 means
	// DefaultIdleAfter.
	IdleAfter time.Duration
	// Now is the breaker's and the sweep's clock; nil means time.Now. (Rate
	// limits use the real clock.)
	Now func() time.Time
	// Logger receives breaker transitions; nil discards them.
	Logger *slog.Logger

	metrics *Metrics

	mu        sync.Mutex
	closed    bool
	states    map[stateKey]*destState
	lastSweep time.Time
}

// NewRouter returns a Router over the given deliverers, recording metrics
// into m when it is not nil.
func NewRouter(webhook, kafka Deliverer, m *Metrics) *Router {
	return &Router{Webhook: webhook, Kafka: kafka, metrics: m, states: make(map[stateKey]*destState)}
}

// Close drops every destination's state and makes later calls to Deliver
// answer Retryable with ErrRouterClosed. Attempts under way finish. The
// Router starts no background work, so nothing else needs stopping; Close
// does not close Webhook or Kafka.
func (r *Router) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	for k := range r.states {
		r.dropLocked(k)
	}
}

// stateKey identifies the limits of one destination configuration.
type stateKey struct {
	tenant, pipeline, destination string
	hash                          uint64
}

// destState is the limits and breaker of one destination configuration.
type destState struct {
	sem     chan struct{}
	limiter *rate.Limiter // nil: unlimited
	breaker *breaker

	refs     atomic.Int64 // calls under way holding this state
	lastUsed atomic.Int64 // unix nanoseconds of r.now()
}

// Deliver delivers req through the limits of its destination.
func (r *Router) Deliver(ctx context.Context, req *Request) Result {
	if req == nil || req.Destination == nil {
		return Result{Outcome: Permanent, Err: fmt.Errorf("%w: no destination", ErrInvalidRequest)}
	}
	var d Deliverer
	switch {
	case req.Destination.GetWebhook() != nil:
		d = r.Webhook
	case req.Destination.GetKafka() != nil:
		d = r.Kafka
	default:
		return Result{Outcome: Permanent, Err: fmt.Errorf("%w: destination %q has no kind", ErrInvalidRequest, req.Destination.GetName())}
	}
	if d == nil {
		return Result{Outcome: Permanent, Err: fmt.Errorf("%w: no deliverer for the kind of destination %q", ErrInvalidRequest, req.Destination.GetName())}
	}

	pipeline, name := req.PipelineID, req.Destination.GetName()
	st := r.acquire(req)
	if st == nil {
		return Result{Outcome: Retryable, Err: ErrRouterClosed}
	}
	defer r.release(st)

	if err := ctx.Err(); err != nil {
		r.metrics.reject(pipeline, name, rejectLimitWait)
		return Result{Outcome: Retryable, Err: fmt.Errorf("delivery not started: %w", context.Cause(ctx))}
	}
	if st.breaker.open(r.now()) {
		r.metrics.reject(pipeline, name, rejectCircuitOpen)
		return Result{Outcome: Retryable, Err: ErrCircuitOpen}
	}
	select {
	case st.sem <- struct{}{}:
	case <-ctx.Done():
		r.metrics.reject(pipeline, name, rejectLimitWait)
		return Result{Outcome: Retryable, Err: fmt.Errorf("waiting for the concurrency limit: %w", context.Cause(ctx))}
	}
	defer func() { <-st.sem }()
	if st.limiter != nil {
		if err := st.limiter.Wait(ctx); err != nil {
			r.metrics.reject(pipeline, name, rejectLimitWait)
			return Result{Outcome: Retryable, Err: fmt.Errorf("waiting for the rate limit: %w", err)}
		}
	}
	gen, ok := st.breaker.allow(r.now())
	if !ok {
		r.metrics.reject(pipeline, name, rejectCircuitOpen)
		return Result{Outcome: Retryable, Err: ErrCircuitOpen}
	}

	r.metrics.addInFlight(pipeline, name, 1)
	res := d.Deliver(ctx, req)
	r.metrics.addInFlight(pipeline, name, -1)
	st.breaker.record(gen, res.Outcome == Retryable, ctx.Err() != nil, r.now())
	return res
}

func (r *Router) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// acquire returns the state of req's destination, creating it if needed,
// with a reference taken; nil when the Router is closed.
func (r *Router) acquire(req *Request) *destState {
	key := stateKey{
		tenant:      req.TenantID,
		pipeline:    req.PipelineID,
		destination: req.Destination.GetName(),
		hash:        destinationHash(req),
	}
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	r.sweepLocked(now)
	st, ok := r.states[key]
	if !ok {
		st = r.newState(req)
		if r.states == nil {
			r.states = make(map[stateKey]*destState)
		}
		r.states[key] = st
	}
	st.refs.Add(1)
	st.lastUsed.Store(now.UnixNano())
	return st
}

func (r *Router) release(st *destState) {
	st.lastUsed.Store(r.now().UnixNano())
	st.refs.Add(-1)
}

// newState builds the limits of req's destination.
func (r *Router) newState(req *Request) *destState {
	dest := req.Destination
	pipeline, name := req.PipelineID, dest.GetName()
	maxInFlight := int(dest.GetMaxInFlight())
	if maxInFlight <= 0 {
		maxInFlight = DefaultMaxInFlight
	}
	st := &destState{sem: make(chan struct{}, maxInFlight)}
	if rl := dest.GetRateLimit(); rl != nil && rl.GetPerSecond() > 0 && !math.IsInf(rl.GetPerSecond(), 0) {
		burst := int(rl.GetBurst())
		if burst <= 0 {
			burst = max(1, int(rl.GetPerSecond()))
		}
		st.limiter = rate.NewLimiter(rate.Limit(rl.GetPerSecond()), burst)
	}
	logger := cmp.Or(r.Logger, slog.New(slog.DiscardHandler))
	st.breaker = newBreaker(
		cmp.Or(r.BreakerThreshold, DefaultBreakerThreshold),
		cmp.Or(r.BreakerFailureRatio, DefaultBreakerFailureRatio),
		cmp.Or(r.BreakerCooldown, DefaultBreakerCooldown),
		func(s breakerState) {
			r.metrics.setBreaker(pipeline, name, s.gaugeValue())
			logger.Info("circuit breaker "+s.String(), "tenant", req.TenantID, "pipeline", pipeline, "destination", name)
		},
	)
	r.metrics.setBreaker(pipeline, name, breakerClosedValue)
	return st
}

// sweepLocked drops state unused for IdleAfter, at most every IdleAfter/2;
// r.mu is held.
func (r *Router) sweepLocked(now time.Time) {
	idle := cmp.Or(r.IdleAfter, DefaultIdleAfter)
	if now.Sub(r.lastSweep) < idle/2 {
		return
	}
	r.lastSweep = now
	cutoff := now.Add(-idle).UnixNano()
	for k, st := range r.states {
		if st.refs.Load() == 0 && st.lastUsed.Load() <= cutoff {
			r.dropLocked(k)
		}
	}
}

// dropLocked removes a state and, when no other configuration of the same
// destination remains, its gauge series; r.mu is held.
func (r *Router) dropLocked(k stateKey) {
	delete(r.states, k)
	for o := range r.states {
		if o.pipeline == k.pipeline && o.destination == k.destination {
			return
		}
	}
	r.metrics.forget(k.pipeline, k.destination)
}

// destinationHash hashes the settings of req's destination that shape
// delivery, so that changing any of them gives the destination fresh state.
func destinationHash(req *Request) uint64 {
	d := req.Destination
	h := fnv.New64a()
	var buf [8]byte
	str := func(s string) {
		binary.LittleEndian.PutUint64(buf[:], uint64(len(s)))
		h.Write(buf[:])
		h.Write([]byte(s))
	}
	num := func(n uint64) {
		binary.LittleEndian.PutUint64(buf[:], n)
		h.Write(buf[:])
	}
	num(uint64(d.GetMaxInFlight()))
	if rl := d.GetRateLimit(); rl != nil {
		num(1)
		num(math.Float64bits(rl.GetPerSecond()))
		num(uint64(rl.GetBurst()))
	} else {
		num(0)
	}
	switch {
	case d.GetWebhook() != nil:
		wh := d.GetWebhook()
		str("webhook")
		str(wh.GetUrl())
		num(uint64(wh.GetTimeout().AsDuration()))
		keys := make([]string, 0, len(wh.GetHeaders()))
		for k := range wh.GetHeaders() {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			str(k)
			str(wh.GetHeaders()[k])
		}
	case d.GetKafka() != nil:
		str("kafka")
		str(d.GetKafka().GetTopic())
	}
	return h.Sum64()
}
