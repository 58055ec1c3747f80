package deliver_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/switchyard-dev/switchyard/dataplane/deliver"
)

// benchServer is a loopback receiver that reads the body and answers 204.
func benchServer(b *testing.B) *httptest.Server {
	b.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	b.Cleanup(srv.Close)
	return srv
}

func benchBody() []byte {
	body := bytes.Repeat([]byte(`{"k":"abcdefghij"},`), 1024/19+1)
	return body[:1024]
}

// BenchmarkWebhookDeliver measures one signed webhook delivery over a
// keep-alive connection to a loopback server. Compare with
// BenchmarkRawHTTPPost, the same POST with net/http alone.
func BenchmarkWebhookDeliver(b *testing.B) {
	srv := benchServer(b)
	w := newWebhook(b, deliver.WebhookConfig{Policy: loopback})
	req := webhookReq(webhookDest("hook", srv.URL), newSecret(b))
	req.Event.Data = benchBody()
	ctx := context.Background()
	b.SetBytes(int64(len(req.Event.Data)))
	b.ReportAllocs()
	for b.Loop() {
		if res := w.Deliver(ctx, req); res.Outcome != deliver.Delivered {
			b.Fatal(res.Err)
		}
	}
}

// BenchmarkRouterDeliver is BenchmarkWebhookDeliver through a Router (limits,
// breaker, metrics).
func BenchmarkRouterDeliver(b *testing.B) {
	srv := benchServer(b)
	m := deliver.NewMetrics(nil)
	w := newWebhook(b, deliver.WebhookConfig{Policy: loopback, Metrics: m})
	r := deliver.NewRouter(w, nil, m)
	b.Cleanup(r.Close)
	req := webhookReq(webhookDest("hook", srv.URL), newSecret(b))
	req.Event.Data = benchBody()
	ctx := context.Background()
	b.SetBytes(int64(len(req.Event.Data)))
	b.ReportAllocs()
	for b.Loop() {
		if res := r.Deliver(ctx, req); res.Outcome != deliver.Delivered {
			b.Fatal(res.Err)
		}
	}
}

// BenchmarkRawHTTPPost is the baseline: a plain net/http POST of the same
// body to the same kind of server, keep-alive, no signing or headers.
func BenchmarkRawHTTPPost(b *testing.B) {
	srv := benchServer(b)
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	b.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr}
	body := benchBody()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		resp, err := client.Post(srv.URL, "application/json", bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			b.Fatal(resp.Status)
		}
	}
}
