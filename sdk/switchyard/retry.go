package switchyard

import (
	"cmp"
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"time"

	"connectrpc.com/connect"
)

// RetryPolicy says how often and how patiently a call is tried again.
// Waits grow exponentially from InitialBackoff, doubling up to MaxBackoff,
// with full jitter (a wait is uniform in [0, the exponential value]); a
// wait the server asks for (google.rpc.RetryInfo, sent with a rate limit)
// is a lower bound.
type RetryPolicy struct {
	// MaxAttempts counts the first try; 1 means no retry.
	MaxAttempts int
	// InitialBackoff is the bound of the first wait.
	InitialBackoff time.Duration
	// MaxBackoff caps the bound of every wait.
	MaxBackoff time.Duration
}

// withDefaults fills zero fields from DefaultRetryPolicy.
func (p RetryPolicy) withDefaults() RetryPolicy {
	p.MaxAttempts = cmp.Or(p.MaxAttempts, DefaultRetryPolicy.MaxAttempts)
	p.InitialBackoff = cmp.Or(p.InitialBackoff, DefaultRetryPolicy.InitialBackoff)
	p.MaxBackoff = cmp.Or(p.MaxBackoff, max(DefaultRetryPolicy.MaxBackoff, p.InitialBackoff))
	return p
}

// backoff returns the wait after the n-th failed attempt (n >= 1).
func (p RetryPolicy) backoff(n int) time.Duration {
	bound := p.InitialBackoff
	for i := 1; i < n && bound < p.MaxBackoff; i++ {
		bound *= 2
	}
	bound = min(bound, p.MaxBackoff)
	if bound <= 0 {
		return 0
	}
	return rand.N(bound + 1)
}

// retryable reports whether a failed call may be tried again, and the least
// wait the server asked for.
func retryable(err error) (bool, time.Duration) {
	var e *Error
	if errors.As(err, &e) {
		switch e.Code() {
		case connect.CodeUnavailable, connect.CodeDeadlineExceeded:
			return true, 0
		case connect.CodeResourceExhausted:
			// A rate limit says when to come back; a QuotaFailure (a batch no
			// wait admits) or a plain refusal does not pass by waiting.
			d, ok := e.RetryDelay()
			return ok, d
		case connect.CodeUnknown, connect.CodeInternal:
			return isConnError(err), 0
		}
		return false, 0
	}
	return isConnError(err), 0
}

// isConnError reports whether err is a network failure.
func isConnError(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF)
}

// retryableEventCode reports whether a per-event error code of a publish
// result means the event may be sent again.
func retryableEventCode(code string) bool {
	return code == "unavailable" || code == "deadline_exceeded"
}

// isRateLimit reports whether err is a rate limit that says when to retry.
func isRateLimit(err error) bool {
	var e *Error
	if !errors.As(err, &e) || e.Code() != connect.CodeResourceExhausted {
		return false
	}
	_, ok := e.RetryDelay()
	return ok
}

// sleep waits d or until ctx is done, and reports whether it waited.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// retry runs f until it succeeds, fails for good, the policy's attempts are
// spent or ctx is done. It returns f's last error, as an *Error when it is
// one.
func (c *Client) retry(ctx context.Context, op string, f func(context.Context) error) error {
	p := c.cfg.retry
	for n := 1; ; n++ {
		err := wrapError(f(ctx))
		if err == nil {
			return nil
		}
		ok, least := retryable(err)
		if !ok || n >= p.MaxAttempts || ctx.Err() != nil {
			return err
		}
		wait := max(p.backoff(n), least)
		c.cfg.logger.Debug("switchyard: retrying", slog.String("op", op), slog.Int("attempt", n),
			slog.Duration("wait", wait), slog.Any("error", err))
		if !sleep(ctx, wait) {
			return err
		}
	}
}

// call runs f once, or with retries when idempotent, and returns its
// response with its error as an *Error.
func call[Res any](ctx context.Context, c *Client, op string, idempotent bool, f func(context.Context) (*Res, error)) (*Res, error) {
	var res *Res
	run := func(ctx context.Context) error {
		var err error
		res, err = f(ctx)
		return err
	}
	var err error
	if idempotent {
		err = c.retry(ctx, op, run)
	} else {
		err = wrapError(run(ctx))
	}
	if err != nil {
		return nil, err
	}
	return res, nil
}
