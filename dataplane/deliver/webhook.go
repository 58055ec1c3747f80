package deliver

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/switchyard-dev/switchyard/internal/netguard"
	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
)

// Defaults of a webhook delivery.
const (
	// DefaultWebhookTimeout bounds one request when the destination sets no
	// timeout.
	DefaultWebhookTimeout = 10 * time.Second
	// DefaultMaxIdleConnsPerHost is the keep-alive pool size per host.
	DefaultMaxIdleConnsPerHost = 64
	// DefaultUserAgent is the User-Agent of webhook requests.
	DefaultUserAgent = "Switchyard-Webhooks/1"
	// DefaultContentType is sent when the event has no data content type.
	DefaultContentType = "application/json"
	// MaxRetryAfter caps the delay a receiver may ask for with Retry-After.
	MaxRetryAfter = 24 * time.Hour
	// maxResponseBody is how much of a response body is read and kept.
	maxResponseBody = 64 << 10
	// maxDrain is how much more of a response body is read so that the
	// connection can be reused; a longer body closes the connection.
	maxDrain = 256 << 10
	// maxErrorBody is how much of the response body an HTTPError's message
	// quotes.
	maxErrorBody = 512
)

// ErrTimeout is wrapped by the Err of an attempt that got no answer within
// the destination's timeout.
var ErrTimeout = errors.New("webhook timed out")

// ErrRedirect is matched (errors.Is) by the HTTPError of a 3xx answer:
// redirects are not followed, since following one would send the signed
// event to an address the destination does not name.
var ErrRedirect = errors.New("redirects are not followed")

// ErrInvalidRequest is wrapped by the Err of a Permanent result for a
// request that cannot be sent: no event, a destination of another kind, a
// malformed URL, secret or header.
var ErrInvalidRequest = errors.New("invalid delivery request")

// HTTPError is the Err of a webhook attempt answered with a status other
// than 2xx.
type HTTPError struct {
	// StatusCode is the answer's HTTP status.
	StatusCode int
	// Body is the start of the response body, at most 64 KiB.
	Body []byte
	// Location is the Location header of a 3xx answer.
	Location string
}

// Error describes the answer, quoting the start of its body.
func (e *HTTPError) Error() string {
	var b strings.Builder
	b.WriteString("HTTP ")
	b.WriteString(strconv.Itoa(e.StatusCode))
	if t := http.StatusText(e.StatusCode); t != "" {
		b.WriteByte(' ')
		b.WriteString(t)
	}
	if e.StatusCode >= 300 && e.StatusCode < 400 {
		b.WriteString(": ")
		b.WriteString(ErrRedirect.Error())
		if e.Location != "" {
			b.WriteString(" (Location: ")
			b.WriteString(quoteBody([]byte(e.Location), maxErrorBody))
			b.WriteByte(')')
		}
	}
	if body := strings.TrimSpace(quoteBody(e.Body, maxErrorBody)); body != "" {
		b.WriteString(": ")
		b.WriteString(body)
	}
	return b.String()
}

// Is reports whether target is ErrRedirect and the answer was a 3xx.
func (e *HTTPError) Is(target error) bool {
	return target == ErrRedirect && e.StatusCode >= 300 && e.StatusCode < 400
}

// quoteBody returns at most n bytes of b as valid UTF-8, with "…" when cut.
func quoteBody(b []byte, n int) string {
	if len(b) <= n {
		return strings.ToValidUTF8(string(b), "\uFFFD")
	}
	return strings.ToValidUTF8(string(b[:n]), "\uFFFD") + "…"
}

// WebhookConfig configures a Webhook.
type WebhookConfig struct {
	// Policy is the SSRF guard, applied at dial time to the address actually
	// connected to (net.Dialer.Control), after name resolution. It is never
	// bypassed: requests go through no proxy. The zero Policy refuses
	// loopback, private, link-local and metadata addresses.
	Policy netguard.Policy
	// Metrics, when set, records attempts.
	Metrics *Metrics
	// Logger receives debug and warning logs; nil discards them.
	Logger *slog.Logger
	// Now is the clock of webhook-timestamp and of Retry-After dates;
	// nil means time.Now.
	Now func() time.Time
	// MaxIdleConnsPerHost is the keep-alive pool size per host; 0 means
	// DefaultMaxIdleConnsPerHost.
	MaxIdleConnsPerHost int
	// UserAgent is the User-Agent header; empty means DefaultUserAgent.
	UserAgent string
}

