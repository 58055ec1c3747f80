// Package sink is a webhook receiver for load tests. It records every event
// it is sent, per route (one route per pipeline), and counts from what it
// saw what a user cares about: events lost (acknowledged by ingest, never
// delivered), delivered more than once, delivered out of order for their
// key, and the end-to-end latency from intended publish to receipt. A route
// can be told to fail a share of requests with 5xx answers or by hanging
// until the sender times out, to exercise retries and dead letters.
package sink

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchyard-dev/switchyard/loadtest/latency"
	"github.com/switchyard-dev/switchyard/sdk/webhook"
)

// Faults is the share of requests a route fails on purpose. Each request
// draws once: ErrorPercent of them get a 503, TimeoutPercent more hang
// until the sender gives up (or Hold passes) and then get a 503. No failed
// request counts as a delivery.
type Faults struct {
	ErrorPercent   float64
	TimeoutPercent float64
	// Hold bounds how long a timed-out request hangs; 0 means 30 s.
	Hold time.Duration
}

func (f Faults) any() bool { return f.ErrorPercent > 0 || f.TimeoutPercent > 0 }

// Sink is an HTTP server with named routes at /r/<name>.
type Sink struct {
	srv *http.Server
	ln  net.Listener
	url string

	mu     sync.RWMutex
	routes map[string]*Route
}

// Start serves a sink on addr (e.g. "127.0.0.1:0").
func Start(addr string) (*Sink, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("sink: %w", err)
	}
	s := &Sink{ln: ln, url: "http://" + ln.Addr().String(), routes: make(map[string]*Route)}
	s.srv = &http.Server{Handler: http.HandlerFunc(s.serve), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// URL is the sink's base URL.
func (s *Sink) URL() string { return s.url }

// Close stops the server, cutting requests still hanging.
func (s *Sink) Close() error {
	return s.srv.Close()
}

// Route returns a new route called name (unique per sink) that fails
// requests per faults and, when secrets are given, counts the requests
// whose Standard Webhooks signature does not verify with any of them.
func (s *Sink) Route(name string, faults Faults, secrets ...string) (*Route, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.routes[name]; ok {
		return nil, fmt.Errorf("sink: route %q exists", name)
	}
	if faults.Hold == 0 {
		faults.Hold = 30 * time.Second
	}
	r := newRoute(name, s.url+"/r/"+name, faults, secrets)
	s.routes[name] = r
	return r, nil
}

// Remove forgets a route; its URL answers 404 afterwards.
func (s *Sink) Remove(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.routes, name)
}

func (s *Sink) serve(w http.ResponseWriter, req *http.Request) {
	name, ok := strings.CutPrefix(req.URL.Path, "/r/")
	s.mu.RLock()
	r := s.routes[name]
	s.mu.RUnlock()
	if !ok || r == nil || req.Method != http.MethodPost {
		http.NotFound(w, req)
		return
	}
	r.serve(w, req)
}

// Route records what one pipeline delivers.
type Route struct {
	name    string
	url     string
	faults  Faults
	secrets []string
	e2e     *latency.Recorder

	requests  atomic.Int64
	errors    atomic.Int64 // 5xx answers given on purpose
	timeouts  atomic.Int64 // requests held until the sender gave up
	badSig    atomic.Int64
	malformed atomic.Int64

	mu         sync.Mutex
	attempts   map[string]int32 // requests per event id, whatever the answer
	accepted   map[string]int32 // 2xx answers per event id
	maxSeq     map[string]int64 // highest Seq accepted per key
	outOfOrder int64
	first      time.Time // first and last accepted delivery
	last       time.Time
}

func newRoute(name, url string, faults Faults, secrets []string) *Route {
	return &Route{
		name: name, url: url, faults: faults, secrets: secrets, e2e: latency.NewRecorder(),
		attempts: make(map[string]int32), accepted: make(map[string]int32), maxSeq: make(map[string]int64),
	}
}

// Name is the route's name.
func (r *Route) Name() string { return r.name }

// URL is where the route receives webhooks.
func (r *Route) URL() string { return r.url }

// Latency is the end-to-end latency of first deliveries: from the intended
// publish time in the payload to receipt.
func (r *Route) Latency() latency.Summary { return r.e2e.Summary() }

// Accepted is the number of deliveries accepted so far, duplicates
// included.
func (r *Route) Accepted() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var n int64
	for _, c := range r.accepted {
		n += int64(c)
	}
	return n
}

// Window returns the times of the first and last accepted deliveries,
// warm-up events left out.
func (r *Route) Window() (first, last time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.first, r.last
}

