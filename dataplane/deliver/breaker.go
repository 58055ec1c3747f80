package deliver

import (
	"errors"
	"sync"
	"time"
)

// Breaker defaults.
const (
	// DefaultBreakerThreshold is the fewest Retryable attempts within
	// BreakerWindow that open a destination's circuit (when they are also at
	// least DefaultBreakerFailureRatio of its attempts).
	DefaultBreakerThreshold = 5
	// DefaultBreakerFailureRatio is the share of Retryable attempts within
	// BreakerWindow that opens a circuit (with at least the threshold of
	// them).
	DefaultBreakerFailureRatio = 0.5
	// BreakerWindow is the span of recent attempts a breaker judges.
	BreakerWindow = 10 * time.Second
	// DefaultBreakerCooldown is how long a circuit stays open before one
	// probe may go through (half-open).
	DefaultBreakerCooldown = 30 * time.Second
)

// ErrCircuitOpen is the Err of a Retryable result given without sending
// because the destination's circuit breaker is open.
var ErrCircuitOpen = errors.New("circuit open")

type breakerState int

const (
	breakerClosed breakerState = iota
	breakerOpen
	breakerHalfOpen
)

// breakerBuckets is how many slices BreakerWindow is kept in.
const breakerBuckets = 10

// bucket counts the outcomes of one slice of the window.
type bucket struct {
	slot     int64 // which slice of time (unix time / slice width)
	ok, fail int
}

// breaker is a failure-rate circuit breaker. Closed, it lets every attempt
// through and counts the outcomes of the last BreakerWindow in sliding
// buckets; it opens when the window holds at least threshold Retryable
// outcomes and they are at least ratio of all. A receiver that is down opens
// it after threshold attempts, as a consecutive-failure breaker would; a
// receiver that fails a minority of requests at a high rate (where runs of
// threshold failures in a row come by chance) keeps it closed, its failures
// retried one by one. Open, it refuses attempts until cooldown has passed, then turns
// half-open and lets exactly one probe through: the probe's success closes
// it, its failure opens it again. Each state change starts a new generation;
// outcomes of attempts let through in an earlier generation are ignored, so
// a slow failure from before the circuit opened cannot reopen it after a
// successful probe.
type breaker struct {
	threshold int
	ratio     float64
	cooldown  time.Duration
	onChange  func(breakerState)

	mu       sync.Mutex
	state    breakerState
	gen      uint64
	window   [breakerBuckets]bucket
	openedAt time.Time
	probing  bool
}

func newBreaker(threshold int, ratio float64, cooldown time.Duration, onChange func(breakerState)) *breaker {
	return &breaker{threshold: threshold, ratio: ratio, cooldown: cooldown, onChange: onChange}
}

// count adds an outcome at now to the window and returns the window's
// failures and total; b.mu is held.
func (b *breaker) count(failed bool, now time.Time) (fails, total int) {
	width := int64(BreakerWindow / breakerBuckets)
	slot := now.UnixNano() / width
	cur := &b.window[slot%breakerBuckets]
	if cur.slot != slot {
		*cur = bucket{slot: slot}
	}
	if failed {
		cur.fail++
	} else {
		cur.ok++
	}
	for _, x := range b.window {
		if x.slot > slot-breakerBuckets {
			fails += x.fail
			total += x.ok + x.fail
		}
	}
	return fails, total
}

// open reports whether the circuit refuses attempts at now, without taking
// the half-open probe.
func (b *breaker) open(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state {
	case breakerOpen:
		return now.Sub(b.openedAt) < b.cooldown
	case breakerHalfOpen:
		return b.probing
	default:
		return false
	}
}

// allow asks to make an attempt at now. It returns the generation to report
// the outcome under, and false when the circuit refuses.
func (b *breaker) allow(now time.Time) (uint64, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state {
	case breakerOpen:
		if now.Sub(b.openedAt) < b.cooldown {
			return 0, false
		}
		b.set(breakerHalfOpen)
		b.probing = true
		return b.gen, true
	case breakerHalfOpen:
		if b.probing {
			return 0, false
		}
		b.probing = true
		return b.gen, true
	default:
		return b.gen, true
	}
}

// record reports the outcome of an attempt allowed under gen. A neutral
// outcome (the caller's context ended: the destination is not to blame)
// changes nothing but frees the half-open probe for another attempt.
func (b *breaker) record(gen uint64, failed, neutral bool, now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if gen != b.gen {
		return
	}
	switch b.state {
	case breakerClosed:
		if neutral {
			return
		}
		fails, total := b.count(failed, now)
		if failed && fails >= b.threshold && float64(fails) >= b.ratio*float64(total) {
			b.openedAt = now
			b.set(breakerOpen)
		}
	case breakerHalfOpen:
		b.probing = false
		switch {
		case neutral:
		case failed:
			b.openedAt = now
			b.set(breakerOpen)
		default:
			b.set(breakerClosed)
		}
	}
}

// set moves to state s in a new generation; b.mu is held.
func (b *breaker) set(s breakerState) {
	b.state = s
	b.gen++
	// Each state judges only its own attempts.
	b.window = [breakerBuckets]bucket{}
	if b.onChange != nil {
		b.onChange(s)
	}
}

// gaugeValue is the switchyard_breaker_state value of s.
func (s breakerState) gaugeValue() float64 {
	switch s {
	case breakerOpen:
		return breakerOpenValue
	case breakerHalfOpen:
		return breakerHalfOpenValue
	default:
		return breakerClosedValue
	}
}

// String names the state.
func (s breakerState) String() string {
	switch s {
	case breakerOpen:
		return "open"
	case breakerHalfOpen:
		return "half-open"
	default:
		return "closed"
	}
}