// WithDefaults returns the config with zero values replaced by defaults.
func (c WebhookConfig) WithDefaults() WebhookConfig {
	c.Logger = cmp.Or(c.Logger, slog.New(slog.DiscardHandler))
	if c.Now == nil {
		c.Now = time.Now
	}
	c.MaxIdleConnsPerHost = cmp.Or(c.MaxIdleConnsPerHost, DefaultMaxIdleConnsPerHost)
	c.UserAgent = cmp.Or(c.UserAgent, DefaultUserAgent)
	return c
}

func (c WebhookConfig) validate() error {
	if c.MaxIdleConnsPerHost < 0 {
		return fmt.Errorf("deliver: MaxIdleConnsPerHost %d is negative", c.MaxIdleConnsPerHost)
	}
	for _, p := range c.Policy.Allow {
		if !p.IsValid() {
			return fmt.Errorf("deliver: Policy.Allow holds an invalid prefix %v", p)
		}
	}
	if !validHeaderValue(c.UserAgent) {
		return fmt.Errorf("deliver: UserAgent %q is not a valid header value", c.UserAgent)
	}
	return nil
}

// Webhook delivers events to webhook destinations by HTTP POST, signed per
// the Standard Webhooks specification and carrying the event's attributes as
// CloudEvents binary-mode headers. It keeps one keep-alive connection pool
// per host. It is safe for concurrent use.
//
// Classification of an attempt:
//   - 2xx: Delivered.
//   - a status in Request.NonRetryable (410 when that is empty): Permanent.
//   - 3xx: Permanent; redirects are not followed (ErrRedirect), because the
//     destination's URL is what was configured and checked.
//   - any other status (408, 429, 5xx and the other 4xx): Retryable. Other 4xx
//     are retried like Svix does: a receiver's 400 or 401 is often a deploy or
//     a key rotation on its side, and the retry policy bounds the cost; list
//     the codes that must not be retried in the pipeline's
//     non_retryable_status_codes.
//   - Retry-After (delay seconds or an HTTP date) on any non-2xx answer sets
//     Result.RetryAfter, capped at MaxRetryAfter.
//   - connection errors and timeouts: Retryable.
//   - an address refused by the SSRF guard (netguard.ErrBlocked): Permanent,
//     with the guard's reason as Err.
type Webhook struct {
	cfg       WebhookConfig
	transport *http.Transport
	client    *http.Client
}

