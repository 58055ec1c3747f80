package deliver

import (
	"errors"
	"sync"
	"time"
)

// Breaker defaults.
const (
	// DefaultBreakerThreshold is how many consecutive Retryable attempts
	// open a destination's circuit.
	DefaultBreakerThreshold = 5
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

// breaker is a consecutive-failure circuit breaker. Closed, it lets every
// attempt through and counts consecutive Retryable outcomes; at threshold it
// opens. Open, it refuses attempts until cooldown has passed, then turns
// half-open and lets exactly one probe through: the probe's success closes
// it, its failure opens it again. Each state change starts a new generation;
// outcomes of attempts let through in an earlier generation are ignored, so
// a slow failure from before the circuit opened cannot reopen it after a
// successful probe.
type breaker struct {
	threshold int
	cooldown  time.Duration
	onChange  func(breakerState)

	mu       sync.Mutex
	state    breakerState
	gen      uint64
	failures int
	openedAt time.Time
	probing  bool
}

func newBreaker(threshold int, cooldown time.Duration, onChange func(breakerState)) *breaker {
	return &breaker{threshold: threshold, cooldown: cooldown, onChange: onChange}
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
		switch {
		case neutral:
		case !failed:
			b.failures = 0
		default:
			b.failures++
			if b.failures >= b.threshold {
				b.openedAt = now
				b.set(breakerOpen)
			}
		}
	case breakerHalfOpen:
		b.probing = false
		switch {
		case neutral:
		case failed:
			b.openedAt = now
			b.set(breakerOpen)
		default:
			b.failures = 0
			b.set(breakerClosed)
		}
	}
}

// set moves to state s in a new generation; b.mu is held.
func (b *breaker) set(s breakerState) {
	b.state = s
	b.gen++
	if s != breakerClosed {
		b.failures = 0
	}
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
