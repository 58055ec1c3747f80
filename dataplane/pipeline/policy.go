package pipeline

import (
	"errors"
	"math"
	"time"

	"github.com/switchyard-dev/switchyard/dataplane/deliver"
	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
)

// Defaults of a retry policy, applied to fields left at zero. The control
// plane stores explicit values; these keep a hand-made snapshot working.
const (
	defaultMaxAttempts    = 10
	defaultMaxAge         = 24 * time.Hour
	defaultInitialBackoff = 5 * time.Second
	defaultMaxBackoff     = 2 * time.Hour
	defaultMultiplier     = 2.0
)

// defaultNonRetryable is the status code set used when a policy names none.
var defaultNonRetryable = []uint32{410}

// Dead-letter reasons (the sy-reason header and the reason label).
const (
	ReasonMalformed          = "malformed"
	ReasonFilterError        = "filter_error"
	ReasonTransformError     = "transform_error"
	ReasonMaxAttempts        = "max_attempts"
	ReasonMaxAge             = "max_age"
	ReasonNonRetryableStatus = "non_retryable_status"
	ReasonPermanentError     = "permanent_error"
)

// retryPolicy is a v1.RetryPolicy with its defaults applied.
type retryPolicy struct {
	maxAttempts  int
	maxAge       time.Duration
	initial      time.Duration
	max          time.Duration
	multiplier   float64
	jitter       v1.Jitter
	nonRetryable []uint32
}

// policyOf applies the defaults to p (which may be nil).
func policyOf(p *v1.RetryPolicy) retryPolicy {
	rp := retryPolicy{
		maxAttempts:  int(p.GetMaxAttempts()),
		maxAge:       p.GetMaxAge().AsDuration(),
		initial:      p.GetInitialBackoff().AsDuration(),
		max:          p.GetMaxBackoff().AsDuration(),
		multiplier:   p.GetMultiplier(),
		jitter:       p.GetJitter(),
		nonRetryable: p.GetNonRetryableStatusCodes(),
	}
	if rp.maxAttempts <= 0 {
		rp.maxAttempts = defaultMaxAttempts
	}
	if p.GetMaxAge() == nil || rp.maxAge <= 0 {
		rp.maxAge = defaultMaxAge
	}
	if p.GetInitialBackoff() == nil || rp.initial <= 0 {
		rp.initial = defaultInitialBackoff
	}
	if p.GetMaxBackoff() == nil || rp.max <= 0 {
		rp.max = defaultMaxBackoff
	}
	if rp.max < rp.initial {
		rp.max = rp.initial
	}
	if rp.multiplier < 1 {
		rp.multiplier = defaultMultiplier
	}
	if rp.jitter == v1.Jitter_JITTER_UNSPECIFIED {
		rp.jitter = v1.Jitter_JITTER_FULL
	}
	if len(rp.nonRetryable) == 0 {
		rp.nonRetryable = defaultNonRetryable
	}
	return rp
}

// backoff returns the delay after failed attempt number attempt (from 1):
// min(max, initial * multiplier^(attempt-1)), randomised by the jitter mode
// with rnd, a source of uniform numbers in [0, 1).
func (p retryPolicy) backoff(attempt int, rnd func() float64) time.Duration {
	if attempt < 1 {
		attempt = 1
	}
	b := float64(p.initial) * math.Pow(p.multiplier, float64(attempt-1))
	if math.IsNaN(b) || b > float64(p.max) {
		b = float64(p.max)
	}
	switch p.jitter {
	case v1.Jitter_JITTER_NONE:
	case v1.Jitter_JITTER_EQUAL:
		b = b/2 + b/2*rnd()
	default: // FULL
		b *= rnd()
	}
	return time.Duration(b)
}

// next decides what follows when attempt attempts have been made (0 when
// the last try was refused without sending), the first at first, now: a
// delay before the next attempt, or the reason to give up.
// A Retry-After longer than the backoff wins, capped at the policy's
// max_backoff: the pipeline's owner sets the longest wait.
func (p retryPolicy) next(attempt int, first, now time.Time, retryAfter time.Duration, rnd func() float64) (time.Duration, string) {
	if attempt >= p.maxAttempts {
		return 0, ReasonMaxAttempts
	}
	d := p.backoff(max(attempt, 1), rnd)
	if retryAfter > d {
		d = min(retryAfter, p.max)
	}
	if now.Add(d).After(first.Add(p.maxAge)) {
		return 0, ReasonMaxAge
	}
	return d, ""
}

// reasoner is implemented by delivery errors that name their own
// dead-letter reason.
type reasoner interface{ Reason() string }

// permanentReason names the dead-letter reason of a Permanent result.
func permanentReason(res deliver.Result) string {
	if res.StatusCode != 0 {
		return ReasonNonRetryableStatus
	}
	var r reasoner
	if errors.As(res.Err, &r) && r.Reason() != "" {
		return r.Reason()
	}
	return ReasonPermanentError
}
