package baseline_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/loadtest/baseline"
)

func TestPost(t *testing.T) {
	t.Parallel()
	var got, inFlight, peak atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		time.Sleep(time.Millisecond)
		inFlight.Add(-1)
		if r.Header.Get("Webhook-Id") == "" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		got.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	bodies := make([][]byte, 200)
	for i := range bodies {
		bodies[i] = []byte(`{"x":1}`)
	}
	tp, err := baseline.Post(context.Background(), srv.URL, bodies, 8)
	if err != nil {
		t.Fatal(err)
	}
	if got.Load() != 200 || tp.Events != 200 || tp.PerSecond <= 0 {
		t.Fatalf("posted %d, throughput %+v", got.Load(), tp)
	}
	if peak.Load() > 8 {
		t.Fatalf("%d requests in flight, want at most 8", peak.Load())
	}
}

func TestPostFailsOnErrorAnswers(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer srv.Close()
	if _, err := baseline.Post(context.Background(), srv.URL, [][]byte{[]byte("{}")}, 1); err == nil {
		t.Fatal("Post succeeded against a failing server")
	}
}

func TestNewThroughput(t *testing.T) {
	t.Parallel()
	if tp := baseline.NewThroughput("x", 500, 250*time.Millisecond); tp.PerSecond != 2000 || tp.Seconds != 0.25 {
		t.Fatalf("%+v", tp)
	}
	if tp := baseline.NewThroughput("x", 5, 0); tp.PerSecond != 0 {
		t.Fatalf("%+v", tp)
	}
}
