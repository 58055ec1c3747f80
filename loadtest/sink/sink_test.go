package sink_test

import (
	"bytes"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/loadtest/sink"
)

// deliver posts one event to the route as a data-plane node would and
// returns the status code.
func deliver(t *testing.T, r *sink.Route, id, key string, seq int64, intended time.Time) int {
	t.Helper()
	body := sink.Payload{Key: key, Seq: seq, Intended: intended.UnixNano()}.Marshal(64)
	req, err := http.NewRequest(http.MethodPost, r.URL(), bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Webhook-Id", id)
	req.Header.Set("Ce-Id", id)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	return res.StatusCode
}

func newSink(t *testing.T) *sink.Sink {
	t.Helper()
	s, err := sink.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// A known delivery sequence gives known counts: lost, duplicates,
// out-of-order, unexpected and dead letters.
func TestTallyFromKnownSequence(t *testing.T) {
	t.Parallel()
	s := newSink(t)
	r, err := s.Route("p1", sink.Faults{})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now().Add(-20 * time.Millisecond)
	// Key a: seq 0, 2, 1 (1 is out of order), 2 again (a duplicate; not
	// counted as out of order).
	// Key b: seq 0, 1 in order; 1 delivered three times.
	// e9 was never published (unexpected); e5 never arrives (lost unless
	// dead-lettered); e6 never arrives and is dead-lettered.
	for _, d := range []struct {
		id, key string
		seq     int64
	}{
		{"e0", "a", 0}, {"e2", "a", 2}, {"e1", "a", 1}, {"e2", "a", 2},
		{"e3", "b", 0}, {"e4", "b", 1}, {"e4", "b", 1}, {"e4", "b", 1},
		{"e9", "c", 0},
	} {
		if code := deliver(t, r, d.id, d.key, d.seq, at); code != http.StatusNoContent {
			t.Fatalf("delivery of %s: status %d", d.id, code)
		}
	}
	expected := []string{"e0", "e1", "e2", "e3", "e4", "e5", "e6"}
	got := r.Tally(expected, map[string]bool{"e6": true})
	want := sink.Tally{
		Expected: 7, Delivered: 5, DeadLettered: 1, Lost: 1, Duplicates: 3, OutOfOrder: 1,
		Unexpected: 1, Requests: 9,
	}
	if got != want {
		t.Fatalf("tally\n got %+v\nwant %+v", got, want)
	}
	// A dead letter of an event that was delivered is flagged.
	if got := r.Tally(expected, map[string]bool{"e0": true}); got.DeadLetteredAfterDelivery != 1 || got.Lost != 2 {
		t.Fatalf("dead letter after delivery: %+v", got)
	}
	if n := r.Accepted(); n != 9 {
		t.Fatalf("Accepted = %d, want 9", n)
	}
	// Latency is measured once per event, from the payload's intended time.
	lat := r.Latency()
	if lat.Count != 6 {
		t.Fatalf("latency count %d, want 6 first deliveries", lat.Count)
	}
	if lat.P50Ms < 20 {
		t.Fatalf("p50 %.2f ms, want at least the 20 ms since the intended time", lat.P50Ms)
	}
}

func TestInjectedErrorsNeverCountAsDelivered(t *testing.T) {
	t.Parallel()
	s := newSink(t)
	r, err := s.Route("failing", sink.Faults{ErrorPercent: 100})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if code := deliver(t, r, fmt.Sprint("e", i), "k", int64(i), time.Now()); code != http.StatusServiceUnavailable {
			t.Fatalf("status %d, want 503", code)
		}
	}
	got := r.Tally([]string{"e0", "e1", "e2", "e3", "e4"}, map[string]bool{"e0": true})
	if got.Delivered != 0 || got.DeadLettered != 1 || got.Lost != 4 || got.InjectedErrors != 5 {
		t.Fatalf("tally %+v", got)
	}
	if r.Attempts("e3") != 1 {
		t.Fatalf("attempts of e3: %d", r.Attempts("e3"))
	}
}

func TestInjectedTimeoutHoldsUntilSenderGivesUp(t *testing.T) {
	t.Parallel()
	s := newSink(t)
	r, err := s.Route("slow", sink.Faults{TimeoutPercent: 100, Hold: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Timeout: 100 * time.Millisecond}
	body := sink.Payload{Key: "k", Intended: time.Now().UnixNano()}.Marshal(0)
	req, _ := http.NewRequest(http.MethodPost, r.URL(), bytes.NewReader(body))
	req.Header.Set("Webhook-Id", "e0")
	start := time.Now()
	if _, err := hc.Do(req); err == nil {
		t.Fatal("request succeeded; want a client timeout")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("client waited %v", d)
	}
	deadline := time.Now().Add(2 * time.Second)
	for r.Tally([]string{"e0"}, nil).InjectedTimeouts != 1 {
		if time.Now().After(deadline) {
			t.Fatal("timeout not counted")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := r.Tally([]string{"e0"}, nil); got.Delivered != 0 || got.Lost != 1 {
		t.Fatalf("tally %+v", got)
	}
}

func TestPayloadPadding(t *testing.T) {
	t.Parallel()
	p := sink.Payload{Key: "k7", Seq: 42, Intended: 1_700_000_000_000_000_000}
	for _, size := range []int{0, 10, 64, 1024} {
		b := p.Marshal(size)
		if len(b) < size {
			t.Errorf("Marshal(%d) is %d bytes", size, len(b))
		}
		if size >= 64 && len(b) != size {
			t.Errorf("Marshal(%d) is %d bytes, want exactly %d", size, len(b), size)
		}
		got, err := sink.ParsePayload(b)
		if err != nil {
			t.Fatal(err)
		}
		if got.Key != p.Key || got.Seq != p.Seq || got.Intended != p.Intended {
			t.Fatalf("round trip: %+v", got)
		}
	}
	if _, err := sink.ParsePayload([]byte(`{"s":1}`)); err == nil {
		t.Fatal("payload without key parsed")
	}
}

func TestUnknownRouteIs404(t *testing.T) {
	t.Parallel()
	s := newSink(t)
	res, err := http.Post(s.URL()+"/r/nope", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	if res.StatusCode != http.StatusNotFound {
		t.Fatalf("status %d", res.StatusCode)
	}
	if _, err := s.Route("x", sink.Faults{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Route("x", sink.Faults{}); err == nil {
		t.Fatal("duplicate route accepted")
	}
}
