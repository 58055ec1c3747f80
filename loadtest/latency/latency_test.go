package latency_test

import (
	"math"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/loadtest/latency"
)

func TestPercentiles(t *testing.T) {
	t.Parallel()
	r := latency.NewRecorder()
	if s := r.Summary(); s != (latency.Summary{}) {
		t.Fatalf("empty summary %+v", s)
	}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := w + 1; i <= 1000; i += 4 {
				r.Record(time.Duration(i) * time.Millisecond)
			}
		})
	}
	wg.Wait()
	s := r.Summary()
	near := func(got, want float64) bool { return math.Abs(got-want) <= want*0.002 }
	if s.Count != 1000 || !near(s.P50Ms, 500) || !near(s.P90Ms, 900) || !near(s.P99Ms, 990) || !near(s.P999Ms, 999) || !near(s.MaxMs, 1000) {
		t.Fatalf("summary %+v", s)
	}
}

func TestClamped(t *testing.T) {
	t.Parallel()
	r := latency.NewRecorder()
	r.Record(-time.Second)
	r.Record(time.Hour)
	s := r.Summary()
	if s.Count != 2 || s.MaxMs < 599_000 || s.MaxMs > 601_000 {
		t.Fatalf("summary %+v", s)
	}
}