func (r *Route) serve(w http.ResponseWriter, req *http.Request) {
	r.requests.Add(1)
	body, err := io.ReadAll(req.Body)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	now := time.Now()
	id := req.Header.Get("Webhook-Id")
	if id == "" {
		id = req.Header.Get("Ce-Id")
	}
	r.mu.Lock()
	r.attempts[id]++
	r.mu.Unlock()

	if r.faults.any() {
		draw := rand.Float64() * 100
		switch {
		case draw < r.faults.ErrorPercent:
			r.errors.Add(1)
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		case draw < r.faults.ErrorPercent+r.faults.TimeoutPercent:
			r.timeouts.Add(1)
			r.hold(req.Context())
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
	}
	if len(r.secrets) > 0 {
		if err := webhook.Verify(r.secrets, req.Header, body, now, 5*time.Minute); err != nil {
			r.badSig.Add(1)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
	}
	p, perr := ParsePayload(body)
	if perr != nil {
		r.malformed.Add(1)
	}
	r.mu.Lock()
	r.accepted[id]++
	firstTime := r.accepted[id] == 1
	if perr == nil && !p.Warmup {
		if r.first.IsZero() {
			r.first = now
		}
		r.last = now
	}
	if firstTime && perr == nil && !p.Warmup {
		if prev, ok := r.maxSeq[p.Key]; ok && p.Seq < prev {
			r.outOfOrder++
		} else {
			r.maxSeq[p.Key] = p.Seq
		}
	}
	r.mu.Unlock()
	if firstTime && perr == nil && !p.Warmup {
		r.e2e.Record(now.Sub(p.IntendedTime()))
	}
	w.WriteHeader(http.StatusNoContent)
}

// hold waits until the sender gives up on the request, or Hold passes.
func (r *Route) hold(ctx context.Context) {
	t := time.NewTimer(r.faults.Hold)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// Tally is the accounting of one route against what was published.
type Tally struct {
	// Expected is the number of events acknowledged by ingest that this
	// route should receive.
	Expected int64 `json:"expected"`
	// Delivered is the number of expected events accepted at least once.
	Delivered int64 `json:"delivered"`
	// DeadLettered is the number of expected events dead-lettered and
	// never accepted.
	DeadLettered int64 `json:"dead_lettered"`
	// Lost is the number of expected events neither delivered nor
	// dead-lettered.
	Lost int64 `json:"lost"`
	// Duplicates counts accepted deliveries beyond the first of an event.
	Duplicates int64 `json:"duplicates"`
	// OutOfOrder counts first deliveries that came after a later event of
	// the same key.
	OutOfOrder int64 `json:"out_of_order"`
	// Unexpected counts events accepted that were not expected (e.g. a
	// publish that timed out at the client but was written).
	Unexpected int64 `json:"unexpected"`
	// DeadLetteredAfterDelivery counts dead letters of events the route
	// had accepted: a dead letter no failure explains.
	DeadLetteredAfterDelivery int64 `json:"dead_lettered_after_delivery"`
	// Requests, InjectedErrors and InjectedTimeouts count every request
	// and those failed on purpose.
	Requests         int64 `json:"requests"`
	InjectedErrors   int64 `json:"injected_errors"`
	InjectedTimeouts int64 `json:"injected_timeouts"`
	// BadSignatures and Malformed count requests that failed signature
	// verification or whose payload did not parse.
	BadSignatures int64 `json:"bad_signatures"`
	Malformed     int64 `json:"malformed"`
}

// Tally counts the route's deliveries against expected, the ids
// acknowledged by ingest, and deadLettered, the ids found in the
// pipeline's dead-letter topic (nil when none are read).
func (r *Route) Tally(expected []string, deadLettered map[string]bool) Tally {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := Tally{
		Expected: int64(len(expected)), OutOfOrder: r.outOfOrder,
		Requests: r.requests.Load(), InjectedErrors: r.errors.Load(), InjectedTimeouts: r.timeouts.Load(),
		BadSignatures: r.badSig.Load(), Malformed: r.malformed.Load(),
	}
	want := make(map[string]struct{}, len(expected))
	for _, id := range expected {
		want[id] = struct{}{}
		switch {
		case r.accepted[id] > 0:
			t.Delivered++
			t.Duplicates += int64(r.accepted[id] - 1)
		case deadLettered[id]:
			t.DeadLettered++
		default:
			t.Lost++
		}
	}
	for id, n := range r.accepted {
		if _, ok := want[id]; !ok {
			t.Unexpected++
			t.Duplicates += int64(n - 1)
		}
	}
	for id := range deadLettered {
		if r.accepted[id] > 0 {
			t.DeadLetteredAfterDelivery++
		}
	}
	return t
}

// Attempts returns the number of requests the route got for id, whatever
// the answer.
func (r *Route) Attempts(id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return int(r.attempts[id])
}
