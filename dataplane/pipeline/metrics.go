package pipeline

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Results of a record, the result label of switchyard_pipeline_records_total.
const (
	ResultDelivered    = "delivered"
	ResultFiltered     = "filtered"
	ResultRetried      = "retried"
	ResultDeadLettered = "dead_lettered"
	// ResultDropped counts retry records whose pipeline or destination no
	// longer exists.
	ResultDropped = "dropped"
	// ResultBeforePipeline counts records published before the pipeline
	// existed (with CreationSkew to spare), which it does not deliver.
	ResultBeforePipeline = "before_pipeline"
)

// Metrics are the pipeline workers' Prometheus metrics. A nil *Metrics
// records nothing.
type Metrics struct {
	records     *prometheus.CounterVec
	lag         *prometheus.GaugeVec
	retries     *prometheus.CounterVec
	deadLetters *prometheus.CounterVec
	endToEnd    *prometheus.HistogramVec
}

// NewMetrics creates the metrics and registers them with reg (when not nil).
//
//   - switchyard_pipeline_records_total{pipeline,result}: outcomes per
//     record and destination (delivered, retried, dead_lettered, dropped);
//     filtered counts once per record.
//   - switchyard_pipeline_lag{pipeline}: records behind, from the group's
//     committed offsets and the partitions' high watermarks.
//   - switchyard_retries_total{pipeline,tier}: retries scheduled, by retry
//     tier ("key" for in-place retries of KEY-ordered pipelines).
//   - switchyard_dead_letters_total{pipeline,reason}: dead letters written.
//   - switchyard_end_to_end_seconds{pipeline}: event time to delivery.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_pipeline_records_total",
			Help: "Records processed by pipeline workers, by outcome.",
		}, []string{"pipeline", "result"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "switchyard_pipeline_lag",
			Help: "Records of a pipeline's topic not yet committed by its consumer group.",
		}, []string{"pipeline"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_retries_total",
			Help: "Delivery retries scheduled, by retry tier.",
		}, []string{"pipeline", "tier"}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_dead_letters_total",
			Help: "Records written to dead-letter topics, by reason.",
		}, []string{"pipeline", "reason"}),
		endToEnd: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "switchyard_end_to_end_seconds",
			Help:    "Time from an event's time to its delivery.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 7200},
		}, []string{"pipeline"}),
	}
	if reg != nil {
		reg.MustRegister(m.records, m.lag, m.retries, m.deadLetters, m.endToEnd)
	}
	return m
}

func (m *Metrics) record(pipeline, result string) {
	if m != nil {
		m.records.WithLabelValues(pipeline, result).Inc()
	}
}

func (m *Metrics) retry(pipeline, tier string) {
	if m != nil {
		m.records.WithLabelValues(pipeline, ResultRetried).Inc()
		m.retries.WithLabelValues(pipeline, tier).Inc()
	}
}

func (m *Metrics) deadLetter(pipeline, reason string) {
	if m != nil {
		m.records.WithLabelValues(pipeline, ResultDeadLettered).Inc()
		m.deadLetters.WithLabelValues(pipeline, reason).Inc()
	}
}

func (m *Metrics) delivered(pipeline string, eventTime, now time.Time) {
	if m == nil {
		return
	}
	m.records.WithLabelValues(pipeline, ResultDelivered).Inc()
	if !eventTime.IsZero() {
		m.endToEnd.WithLabelValues(pipeline).Observe(max(0, now.Sub(eventTime).Seconds()))
	}
}

func (m *Metrics) setLag(pipeline string, lag int64) {
	if m != nil {
		m.lag.WithLabelValues(pipeline).Set(float64(lag))
	}
}

func (m *Metrics) forgetLag(pipeline string) {
	if m != nil {
		m.lag.DeleteLabelValues(pipeline)
	}
}
