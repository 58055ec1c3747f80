// Package deliver sends one event to one destination and says how it went:
// webhooks signed per the Standard Webhooks specification, and Kafka topics.
// Per destination it keeps a connection pool, a concurrency limit, a token
// bucket and a circuit breaker.
//
// Whether to try again, when, and where a failure goes is not decided here:
// a Result only classifies the attempt; the pipeline worker applies the
// retry policy.
package deliver

import (
	"context"
	"time"

	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
)

// Outcome classifies one delivery attempt.
type Outcome int

// Outcomes of an attempt.
const (
	// Delivered: a 2xx answer, or the Kafka destination acknowledged.
	Delivered Outcome = iota + 1
	// Retryable: a failure that may pass (5xx, 429, 408, timeout, connection
	// error, open circuit breaker, rate limit wait cut short).
	Retryable
	// Permanent: a failure that will not pass by retrying (a status code the
	// retry policy names as non-retryable, 410 by default; a refused address).
	Permanent
)

// String returns the outcome's name.
func (o Outcome) String() string {
	switch o {
	case Delivered:
		return "delivered"
	case Retryable:
		return "retryable"
	case Permanent:
		return "permanent"
	default:
		return "unknown"
	}
}

// Request is one attempt to deliver one event to one destination.
type Request struct {
	TenantID   string
	PipelineID string
	// Destination is the pipeline's destination; its name identifies it
	// within the pipeline.
	Destination *v1.Destination
	// Secrets are the webhook's signing secrets, newest first ("whsec_...");
	// every one signs, so receivers keep working during a rotation.
	Secrets []string
	// Event carries the CloudEvents attributes; its Data is the payload to
	// send (already transformed) and DataContentType its media type.
	Event *v1.Event
	// Attempt counts from 1.
	Attempt int
	// NonRetryable lists HTTP status codes that are Permanent (the retry
	// policy's non_retryable_status_codes).
	NonRetryable []uint32
	// Traceparent, when set, is sent as the W3C traceparent header.
	Traceparent string
}

// Result says how an attempt went.
type Result struct {
	Outcome Outcome
	// StatusCode is the HTTP status of a webhook attempt; 0 when no response
	// came.
	StatusCode int
	// RetryAfter is the delay the receiver asked for (Retry-After), or 0.
	RetryAfter time.Duration
	// Latency is the time from sending to the answer.
	Latency time.Duration
	// Err explains a failure; nil when Delivered.
	Err error
}

// Deliverer makes delivery attempts. Implementations are safe for
// concurrent use and honour ctx (its cancellation ends an attempt as
// Retryable).
type Deliverer interface {
	Deliver(ctx context.Context, req *Request) Result
}
