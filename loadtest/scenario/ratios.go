package scenario

import (
	"fmt"

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
