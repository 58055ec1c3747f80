package deliver_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard-dev/switchyard/dataplane/deliver"
	"github.com/switchyard-dev/switchyard/internal/netguard"
)

func TestNewWebhookValidates(t *testing.T) {
	t.Parallel()
	_, err := deliver.NewWebhook(deliver.WebhookConfig{MaxIdleConnsPerHost: -1})
	require.ErrorContains(t, err, "MaxIdleConnsPerHost")
	_, err = deliver.NewWebhook(deliver.WebhookConfig{UserAgent: "bad\r\nX-Injected: 1"})
	require.ErrorContains(t, err, "UserAgent")
}

func TestWebhookClassification(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	w := newWebhook(t, deliver.WebhookConfig{Policy: loopback, Now: clock.Now})

	var redirectTargetHits atomic.Int64
	target := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { redirectTargetHits.Add(1) }))
	t.Cleanup(target.Close)

	status := func(code int, header ...string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			for i := 0; i+1 < len(header); i += 2 {
				w.Header().Set(header[i], header[i+1])
			}
			w.WriteHeader(code)
			fmt.Fprintf(w, "answer %d", code)
		}
	}
	tests := []struct {
		name         string
		handler      http.HandlerFunc
		timeout      time.Duration
		nonRetryable []uint32
		outcome      deliver.Outcome
		status       int
		retryAfter   time.Duration
		errIs        error
		errContains  string
	}{
		{name: "200", handler: status(200), outcome: deliver.Delivered, status: 200},
		{name: "204", handler: status(204), outcome: deliver.Delivered, status: 204},
		{name: "410 default non-retryable", handler: status(410), outcome: deliver.Permanent, status: 410, errContains: "HTTP 410 Gone: answer 410"},
		{name: "410 retryable when the policy names other codes", handler: status(410), nonRetryable: []uint32{400, 422}, outcome: deliver.Retryable, status: 410},
		{name: "422 named non-retryable", handler: status(422), nonRetryable: []uint32{400, 422}, outcome: deliver.Permanent, status: 422},
		{name: "404 retried like Svix", handler: status(404), outcome: deliver.Retryable, status: 404},
		{name: "408", handler: status(408), outcome: deliver.Retryable, status: 408},
		{name: "429 Retry-After seconds", handler: status(429, "Retry-After", "7"), outcome: deliver.Retryable, status: 429, retryAfter: 7 * time.Second},
		{name: "500", handler: status(500), outcome: deliver.Retryable, status: 500, errContains: "HTTP 500 Internal Server Error: answer 500"},
		{
			name:    "503 Retry-After date",
			handler: status(503, "Retry-After", clock.Now().Add(90*time.Second).Format(http.TimeFormat)),
			outcome: deliver.Retryable, status: 503, retryAfter: 90 * time.Second,
		},
		{name: "Retry-After capped", handler: status(503, "Retry-After", "999999999"), outcome: deliver.Retryable, status: 503, retryAfter: 24 * time.Hour},
		{name: "Retry-After in the past", handler: status(503, "Retry-After", clock.Now().Add(-time.Hour).Format(http.TimeFormat)), outcome: deliver.Retryable, status: 503},
		{name: "Retry-After malformed", handler: status(429, "Retry-After", "soon"), outcome: deliver.Retryable, status: 429},
		{
			name: "slow server beyond the timeout",
			handler: func(w http.ResponseWriter, r *http.Request) {
				// Reading the body lets the server notice the client hanging up.
				_, _ = io.Copy(io.Discard, r.Body)
				select {
				case <-r.Context().Done():
				case <-time.After(10 * time.Second):
				}
			},
			timeout: 100 * time.Millisecond,
			outcome: deliver.Retryable, errIs: deliver.ErrTimeout, errContains: "no answer within 100ms",
		},
		{
			name:    "301 not followed",
			handler: status(301, "Location", target.URL+"/moved"),
			outcome: deliver.Permanent, status: 301, errIs: deliver.ErrRedirect, errContains: "redirects are not followed (Location: " + target.URL + "/moved)",
		},
		{name: "307 not followed", handler: status(307, "Location", target.URL), outcome: deliver.Permanent, status: 307, errIs: deliver.ErrRedirect},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(tt.handler)
			t.Cleanup(srv.Close)
			dest := webhookDest("hook", srv.URL)
			if tt.timeout > 0 {
				withTimeout(dest, tt.timeout)
			}
			req := webhookReq(dest, newSecret(t))
			req.NonRetryable = tt.nonRetryable
			res := w.Deliver(context.Background(), req)
			require.Equal(t, tt.outcome, res.Outcome, "%v", res.Err)
			require.Equal(t, tt.status, res.StatusCode)
			require.Equal(t, tt.retryAfter, res.RetryAfter)
			require.Positive(t, res.Latency)
			if tt.outcome == deliver.Delivered {
				require.NoError(t, res.Err)
				return
			}
			require.Error(t, res.Err)
			if tt.errIs != nil {
				require.ErrorIs(t, res.Err, tt.errIs)
			}
			if tt.errContains != "" {
				require.ErrorContains(t, res.Err, tt.errContains)
			}
			if tt.status != 0 {
				var herr *deliver.HTTPError
				require.ErrorAs(t, res.Err, &herr)
				require.Equal(t, tt.status, herr.StatusCode)
			}
		})
	}
	t.Cleanup(func() { require.Zero(t, redirectTargetHits.Load(), "a redirect was followed") })
}

