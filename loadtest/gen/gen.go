// Package gen is an open-loop load generator: it offers events at a
// constant arrival rate (after an optional linear ramp) whatever the system
// under test does, and measures each event's latency from the moment it was
// meant to be sent, so a stalled system shows up as latency instead of as a
// lower offered load (no coordinated omission).
package gen

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync/atomic"
	"time"

	"github.com/switchyard-dev/switchyard/loadtest/latency"
)

// Config is a load shape.
type Config struct {
	// Rate is the target arrival rate in events per second, reached at the
	// end of the ramp.
	Rate float64
	// Duration is how long events are offered, the ramp included.
	Duration time.Duration
	// Ramp is how long the rate takes to grow linearly from 0 to Rate; 0
	// starts at Rate.
	Ramp time.Duration
	// Events caps the number of events offered; 0 means as many as the
	// rate and duration give.
	Events int64
}

func (c Config) validate() error {
	var errs []error
	if !(c.Rate > 0) || math.IsInf(c.Rate, 0) {
		errs = append(errs, fmt.Errorf("rate must be positive, got %v", c.Rate))
	}
	if c.Duration <= 0 {
		errs = append(errs, fmt.Errorf("duration must be positive, got %v", c.Duration))
	}
	if c.Ramp < 0 || c.Ramp > c.Duration {
		errs = append(errs, fmt.Errorf("ramp must be in [0, duration], got %v", c.Ramp))
	}
	if c.Events < 0 {
		errs = append(errs, fmt.Errorf("events must not be negative, got %d", c.Events))
	}
	return errors.Join(errs...)
}

// Schedule is when each event of a Config is due, relative to the start.
type Schedule struct {
	cfg   Config
	total int64
}

// NewSchedule returns the schedule of cfg.
func NewSchedule(cfg Config) (Schedule, error) {
	if err := cfg.validate(); err != nil {
		return Schedule{}, fmt.Errorf("gen: %w", err)
	}
	s := Schedule{cfg: cfg}
	s.total = int64(math.Floor(s.count(cfg.Duration) + 1e-9))
	if cfg.Events > 0 {
		s.total = min(s.total, cfg.Events)
	}
	return s, nil
}

// Total is the number of events the schedule offers.
func (s Schedule) Total() int64 { return s.total }

// count is the number of events due in [0, t).
func (s Schedule) count(t time.Duration) float64 {
	r, ramp, x := s.cfg.Rate, s.cfg.Ramp.Seconds(), t.Seconds()
	if x < ramp {
		return r * x * x / (2 * ramp)
	}
	return r*ramp/2 + r*(x-ramp)
}

// At returns when event i (from 0) is due: the time at which the area under
// the rate curve reaches i.
func (s Schedule) At(i int64) time.Duration {
	r, ramp, n := s.cfg.Rate, s.cfg.Ramp.Seconds(), float64(i)
	var sec float64
	if rampEvents := r * ramp / 2; n < rampEvents {
		sec = math.Sqrt(2 * n * ramp / r)
	} else {
		sec = ramp + (n-rampEvents)/r
	}
	return time.Duration(sec * float64(time.Second))
}

// Shot is one event offered by a Generator.
type Shot struct {
	// Seq numbers the events of a run from 0, in order of intended time.
	Seq int64
	// Intended is when the event was meant to be sent. Its latency is
	// measured from here, not from when fire was actually called.
	Intended time.Time
}

// Generator offers the events of a Schedule and records their outcomes.
type Generator struct {
	sched Schedule
	lat   *latency.Recorder

	start   atomic.Int64 // unix ns of the run's start
	offered atomic.Int64
	acked   atomic.Int64
	failed  atomic.Int64
}

// New returns a generator of cfg.
func New(cfg Config) (*Generator, error) {
	s, err := NewSchedule(cfg)
	if err != nil {
		return nil, err
	}
	return &Generator{sched: s, lat: latency.NewRecorder()}, nil
}

// Schedule returns the generator's schedule.
func (g *Generator) Schedule() Schedule { return g.sched }

// Run calls fire once per event, at its intended time or as soon after as
// it can, until every event of the schedule was offered or ctx ends. fire
// should start the send and return; whoever learns the outcome calls
// [Generator.Done]. A fire that blocks delays the events after it but
// never drops them: they go out late, all at once, and their latency (from
// their intended time) shows the delay. Run returns ctx's error if it ended
// the run early.
func (g *Generator) Run(ctx context.Context, fire func(Shot)) error {
	start := time.Now()
	g.start.Store(start.UnixNano())
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for i := int64(0); i < g.sched.total; {
		now := time.Now()
		for ; i < g.sched.total; i++ {
			at := start.Add(g.sched.At(i))
			if at.After(now) {
				break
			}
			g.offered.Add(1)
			fire(Shot{Seq: i, Intended: at})
		}
		if i == g.sched.total {
			break
		}
		timer.Reset(time.Until(start.Add(g.sched.At(i))))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
		}
	}
	return nil
}

// Done records the outcome of an offered event: an error counts it as
// failed, otherwise its latency from the intended time to now is recorded.
// Safe for concurrent use.
func (g *Generator) Done(s Shot, err error) {
	if err != nil {
		g.failed.Add(1)
		return
	}
	g.acked.Add(1)
	g.lat.Record(time.Since(s.Intended))
}

// Stats is what a generator has seen so far.
type Stats struct {
	// Elapsed is the time since the run started.
	Elapsed time.Duration
	// Offered, Acked and Failed count events handed to fire, resolved
	// successfully and resolved with an error.
	Offered, Acked, Failed int64
	// Latency is the distribution of acknowledged events' latencies.
	Latency latency.Summary
}

// Stats returns the counts and latencies so far.
func (g *Generator) Stats() Stats {
	var elapsed time.Duration
	if s := g.start.Load(); s != 0 {
		elapsed = time.Since(time.Unix(0, s))
	}
	return Stats{
		Elapsed: elapsed,
		Offered: g.offered.Load(),
		Acked:   g.acked.Load(),
		Failed:  g.failed.Load(),
		Latency: g.lat.Summary(),
	}
}
