package deliver

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard-dev/switchyard/internal/promreg"
)

// Breaker states as exported by the switchyard_breaker_state gauge.
const (
	breakerClosedValue   = 0
	breakerHalfOpenValue = 1
	breakerOpenValue     = 2
)

// Reasons a Router answers without making an attempt, the reason label of
// switchyard_delivery_rejected_total.
const (
	rejectCircuitOpen = "circuit_open"
	rejectLimitWait   = "limit_wait"
)

// Metrics are the Prometheus metrics of delivery. A nil *Metrics records
// nothing, so every component takes it as optional.
//
//   - switchyard_delivery_attempts_total{pipeline,destination,outcome}: attempts
//     that were sent (a webhook request or a Kafka produce), by outcome
//     (delivered, retryable, permanent). Counted by Webhook and Kafka.
//   - switchyard_delivery_attempt_seconds{pipeline,destination}: latency of
//     those attempts.
//   - switchyard_delivery_rejected_total{pipeline,destination,reason}: calls a
//     Router answered Retryable without sending: circuit_open, or limit_wait
//     (the context ended before the attempt or while it waited for the
//     concurrency or rate limit).
//   - switchyard_breaker_state{pipeline,destination}: 0 closed, 1 half-open,
//     2 open.
//   - switchyard_delivery_in_flight{pipeline,destination}: attempts under way
//     through a Router.
type Metrics struct {
	attempts *prometheus.CounterVec
	seconds  *prometheus.HistogramVec
	rejected *prometheus.CounterVec
	breaker  *prometheus.GaugeVec
	inFlight *prometheus.GaugeVec
}

// NewMetrics creates the delivery metrics and registers them with reg (none
// when reg is nil). Metrics already registered with reg by an earlier call
// are reused, so several components may call NewMetrics with one registry.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	labels := []string{"pipeline", "destination"}
	m := &Metrics{
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_delivery_attempts_total",
			Help: "Delivery attempts sent to destinations, by outcome.",
		}, append(labels, "outcome")),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "switchyard_delivery_attempt_seconds",
			Help:    "Latency of delivery attempts, from sending to the answer.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120},
		}, labels),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_delivery_rejected_total",
			Help: "Deliveries answered as retryable without sending (open circuit, limit wait cut short).",
		}, append(labels, "reason")),
		breaker: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "switchyard_breaker_state",
			Help: "Circuit breaker state per destination: 0 closed, 1 half-open, 2 open.",
		}, labels),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "switchyard_delivery_in_flight",
			Help: "Delivery attempts under way per destination.",
		}, labels),
	}
	if reg == nil {
		return m
	}
	m.attempts = promreg.Register(reg, m.attempts)
	m.seconds = promreg.Register(reg, m.seconds)
	m.rejected = promreg.Register(reg, m.rejected)
	m.breaker = promreg.Register(reg, m.breaker)
	m.inFlight = promreg.Register(reg, m.inFlight)
	return m
}

// attempt records one attempt that was sent.
func (m *Metrics) attempt(pipeline, destination string, res Result) {
	if m == nil {
		return
	}
	m.attempts.WithLabelValues(pipeline, destination, res.Outcome.String()).Inc()
	m.seconds.WithLabelValues(pipeline, destination).Observe(res.Latency.Seconds())
}

// reject records a call answered without sending.
func (m *Metrics) reject(pipeline, destination, reason string) {
	if m == nil {
		return
	}
	m.rejected.WithLabelValues(pipeline, destination, reason).Inc()
}

// setBreaker records a breaker state.
func (m *Metrics) setBreaker(pipeline, destination string, v float64) {
	if m == nil {
		return
	}
	m.breaker.WithLabelValues(pipeline, destination).Set(v)
}

// addInFlight moves the in-flight gauge by d.
func (m *Metrics) addInFlight(pipeline, destination string, d float64) {
	if m == nil {
		return
	}
	m.inFlight.WithLabelValues(pipeline, destination).Add(d)
}

// forget deletes the per-destination series of gauges once the destination's
// state is gone, so deleted pipelines leave no series behind. Counters and
// the histogram stay: they are cumulative and a scrape may not have seen
// their last value.
func (m *Metrics) forget(pipeline, destination string) {
	if m == nil {
		return
	}
	m.breaker.DeleteLabelValues(pipeline, destination)
	m.inFlight.DeleteLabelValues(pipeline, destination)
}
