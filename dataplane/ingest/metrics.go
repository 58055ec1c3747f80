package ingest

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard-dev/switchyard/internal/promreg"
)

// result is the outcome of an event, the label of events_total.
type result int

// Outcomes of an event.
const (
	resultAccepted result = iota
	resultInvalid
	resultUnauthorized
	resultRateLimited
	resultTooLarge
	resultUnknownTopic
	resultFailed
	numResults
)

// resultNames are the label values of each result.
var resultNames = [numResults]string{
	resultAccepted:     "accepted",
	resultInvalid:      "invalid",
	resultUnauthorized: "unauthorized",
	resultRateLimited:  "rate_limited",
	resultTooLarge:     "too_large",
	resultUnknownTopic: "unknown_topic",
	resultFailed:       "failed",
}

// Metrics are the ingest API's Prometheus metrics:
//
//   - switchyard_ingest_events_total{result}: events by outcome. result is
//     accepted (stored), invalid, unauthorized (no or bad key, or a key
//     limited to other topics), rate_limited, too_large, unknown_topic or
//     failed (the broker did not store it). Events refused before their
//     request body was read (an invalid key; over the CloudEvents binding
//     also an unknown topic, a malformed or oversized body) count once per
//     request. A Connect request whose body is over the limit is refused by
//     the Connect runtime and not counted.
//   - switchyard_ingest_publish_seconds: the time from handing a batch's
//     first record to the producer to the broker's acknowledgement of its
//     last.
//
// A nil *Metrics records nothing.
type Metrics struct {
	events         [numResults]prometheus.Counter
	publishSeconds prometheus.Histogram
}

// NewMetrics creates the ingest metrics and registers them with reg (none
// when reg is nil). Metrics already registered with reg by an earlier call
// are reused, so two Services may share a registry.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	events := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "switchyard_ingest_events_total",
		Help: "Events received by the ingest API, by outcome.",
	}, []string{"result"})
	hist := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "switchyard_ingest_publish_seconds",
		Help:    "Time from producing a batch's first record to the broker's acknowledgement of its last.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 15),
	})
	if reg != nil {
		events = promreg.Register(reg, events)
		hist = promreg.Register(reg, hist)
	}
	m := &Metrics{publishSeconds: hist}
	for r := range numResults {
		m.events[r] = events.WithLabelValues(resultNames[r])
	}
	return m
}

// add counts n events with outcome r.
func (m *Metrics) add(r result, n int) {
	if m == nil || n <= 0 {
		return
	}
	m.events[r].Add(float64(n))
}

// observePublish records the time a batch took to be acknowledged.
func (m *Metrics) observePublish(d time.Duration) {
	if m == nil {
		return
	}
	m.publishSeconds.Observe(d.Seconds())
}
