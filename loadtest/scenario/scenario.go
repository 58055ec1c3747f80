// Package scenario runs the load-test scenarios against a harness: each
// offers open-loop load through the SDK, checks what the sink received,
// and returns a report.Scenario.
//
//   - ingest: publish only; sustained SDK ingest capacity against raw
//     franz-go produce and consume of the same records; ack latency at a
//     fraction of that capacity.
//   - e2e: one KEY-ordered pipeline to a webhook; delivery capacity
//     against a raw Go HTTP client posting the same bodies; end-to-end
//     latency, loss, duplicates and order at a fraction of the measured
//     capacity.
//   - failing: a sink answering a share of requests with 5xx or by
//     timing out; retries through the delay tiers and dead letters; every
//     event must end delivered or dead-lettered after failing every
//     attempt.
//   - fanout: one topic, several pipelines, each receiving everything.
//   - nodekill: a second data-plane node is killed with SIGKILL mid-run
//     and restarted; nothing may be lost, duplicates are counted.
package scenario

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/switchyard-dev/switchyard/loadtest/harness"
	"github.com/switchyard-dev/switchyard/loadtest/procstat"
	"github.com/switchyard-dev/switchyard/loadtest/report"
	"github.com/switchyard-dev/switchyard/loadtest/sink"
)

// Names of the scenarios, in the order "all" runs them.
const (
	Ingest   = "ingest"
	E2E      = "e2e"
	Failing  = "failing"
	FanOut   = "fanout"
	NodeKill = "nodekill"
)

// All lists every scenario in the order they run.
var All = []string{Ingest, E2E, Failing, FanOut, NodeKill}

// CI is the short set continuous integration runs.
var CI = []string{E2E, Failing}

