package switchyard

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
)

// MaxBatch is the most events one Publish request carries; Publish splits
// larger calls.
const MaxBatch = 500

// Result is the outcome of publishing one event.
type Result struct {
	// EventID is the event's id: the one it had, or the UUIDv7 it was
	// given.
	EventID string
	// Partition and Offset say where in Kafka the event was written, when
	// Err is nil.
	Partition int32
	Offset    int64
	// Err is why the event was not accepted: an *Error (e.g. matching
	// ErrInvalidArgument for an event that breaks a rule) or the error of
	// the whole request. Nil means the event is durable in Kafka.
	Err error
}

// Publish writes events to topic (a name or an id) and waits until they are
// durable in Kafka. It returns a result per event, in order. Events without
// an id are given a UUIDv7 before the first attempt, so retries cannot make
// two events of one.
//
// A failure of the whole request that may pass (Unavailable, a rate limit
// with its RetryInfo, DeadlineExceeded of an attempt, a connection error) is
// retried per the client's [RetryPolicy], resending the same events; so are
// events whose own result is unavailable. A rate limit that says when to
// come back (RetryInfo) is waited out without spending an attempt: bound
// the call with ctx. The returned error is non-nil
// only when the request as a whole failed for good (then every result
// carries it too); an event refused on its own (invalid, too large) has its
// Err set and does not fail the others. More than [MaxBatch] events are sent
// as several requests, one after the other.
func (c *Client) Publish(ctx context.Context, topic string, events ...*Event) ([]Result, error) {
	pes := make([]*v1.Event, len(events))
	for i, e := range events {
		if e == nil {
			return nil, fmt.Errorf("switchyard: event %d is nil", i)
		}
		pes[i] = e.prepare()
	}
	results := make([]Result, len(pes))
	var firstErr error
	for start := 0; start < len(pes); start += MaxBatch {
		end := min(start+MaxBatch, len(pes))
		if err := c.publish(ctx, topic, pes[start:end], results[start:end]); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return results, firstErr
}

// publish sends events (at most MaxBatch) with retries and fills results.
func (c *Client) publish(ctx context.Context, topic string, events []*v1.Event, results []Result) error {
	for i, e := range events {
		results[i] = Result{EventID: e.GetId()}
	}
	p := c.cfg.retry
	pending := make([]int, len(events))
	for i := range pending {
		pending[i] = i
	}
	for n := 1; ; n++ {
		batch := make([]*v1.Event, len(pending))
		for j, i := range pending {
			batch[j] = events[i]
		}
		resp, err := c.ingest.Publish(ctx, &v1.PublishRequest{Topic: topic, Events: batch})
		err = wrapError(err)
		if err == nil && len(resp.GetResults()) != len(batch) {
			err = errNoResults
		}
		var least time.Duration
		if err != nil {
			ok, d := retryable(err)
			if ok && isRateLimit(err) {
				// Flow control, not a failure: wait as asked without
				// spending an attempt. ctx bounds the wait.
				n--
			}
			if !ok || n >= p.MaxAttempts || ctx.Err() != nil {
				for _, i := range pending {
					results[i].Err = err
				}
				return err
			}
			least = d
		} else {
			again := pending[:0:0]
			for j, r := range resp.GetResults() {
				i := pending[j]
				if st := r.GetError(); st != nil {
					results[i].Err = eventError(st.GetCode(), st.GetMessage())
					if retryableEventCode(st.GetCode()) {
						again = append(again, i)
					}
					continue
				}
				results[i] = Result{EventID: r.GetEventId(), Partition: r.GetPartition(), Offset: r.GetOffset()}
			}
			pending = again
			if len(pending) == 0 || n >= p.MaxAttempts || ctx.Err() != nil {
				return nil
			}
		}
		wait := max(p.backoff(max(n, 1)), least)
		c.cfg.logger.Debug("switchyard: retrying publish", slog.String("topic", topic), slog.Int("attempt", n),
			slog.Int("events", len(pending)), slog.Duration("wait", wait), slog.Any("error", err))
		if !sleep(ctx, wait) {
			if err == nil {
				return nil // the pending events keep their unavailable results
			}
			for _, i := range pending {
				results[i].Err = err
			}
			return err
		}
	}
}
