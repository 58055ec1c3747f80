// Package latency records durations in an HdrHistogram and summarises them
// as the percentiles a load-test report shows.
package latency

import (
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Bounds of a Recorder: durations from 1 µs to 10 minutes, with 3
// significant digits. Longer durations are recorded as the maximum.
const (
	minValue = int64(time.Microsecond)
	maxValue = int64(10 * time.Minute)
	sigFigs  = 3
)

// Recorder is a histogram of durations, safe for concurrent use.
type Recorder struct {
	mu sync.Mutex
	h  *hdrhistogram.Histogram
}

// NewRecorder returns an empty recorder.
func NewRecorder() *Recorder {
	return &Recorder{h: hdrhistogram.New(minValue, maxValue, sigFigs)}
}

// Record adds one duration. Values below 1 µs count as 1 µs, above 10
// minutes as 10 minutes.
func (r *Recorder) Record(d time.Duration) {
	v := min(max(int64(d), minValue), maxValue)
	r.mu.Lock()
	_ = r.h.RecordValue(v) // in range by construction
	r.mu.Unlock()
}

// Summary returns the count and percentiles recorded so far.
func (r *Recorder) Summary() Summary {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := r.h.TotalCount()
	if n == 0 {
		return Summary{}
	}
	ms := func(v int64) float64 { return float64(v) / float64(time.Millisecond) }
	return Summary{
		Count:  n,
		MeanMs: r.h.Mean() / float64(time.Millisecond),
		P50Ms:  ms(r.h.ValueAtQuantile(50)),
		P90Ms:  ms(r.h.ValueAtQuantile(90)),
		P99Ms:  ms(r.h.ValueAtQuantile(99)),
		P999Ms: ms(r.h.ValueAtQuantile(99.9)),
		MaxMs:  ms(r.h.Max()),
	}
}

// Summary is a distribution of durations in milliseconds.
type Summary struct {
	// Count is the number of durations recorded.
	Count  int64   `json:"count"`
	MeanMs float64 `json:"mean_ms"`
	P50Ms  float64 `json:"p50_ms"`
	P90Ms  float64 `json:"p90_ms"`
	P99Ms  float64 `json:"p99_ms"`
	P999Ms float64 `json:"p999_ms"`
	MaxMs  float64 `json:"max_ms"`
}