// Expand turns a comma-separated list of scenario names, "all" or "ci"
// into the scenarios to run.
func Expand(list string) ([]string, error) {
	var out []string
	for name := range strings.SplitSeq(list, ",") {
		switch name = strings.TrimSpace(name); name {
		case "all":
			out = append(out, All...)
		case "ci":
			out = append(out, CI...)
		case "":
		default:
			if !slices.Contains(All, name) {
				return nil, fmt.Errorf("unknown scenario %q (want one of %s, all or ci)", name, strings.Join(All, ", "))
			}
			out = append(out, name)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no scenario in %q", list)
	}
	return out, nil
}

// Options shape every scenario of a run.
type Options struct {
	// Rate is the open-loop arrival rate in events/s. 0: Fraction of the
	// capacity measured earlier in the run, or DefaultRate before any.
	Rate float64
	// Fraction of the measured capacity the open-loop phases run at when
	// Rate is 0; default 0.5.
	Fraction float64
	// DefaultRate is the rate used when neither Rate nor a measured
	// capacity is known; default 200.
	DefaultRate float64
	// Duration and Ramp shape each open-loop phase; default 30 s, no ramp.
	Duration time.Duration
	Ramp     time.Duration
	// Events caps the events of each open-loop phase; 0 means no cap.
	Events int64
	// CapacityEvents is the number of events of each closed-loop
	// measurement; default 5000.
	CapacityEvents int
	// CapacityTime is the least time the ingest scenario's closed-loop
	// measurement lasts, so that it measures a sustained rate rather than
	// a burst into buffers; default 10 s.
	CapacityTime time.Duration
	// PayloadBytes is the size of each event's payload; default 256.
	PayloadBytes int
	// Keys is the number of partition keys; default 64.
	Keys int
	// Partitions of every topic; default 4.
	Partitions uint32
	// Concurrency is each webhook destination's max in flight and the raw
	// HTTP baseline's concurrency; default 32.
	Concurrency int
	// ErrorPercent and TimeoutPercent are the failing sink's shares of
	// 503 answers and of requests held until the sender times out;
	// defaults 5 and 1.
	ErrorPercent, TimeoutPercent float64
	// FanOut is the number of pipelines of the fanout scenario; default 4.
	FanOut int
	// DrainTimeout bounds the wait, after the last publish, for every
	// event to be delivered or dead-lettered; default 2 minutes.
	DrainTimeout time.Duration
	// Progress receives a line per ProgressEvery (default 5 s) during
	// open-loop phases; nil prints nothing.
	Progress      io.Writer
	ProgressEvery time.Duration
}

func (o Options) withDefaults() Options {
	o.Fraction = cmp.Or(o.Fraction, 0.5)
	o.DefaultRate = cmp.Or(o.DefaultRate, 200)
	o.Duration = cmp.Or(o.Duration, 30*time.Second)
	o.CapacityEvents = cmp.Or(o.CapacityEvents, 5000)
	o.CapacityTime = cmp.Or(o.CapacityTime, 10*time.Second)
	o.PayloadBytes = cmp.Or(o.PayloadBytes, 256)
	o.Keys = cmp.Or(o.Keys, 64)
	o.Partitions = cmp.Or(o.Partitions, 4)
	o.Concurrency = cmp.Or(o.Concurrency, 32)
	if o.ErrorPercent == 0 && o.TimeoutPercent == 0 {
		o.ErrorPercent, o.TimeoutPercent = 10, 5
	}
	o.FanOut = cmp.Or(o.FanOut, 4)
	o.DrainTimeout = cmp.Or(o.DrainTimeout, 2*time.Minute)
	o.ProgressEvery = cmp.Or(o.ProgressEvery, 5*time.Second)
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	return o
}

// Runner runs scenarios one after the other on one harness and one sink,
// carrying the capacity measured by one scenario to the next.
type Runner struct {
	h    *harness.Harness
	sink *sink.Sink
	opts Options
	run  string

	mu          sync.Mutex
	ingestCap   float64 // SDK ingest capacity, events/s; 0 until measured
	deliveryCap float64 // webhook delivery capacity, events/s; 0 until measured
	e2eCap      float64 // min(ingest, delivery) capacity; 0 until measured
}

// NewRunner returns a runner of scenarios on h, delivering to s.
func NewRunner(h *harness.Harness, s *sink.Sink, opts Options) *Runner {
	return &Runner{h: h, sink: s, opts: opts.withDefaults(), run: time.Now().UTC().Format("150405")}
}

// Options returns the options in effect, defaults filled in.
func (r *Runner) Options() Options { return r.opts }

// Run runs the scenario called name. An error means the scenario could
// not run; checks that failed are in the result's Failures.
func (r *Runner) Run(ctx context.Context, name string) (report.Scenario, error) {
	var sc report.Scenario
	var err error
	switch name {
	case Ingest:
		sc, err = r.ingest(ctx)
	case E2E:
		sc, err = r.e2e(ctx)
	case Failing:
		sc, err = r.failing(ctx)
	case FanOut:
		sc, err = r.fanout(ctx)
	case NodeKill:
		sc, err = r.nodekill(ctx)
	default:
		return sc, fmt.Errorf("unknown scenario %q", name)
	}
	sc.Name = name
	if err != nil {
		return sc, fmt.Errorf("scenario %s: %w", name, err)
	}
	return sc, nil
}

// rate returns the open-loop rate: the fixed one, or the fraction of the
// capacity (divided by fanout for scenarios that deliver each event
// several times), or the default.
func (r *Runner) rate(fanout int) (float64, string) {
	if r.opts.Rate > 0 {
		return r.opts.Rate, "fixed by --rate"
	}
	r.mu.Lock()
	capacity := r.e2eCap
	r.mu.Unlock()
	if capacity > 0 {
		v := r.opts.Fraction * capacity / float64(fanout)
		how := fmt.Sprintf("%.0f%% of the end-to-end capacity measured in this run, %.0f events/s", 100*r.opts.Fraction, capacity)
		if fanout > 1 {
			how += fmt.Sprintf(", divided by the %d pipelines", fanout)
		}
		return v, how
	}
	return r.opts.DefaultRate, "default (no capacity measured yet)"
}

// sampler watches the processes of the harness and this one.
func (r *Runner) sampler() *procstat.Sampler {
	s := procstat.NewSampler(500 * time.Millisecond)
	s.Watch("load generator + sink", os.Getpid)
	s.Watch("controlplane", r.h.ControlPlane.PID)
	for _, n := range r.h.Nodes {
		s.Watch(n.Name(), n.PID)
	}
	if pid := r.h.BrokerPID; pid > 0 {
		s.Watch("kafka broker (JVM)", func() int { return pid })
	}
	return s
}

// name makes a unique slug for this run's topics, pipelines and routes.
func (r *Runner) name(base string) string { return base + "-" + r.run }