// NewWebhook returns a Webhook. Call Close when done with it.
func NewWebhook(cfg WebhookConfig) (*Webhook, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	dialer := &net.Dialer{
		Timeout:   30 * time.Second, // the request's context usually ends it first
		KeepAlive: 30 * time.Second,
		Control:   cfg.Policy.Control,
	}
	transport := &http.Transport{
		// Never a proxy: the SSRF guard must see the address connected to.
		Proxy:                 nil,
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          0, // no global limit; per host below
		MaxIdleConnsPerHost:   cfg.MaxIdleConnsPerHost,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: 1 * time.Second,
		TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
	}
	return &Webhook{
		cfg:       cfg,
		transport: transport,
		client: &http.Client{
			Transport: transport,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
	}, nil
}

// Close closes the idle keep-alive connections. Requests under way are not
// interrupted; the Webhook stays usable.
func (w *Webhook) Close() { w.transport.CloseIdleConnections() }

// Deliver POSTs the event to the request's webhook destination and
// classifies the answer. It honours ctx: its end ends the attempt as
// Retryable.
func (w *Webhook) Deliver(ctx context.Context, req *Request) Result {
	if req == nil {
		return Result{Outcome: Permanent, Err: fmt.Errorf("%w: nil request", ErrInvalidRequest)}
	}
	res := w.deliver(ctx, req)
	w.cfg.Metrics.attempt(req.PipelineID, req.Destination.GetName(), res)
	return res
}

func (w *Webhook) deliver(ctx context.Context, req *Request) Result {
	timeout := DefaultWebhookTimeout
	if d := req.Destination.GetWebhook().GetTimeout(); d != nil && d.AsDuration() > 0 {
		timeout = d.AsDuration()
	}
	ctx, cancel := context.WithTimeoutCause(ctx, timeout, fmt.Errorf("%w: no answer within %s", ErrTimeout, timeout))
	defer cancel()
	hreq, err := w.newRequest(ctx, req)
	if err != nil {
		return Result{Outcome: Permanent, Err: err}
	}

	start := time.Now()
	resp, err := w.client.Do(hreq)
	latency := time.Since(start)
	if err != nil {
		return w.failed(ctx, req, err, latency)
	}
	body, readErr := readBody(resp.Body)
	res := w.classify(req, resp, body)
	res.Latency = latency
	if readErr != nil && res.Outcome == Delivered {
		// The answer is in; a body cut short does not change it.
		w.cfg.Logger.Debug("reading webhook response body", "pipeline", req.PipelineID,
			"destination", req.Destination.GetName(), "error", readErr)
	}
	return res
}

// newRequest builds the HTTP request of an attempt.
func (w *Webhook) newRequest(ctx context.Context, req *Request) (*http.Request, error) {
	if req.Event == nil {
		return nil, fmt.Errorf("%w: no event", ErrInvalidRequest)
	}
	wh := req.Destination.GetWebhook()
	if wh == nil {
		return nil, fmt.Errorf("%w: destination %q is not a webhook", ErrInvalidRequest, req.Destination.GetName())
	}
	ev := req.Event
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, wh.GetUrl(), bytes.NewReader(ev.GetData()))
	if err != nil || (hreq.URL.Scheme != "http" && hreq.URL.Scheme != "https") || hreq.URL.Host == "" {
		return nil, fmt.Errorf("%w: destination %q: url must be an absolute http or https URL", ErrInvalidRequest, req.Destination.GetName())
	}
	ts := w.cfg.Now()
	sig, err := Sign(req.Secrets, ev.GetId(), ts, ev.GetData())
	if err != nil {
		return nil, fmt.Errorf("%w: signing: %w", ErrInvalidRequest, err)
	}
	h := hreq.Header
	for k, v := range wh.GetHeaders() {
		if reservedHeader(k) {
			w.cfg.Logger.Debug("dropping a custom webhook header that would replace one Switchyard sets",
				"pipeline", req.PipelineID, "destination", req.Destination.GetName(), "header", k)
			continue
		}
		if !validHeaderName(k) || !validHeaderValue(v) {
			return nil, fmt.Errorf("%w: custom header %q is not a valid HTTP header", ErrInvalidRequest, k)
		}
		h.Set(k, v)
	}
	h.Set("User-Agent", w.cfg.UserAgent)
	h.Set("Content-Type", cmp.Or(ev.GetDataContentType(), DefaultContentType))
	h.Set("Webhook-Id", ev.GetId())
	h.Set("Webhook-Timestamp", strconv.FormatInt(ts.Unix(), 10))
	h.Set("Webhook-Signature", sig)
	setCloudEventHeaders(h, ev)
	if req.Traceparent != "" && validHeaderValue(req.Traceparent) {
		h.Set("Traceparent", req.Traceparent)
	}
	return hreq, nil
}

// failed classifies an attempt that got no answer.
func (w *Webhook) failed(ctx context.Context, req *Request, err error, latency time.Duration) Result {
	var blocked *netguard.BlockedError
	if errors.As(err, &blocked) {
		w.cfg.Logger.Warn("webhook address refused by the SSRF guard", "pipeline", req.PipelineID,
			"destination", req.Destination.GetName(), "reason", blocked.Reason, "address", blocked.IP.String())
		return Result{Outcome: Permanent, Latency: latency, Err: blocked}
	}
	// Drop the url.Error wrapper: the URL may carry credentials of the
	// receiver in its query, and Err ends up in the ledger.
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err
	}
	if ctx.Err() != nil {
		// Our timeout, or the caller's context.
		err = context.Cause(ctx)
	}
	return Result{Outcome: Retryable, Latency: latency, Err: fmt.Errorf("webhook request: %w", err)}
}

