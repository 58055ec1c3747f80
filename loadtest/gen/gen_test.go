package gen_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/loadtest/gen"
)

func TestScheduleConstantRate(t *testing.T) {
	t.Parallel()
	s, err := gen.NewSchedule(gen.Config{Rate: 100, Duration: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Total(); got != 200 {
		t.Fatalf("Total = %d, want 200", got)
	}
	for _, tc := range []struct {
		i    int64
		want time.Duration
	}{{0, 0}, {1, 10 * time.Millisecond}, {150, 1500 * time.Millisecond}} {
		if got := s.At(tc.i); (got - tc.want).Abs() > time.Microsecond {
			t.Errorf("At(%d) = %v, want %v", tc.i, got, tc.want)
		}
	}
}

func TestScheduleRamp(t *testing.T) {
	t.Parallel()
	// 1 s ramp to 100/s then 1 s at 100/s: 50 + 100 events.
	s, err := gen.NewSchedule(gen.Config{Rate: 100, Duration: 2 * time.Second, Ramp: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Total(); got != 150 {
		t.Fatalf("Total = %d, want 150", got)
	}
	// Half-way through the ramp a quarter of its events are due.
	if got := s.At(12); got < 480*time.Millisecond || got > 500*time.Millisecond {
		t.Errorf("At(12) = %v, want about 490ms", got)
	}
	if got := s.At(50); (got - time.Second).Abs() > time.Microsecond {
		t.Errorf("At(50) = %v, want 1s (end of the ramp)", got)
	}
	// Gaps shrink during the ramp and are constant after it.
	if s.At(2)-s.At(1) <= s.At(40)-s.At(39) {
		t.Error("gaps do not shrink during the ramp")
	}
	if d := s.At(101) - s.At(100); (d - 10*time.Millisecond).Abs() > time.Microsecond {
		t.Errorf("gap after the ramp = %v, want 10ms", d)
	}
}

func TestScheduleEventsCap(t *testing.T) {
	t.Parallel()
	s, err := gen.NewSchedule(gen.Config{Rate: 1000, Duration: time.Minute, Events: 7})
	if err != nil {
		t.Fatal(err)
	}
	if s.Total() != 7 {
		t.Fatalf("Total = %d, want 7", s.Total())
	}
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	for _, cfg := range []gen.Config{
		{Rate: 0, Duration: time.Second},
		{Rate: 10, Duration: 0},
		{Rate: 10, Duration: time.Second, Ramp: 2 * time.Second},
		{Rate: 10, Duration: time.Second, Events: -1},
	} {
		if _, err := gen.New(cfg); err == nil {
			t.Errorf("New(%+v) succeeded, want an error", cfg)
		}
	}
}

// A sender far slower than the rate must not reduce the number of events
// offered, and the time they waited must show in their latency.
func TestSlowSenderKeepsOfferedLoad(t *testing.T) {
	t.Parallel()
	g, err := gen.New(gen.Config{Rate: 1000, Duration: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	const perSend = 2 * time.Millisecond // capacity 500/s, half the rate
	start := time.Now()
	err = g.Run(context.Background(), func(s gen.Shot) {
		time.Sleep(perSend) // a blocking sender
		g.Done(s, nil)
	})
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	st := g.Stats()
	if st.Offered != 200 || st.Acked != 200 {
		t.Fatalf("offered %d, acked %d; want 200 each", st.Offered, st.Acked)
	}
	if took < 200*perSend {
		t.Fatalf("run took %v, less than the sender's %v", took, 200*perSend)
	}
	// The last event was due at 199 ms and sent after about 400 ms: its
	// latency includes that queueing, so the maximum is well above the
	// service time of one send.
	if st.Latency.MaxMs < 150 {
		t.Errorf("max latency %.1f ms; want the queueing (about 200 ms) included", st.Latency.MaxMs)
	}
	if st.Latency.P50Ms < 50 {
		t.Errorf("p50 latency %.1f ms; want the queueing included", st.Latency.P50Ms)
	}
}

// An asynchronous sender gets every event near its intended time.
func TestAsyncSenderOnTime(t *testing.T) {
	t.Parallel()
	g, err := gen.New(gen.Config{Rate: 500, Duration: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var late []time.Duration
	var wg sync.WaitGroup
	err = g.Run(context.Background(), func(s gen.Shot) {
		mu.Lock()
		late = append(late, time.Since(s.Intended))
		mu.Unlock()
		wg.Go(func() { g.Done(s, nil) })
	})
	if err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if len(late) != 100 {
		t.Fatalf("%d events fired, want 100", len(late))
	}
	for i, d := range late {
		if d < 0 {
			t.Fatalf("event %d fired %v before its time", i, -d)
		}
	}
}

func TestFailuresCounted(t *testing.T) {
	t.Parallel()
	g, err := gen.New(gen.Config{Rate: 10_000, Duration: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	err = g.Run(context.Background(), func(s gen.Shot) {
		if s.Seq%4 == 0 {
			g.Done(s, context.DeadlineExceeded)
			return
		}
		g.Done(s, nil)
	})
	if err != nil {
		t.Fatal(err)
	}
	st := g.Stats()
	if st.Offered != 100 || st.Failed != 25 || st.Acked != 75 || st.Latency.Count != 75 {
		t.Fatalf("stats %+v; want 100 offered, 25 failed, 75 acked with latencies", st)
	}
}

func TestRunStopsWithContext(t *testing.T) {
	t.Parallel()
	g, err := gen.New(gen.Config{Rate: 10, Duration: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	if err := g.Run(ctx, func(s gen.Shot) { g.Done(s, nil) }); err == nil {
		t.Fatal("Run returned nil after its context ended")
	}
	if n := g.Stats().Offered; n < 1 || n > 3 {
		t.Fatalf("offered %d in 150ms at 10/s", n)
	}
}