func TestWebhookConnectionErrors(t *testing.T) {
	t.Parallel()
	w := newWebhook(t, deliver.WebhookConfig{Policy: loopback})

	// A port nothing listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	res := w.Deliver(context.Background(), webhookReq(webhookDest("hook", "http://"+addr+"/x"), newSecret(t)))
	require.Equal(t, deliver.Retryable, res.Outcome)
	require.Zero(t, res.StatusCode)
	require.ErrorContains(t, res.Err, "connection refused")
	require.NotContains(t, res.Err.Error(), "/x", "the URL stays out of errors")

	// The caller's context ends during the request.
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	res = w.Deliver(ctx, webhookReq(webhookDest("hook", srv.URL), newSecret(t)))
	require.Equal(t, deliver.Retryable, res.Outcome)
	require.ErrorIs(t, res.Err, context.DeadlineExceeded)
}

func TestWebhookInvalidRequests(t *testing.T) {
	t.Parallel()
	w := newWebhook(t, deliver.WebhookConfig{Policy: loopback})
	srv := newCaptureServer(t, 200)
	ctx := context.Background()

	res := w.Deliver(ctx, webhookReq(webhookDest("hook", srv.URL))) // no secret
	require.Equal(t, deliver.Permanent, res.Outcome)
	require.ErrorIs(t, res.Err, deliver.ErrNoSecret)

	res = w.Deliver(ctx, webhookReq(webhookDest("hook", "ftp://example.com/x"), newSecret(t)))
	require.Equal(t, deliver.Permanent, res.Outcome)
	require.ErrorIs(t, res.Err, deliver.ErrInvalidRequest)

	kafkaReq := webhookReq(kafkaDest("k", "topic"), newSecret(t))
	res = w.Deliver(ctx, kafkaReq)
	require.Equal(t, deliver.Permanent, res.Outcome)
	require.ErrorIs(t, res.Err, deliver.ErrInvalidRequest)

	bad := webhookReq(webhookDest("hook", srv.URL), newSecret(t))
	bad.Destination.GetWebhook().Headers = map[string]string{"X-Bad": "a\nb"}
	res = w.Deliver(ctx, bad)
	require.Equal(t, deliver.Permanent, res.Outcome)
	require.ErrorContains(t, res.Err, `custom header "X-Bad"`)

	require.Zero(t, srv.hits.Load())
}

func TestWebhookHeaders(t *testing.T) {
	t.Parallel()
	srv := newCaptureServer(t, http.StatusOK)
	clock := newFakeClock()
	w := newWebhook(t, deliver.WebhookConfig{Policy: loopback, Now: clock.Now})

	dest := webhookDest("hook", srv.URL)
	dest.GetWebhook().Headers = map[string]string{
		"X-Api-Key":         "k-123",
		"webhook-id":        "forged",
		"Webhook-Signature": "v1,forged",
		"ce-id":             "forged",
		"Ce-Type":           "forged",
		"Content-Type":      "text/forged",
		"Traceparent":       "forged",
	}
	secret := newSecret(t)
	req := webhookReq(dest, secret)
	req.Event.Subject = "order/o-42"
	req.Event.DataSchema = "https://schemas.example.com/order.json"
	req.Event.Source = "/orders/eu west" // a space is percent-encoded
	req.Event.Extensions = map[string]string{"tenantregion": "eu", "note": `50% "off"`}
	req.Traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

	res := w.Deliver(context.Background(), req)
	require.Equal(t, deliver.Delivered, res.Outcome, "%v", res.Err)
	got := srv.last(t)
	h := got.header

	require.Equal(t, req.Event.GetData(), got.body)
	require.Equal(t, "application/json", h.Get("Content-Type"))
	require.Equal(t, "Switchyard-Webhooks/1", h.Get("User-Agent"))
	require.Equal(t, "evt_1", h.Get("webhook-id"))
	require.Equal(t, fmt.Sprint(clock.Now().Unix()), h.Get("webhook-timestamp"))
	require.NoError(t, verifyStandardWebhook(secret, h, got.body, clock.Now()))
	require.Equal(t, []string{"evt_1"}, h.Values("webhook-id"), "a custom header cannot override webhook-id")
	require.Len(t, h.Values("webhook-signature"), 1)
	require.NotContains(t, h.Get("webhook-signature"), "forged")

	require.Equal(t, "1.0", h.Get("ce-specversion"))
	require.Equal(t, []string{"evt_1"}, h.Values("ce-id"))
	require.Equal(t, "/orders/eu%20west", h.Get("ce-source"))
	require.Equal(t, []string{"com.example.order.created"}, h.Values("ce-type"))
	require.Equal(t, "order/o-42", h.Get("ce-subject"))
	require.Equal(t, "2026-12-03T10:04:05.123456789Z", h.Get("ce-time"))
	require.Equal(t, "https://schemas.example.com/order.json", h.Get("ce-dataschema"))
	require.Equal(t, "eu", h.Get("ce-tenantregion"))
	require.Equal(t, "50%25%20%22off%22", h.Get("ce-note"))
	require.Equal(t, req.Traceparent, h.Get("traceparent"))
	require.Equal(t, "k-123", h.Get("X-Api-Key"))

	// Retries keep webhook-id; the timestamp moves with the clock; an
	// explicit content type is sent as is; no traceparent when none given.
	clock.Advance(time.Minute)
	req.Attempt = 2
	req.Traceparent = ""
	req.Event.DataContentType = "application/cloudevents+json; charset=utf-8"
	dest.GetWebhook().Headers = map[string]string{"User-Agent": "custom-agent"}
	res = w.Deliver(context.Background(), req)
	require.Equal(t, deliver.Delivered, res.Outcome, "%v", res.Err)
	h = srv.last(t).header
	require.Equal(t, "evt_1", h.Get("webhook-id"))
	require.Equal(t, fmt.Sprint(clock.Now().Unix()), h.Get("webhook-timestamp"))
	require.Equal(t, "application/cloudevents+json; charset=utf-8", h.Get("Content-Type"))
	require.Empty(t, h.Values("traceparent"))
	require.Equal(t, "Switchyard-Webhooks/1", h.Get("User-Agent"), "custom headers do not replace User-Agent")
}

