package scenario

import (
	"fmt"
	"strings"

	"github.com/switchyard-dev/switchyard/loadtest/report"
)

// Ratios compares Switchyard's closed-loop figures with the raw baselines
// measured in the same scenario: ingest over raw produce (the ingest
// scenario's sustained figure first, then the e2e scenario's smaller
// sample), delivery over raw HTTP and over raw consume (e2e).
func Ratios(scenarios []report.Scenario) []report.Ratio {
	var out []report.Ratio
	ratio := func(sc report.Scenario, name, num, den string) {
		n, ok1 := sc.Throughput(num)
		d, ok2 := sc.Throughput(den)
		if !ok1 || !ok2 || d.PerSecond == 0 {
			return
		}
		out = append(out, report.Ratio{
			Name: name + " (" + sc.Name + ")", Value: n.PerSecond / d.PerSecond,
			Numerator:   fmt.Sprintf("%s: %.0f events/s", num, n.PerSecond),
			Denominator: fmt.Sprintf("%s: %.0f events/s", den, d.PerSecond),
		})
	}
	for _, name := range []string{Ingest, E2E} {
		for _, sc := range scenarios {
			if sc.Name == name {
				ratio(sc, "ingest / raw produce", SDKIngest, RawProduce)
			}
		}
	}
	for _, sc := range scenarios {
		if sc.Name == E2E {
			ratio(sc, "delivery / raw HTTP", Delivery, RawHTTP)
			ratio(sc, "delivery / raw consume", Delivery, RawConsume)
		}
	}
	return out
}

// Headlines picks the figures a reader wants first from the scenarios
// that ran: end-to-end latency at the open loop's fraction of capacity,
// and loss, duplicates and dead letters under failure.
func Headlines(scenarios []report.Scenario) []string {
	var out []string
	for _, sc := range scenarios {
		d := sc.Delivery
		how := ""
		for _, line := range sc.Timeline {
			if v, ok := strings.CutPrefix(line, "rate: "); ok {
				how = " (" + v + ")"
			}
		}
		switch {
		case sc.Name == Ingest:
			l := sc.IngestLatency
			out = append(out, fmt.Sprintf("Ingest at %.0f events/s%s: ack latency p50 %.1f ms, p99 %.1f ms, p99.9 %.1f ms.",
				sc.TargetRate, how, l.P50Ms, l.P99Ms, l.P999Ms))
		case sc.Name == E2E && d != nil:
			l := d.E2ELatency
			out = append(out, fmt.Sprintf("End to end at %.0f events/s%s: p50 %.1f ms, p90 %.1f ms, p99 %.1f ms, p99.9 %.1f ms, max %.1f ms; lost %d, duplicates %d, out of order %d.",
				sc.TargetRate, how, l.P50Ms, l.P90Ms, l.P99Ms, l.P999Ms, l.MaxMs, d.Total.Lost, d.Total.Duplicates, d.Total.OutOfOrder))
		case sc.Name == Failing && d != nil:
			out = append(out, fmt.Sprintf("Failing sink: %d of %d events dead-lettered after failing every attempt, %d lost, %d dead letters of events the sink had accepted.",
				d.Total.DeadLettered, d.Total.Expected, d.Total.Lost, d.Total.DeadLetteredAfterDelivery))
		case sc.Name == FanOut && d != nil:
			out = append(out, fmt.Sprintf("Fan-out to %d pipelines: %d deliveries, %d lost, end-to-end p99 %.1f ms (worst pipeline).",
				d.Pipelines, d.Total.Delivered, d.Total.Lost, d.E2ELatency.P99Ms))
		case sc.Name == NodeKill && d != nil:
			out = append(out, fmt.Sprintf("Node killed with SIGKILL mid-run: lost %d, duplicates %d (redelivered after the kill), end-to-end max %.0f ms.",
				d.Total.Lost, d.Total.Duplicates, d.E2ELatency.MaxMs))
		}
	}
	return out
}
