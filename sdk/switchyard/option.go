package switchyard

import (
	"log/slog"
	"net/http"
	"time"
)

// Defaults of a Client.
const (
	// DefaultTimeout bounds each attempt of a call.
	DefaultTimeout = 30 * time.Second
	// DefaultFailoverCooldown is how long an endpoint that failed with
	// Unavailable or a connection error is skipped.
	DefaultFailoverCooldown = 10 * time.Second
)

// DefaultRetryPolicy is the retry policy of a Client without [WithRetry].
var DefaultRetryPolicy = RetryPolicy{MaxAttempts: 5, InitialBackoff: 100 * time.Millisecond, MaxBackoff: 10 * time.Second}

// A ClientOption configures a [Client]. The set is closed: the options of
// this package are the only ones.
type ClientOption interface {
	applyClient(*clientConfig)
}

// clientConfig is what the options set.
type clientConfig struct {
	token      string
	httpClient *http.Client
	grpc       bool
	timeout    time.Duration
	retry      RetryPolicy
	logger     *slog.Logger
	endpoints  []string
	cooldown   time.Duration
}

// clientOptionFunc adapts a function to ClientOption.
type clientOptionFunc func(*clientConfig)

func (f clientOptionFunc) applyClient(c *clientConfig) { f(c) }

// WithToken sends key (an API key "sy_...", or the operator token) as a
// bearer token on every call.
func WithToken(key string) ClientOption {
	return clientOptionFunc(func(c *clientConfig) { c.token = key })
}

// WithHTTPClient makes the calls with hc. Its transport must speak HTTP/2
// for [WithGRPC]. Default: a client of its own whose transport speaks
// HTTP/1.1 and HTTP/2 (and cleartext HTTP/2 with WithGRPC).
func WithHTTPClient(hc *http.Client) ClientOption {
	return clientOptionFunc(func(c *clientConfig) { c.httpClient = hc })
}

// WithGRPC speaks the gRPC protocol (over HTTP/2) instead of Connect.
func WithGRPC() ClientOption {
	return clientOptionFunc(func(c *clientConfig) { c.grpc = true })
}

// WithConnect speaks the Connect protocol with binary Protobuf: the
// default.
func WithConnect() ClientOption {
	return clientOptionFunc(func(c *clientConfig) { c.grpc = false })
}

// WithTimeout bounds each attempt of a call (a retried call may take
// longer; bound the whole with the context). Default [DefaultTimeout]; a
// negative d means no bound.
func WithTimeout(d time.Duration) ClientOption {
	return clientOptionFunc(func(c *clientConfig) { c.timeout = d })
}

// WithRetry sets how calls that may be repeated safely (publishing, whose
// event ids make it idempotent, and reads) are retried after a retryable
// failure. Zero fields take the value of [DefaultRetryPolicy];
// MaxAttempts 1 disables retries.
func WithRetry(p RetryPolicy) ClientOption {
	return clientOptionFunc(func(c *clientConfig) { c.retry = p })
}

// WithLogger logs retries and failovers to l (at level Debug for retries,
// Warn for an endpoint set aside). Default: no logs.
func WithLogger(l *slog.Logger) ClientOption {
	return clientOptionFunc(func(c *clientConfig) { c.logger = l })
}

// WithEndpoints adds alternate base URLs, tried in order after the one
// given to [NewClient]. An endpoint whose call fails with Unavailable or a
// connection error is skipped for a cool-down ([DefaultFailoverCooldown],
// see [WithFailoverCooldown]); calls go to the first endpoint not cooling
// down, or, when all are, to the one whose cool-down ends first.
func WithEndpoints(urls ...string) ClientOption {
	return clientOptionFunc(func(c *clientConfig) { c.endpoints = append(c.endpoints, urls...) })
}

// WithFailoverCooldown sets how long a failed endpoint is skipped.
func WithFailoverCooldown(d time.Duration) ClientOption {
	return clientOptionFunc(func(c *clientConfig) { c.cooldown = d })
}