func TestWebhookCustomUserAgent(t *testing.T) {
	t.Parallel()
	srv := newCaptureServer(t, http.StatusOK)
	w := newWebhook(t, deliver.WebhookConfig{Policy: loopback, UserAgent: "Acme-Hooks/2"})
	res := w.Deliver(context.Background(), webhookReq(webhookDest("hook", srv.URL), newSecret(t)))
	require.Equal(t, deliver.Delivered, res.Outcome, "%v", res.Err)
	require.Equal(t, "Acme-Hooks/2", srv.last(t).header.Get("User-Agent"))
}

func TestWebhookSSRF(t *testing.T) {
	t.Parallel()
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	var hits atomic.Int64
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) })
	srv.Start()
	t.Cleanup(srv.Close)
	_, port, err := net.SplitHostPort(srv.Listener.Addr().String())
	require.NoError(t, err)

	strict := newWebhook(t, deliver.WebhookConfig{}) // the default Policy
	tests := []struct {
		url    string
		reason string
	}{
		{"http://10.0.0.1/x", "address 10.0.0.1 is private: outbound requests to it are not allowed"},
		{"http://169.254.169.254/latest", "address 169.254.169.254 is a cloud metadata endpoint"},
		{"http://127.0.0.1:" + port + "/hook", "address 127.0.0.1 is loopback"},
		// A name is checked after resolution, at dial time.
		{"http://localhost:" + port + "/hook", "is loopback"},
	}
	for _, tt := range tests {
		res := strict.Deliver(context.Background(), webhookReq(withTimeout(webhookDest("hook", tt.url), 2*time.Second), newSecret(t)))
		require.Equal(t, deliver.Permanent, res.Outcome, "%s: %v", tt.url, res.Err)
		require.Zero(t, res.StatusCode)
		require.ErrorIs(t, res.Err, netguard.ErrBlocked, tt.url)
		var be *netguard.BlockedError
		require.True(t, errors.As(res.Err, &be), tt.url)
		require.ErrorContains(t, res.Err, tt.reason)
	}
	require.Zero(t, conns.Load(), "the guard must refuse before connecting")
	require.Zero(t, hits.Load())

	allowing := newWebhook(t, deliver.WebhookConfig{Policy: netguard.Policy{AllowLoopback: true}})
	res := allowing.Deliver(context.Background(), webhookReq(webhookDest("hook", "http://127.0.0.1:"+port+"/hook"), newSecret(t)))
	require.Equal(t, deliver.Delivered, res.Outcome, "%v", res.Err)
	require.EqualValues(t, 1, hits.Load())

	// Allowing loopback does not open private ranges.
	res = allowing.Deliver(context.Background(), webhookReq(webhookDest("hook", "http://10.0.0.1/x"), newSecret(t)))
	require.Equal(t, deliver.Permanent, res.Outcome)
	require.ErrorContains(t, res.Err, "address 10.0.0.1 is private")
}

func TestWebhookReadsBoundedBody(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("x", 200<<10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
		_, _ = w.Write([]byte(big))
	}))
	t.Cleanup(srv.Close)
	w := newWebhook(t, deliver.WebhookConfig{Policy: loopback})
	res := w.Deliver(context.Background(), webhookReq(webhookDest("hook", srv.URL), newSecret(t)))
	require.Equal(t, deliver.Retryable, res.Outcome)
	var herr *deliver.HTTPError
	require.ErrorAs(t, res.Err, &herr)
	require.Len(t, herr.Body, 64<<10)
	require.Less(t, len(res.Err.Error()), 1024, "the message quotes only the start of the body")
}