// classify turns an answer into a Result.
func (w *Webhook) classify(req *Request, resp *http.Response, body []byte) Result {
	code := resp.StatusCode
	res := Result{StatusCode: code}
	if code >= 200 && code < 300 {
		res.Outcome = Delivered
		return res
	}
	res.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), w.cfg.Now())
	herr := &HTTPError{StatusCode: code, Body: body}
	res.Err = herr
	switch {
	case nonRetryable(req.NonRetryable, code):
		res.Outcome = Permanent
	case code >= 300 && code < 400:
		herr.Location = resp.Header.Get("Location")
		res.Outcome = Permanent
	default:
		res.Outcome = Retryable
	}
	return res
}

// nonRetryable reports whether code is in codes, or is 410 when codes is
// empty.
func nonRetryable(codes []uint32, code int) bool {
	if len(codes) == 0 {
		return code == http.StatusGone
	}
	for _, c := range codes {
		if int64(c) == int64(code) {
			return true
		}
	}
	return false
}

// readBody reads the start of a response body, drains a bounded amount more
// so the connection can be reused, and closes it.
func readBody(rc io.ReadCloser) ([]byte, error) {
	defer rc.Close()
	body, err := io.ReadAll(io.LimitReader(rc, maxResponseBody))
	if err != nil {
		return body, fmt.Errorf("reading response body: %w", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(rc, maxDrain))
	return body, nil
}

// parseRetryAfter reads a Retry-After value, delay seconds or an HTTP date,
// as a delay from now; 0 when absent, malformed or in the past; at most
// MaxRetryAfter.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if secs, err := strconv.ParseUint(v, 10, 64); err == nil {
		if secs > uint64(MaxRetryAfter/time.Second) {
			return MaxRetryAfter
		}
		d = time.Duration(secs) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), MaxRetryAfter)
}

// reservedHeader reports whether a custom header would replace one
// Switchyard sets or one that frames the request: webhook-*, ce-*,
// Content-Type, Traceparent and the like. User-Agent may be replaced.
func reservedHeader(name string) bool {
	n := strings.ToLower(name)
	if strings.HasPrefix(n, "webhook-") || strings.HasPrefix(n, "ce-") {
		return true
	}
	switch n {
	case "content-type", "content-length", "content-encoding", "transfer-encoding", "connection",
		"host", "keep-alive", "te", "trailer", "upgrade", "expect", "proxy-connection",
		"traceparent", "tracestate":
		return true
	}
	return false
}

// validHeaderName reports whether s is an HTTP token (RFC 9110).
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// validHeaderValue reports whether s may be sent as a header value: no
// control characters other than tab.
func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// setCloudEventHeaders sets the CloudEvents HTTP binding's binary-mode
// headers of ev (the content type is set by the caller).
func setCloudEventHeaders(h http.Header, ev *v1.Event) {
	set := func(name, v string) {
		if v != "" {
			h.Set(name, ceEncode(v))
		}
	}
	set("Ce-Specversion", "1.0")
	set("Ce-Id", ev.GetId())
	set("Ce-Source", ev.GetSource())
	set("Ce-Type", ev.GetType())
	set("Ce-Subject", ev.GetSubject())
	if t := ev.GetTime(); t != nil {
		set("Ce-Time", t.AsTime().UTC().Format(time.RFC3339Nano))
	}
	set("Ce-Dataschema", ev.GetDataSchema())
	for k, v := range ev.GetExtensions() {
		if k != "" && validHeaderName(k) {
			set("Ce-"+k, v)
		}
	}
}

// ceEncode percent-encodes a CloudEvents attribute value for an HTTP header,
// per the HTTP protocol binding: space, '"', '%' and every byte outside
// printable ASCII become %XX (of the UTF-8 encoding).
func ceEncode(v string) string {
	clean := true
	for i := 0; i < len(v); i++ {
		if c := v[i]; c <= 0x20 || c >= 0x7f || c == '"' || c == '%' {
			clean = false
			break
		}
	}
	if clean {
		return v
	}
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(v) + 16)
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c <= 0x20 || c >= 0x7f || c == '"' || c == '%' {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&0xf])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}
