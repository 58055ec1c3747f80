package scenario_test

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/loadtest/baseline"
	"github.com/switchyard-dev/switchyard/loadtest/harness"
	"github.com/switchyard-dev/switchyard/loadtest/latency"
	"github.com/switchyard-dev/switchyard/loadtest/report"
	"github.com/switchyard-dev/switchyard/loadtest/scenario"
	"github.com/switchyard-dev/switchyard/loadtest/sink"
)

func TestExpand(t *testing.T) {
	t.Parallel()
	got, err := scenario.Expand("ci, nodekill")
	if err != nil {
		t.Fatal(err)
	}
	if want := append(slices.Clone(scenario.CI), scenario.NodeKill); !slices.Equal(got, want) {
		t.Fatalf("Expand = %v, want %v", got, want)
	}
	if got, _ := scenario.Expand("all"); !slices.Equal(got, scenario.All) {
		t.Fatalf("Expand(all) = %v", got)
	}
	for _, bad := range []string{"", "nope", "e2e,nope"} {
		if _, err := scenario.Expand(bad); err == nil {
			t.Errorf("Expand(%q) succeeded", bad)
		}
	}
}

func TestRatios(t *testing.T) {
	t.Parallel()
	tp := func(name string, perSec float64) baseline.Throughput {
		return baseline.NewThroughput(name, int64(perSec), time.Second)
	}
	scs := []report.Scenario{
		{Name: scenario.Ingest, Capacity: []baseline.Throughput{tp(scenario.SDKIngest, 100), tp(scenario.RawProduce, 400)}},
		{Name: scenario.E2E, Capacity: []baseline.Throughput{
			tp(scenario.SDKIngest, 300), tp(scenario.RawProduce, 600), tp(scenario.RawConsume, 1000),
			tp(scenario.Delivery, 200), tp(scenario.RawHTTP, 800),
		}},
	}
	got := scenario.Ratios(scs)
	want := map[string]float64{
		"ingest / raw produce (e2e)":    0.5,
		"delivery / raw HTTP (e2e)":     0.25,
		"delivery / raw consume (e2e)":  0.2,
		"ingest / raw produce (ingest)": 0.25,
	}
	if len(got) != len(want) {
		t.Fatalf("ratios %+v", got)
	}
	if got[0].Name != "ingest / raw produce (ingest)" {
		t.Fatalf("the ingest scenario's ratio does not come first: %+v", got)
	}
	for _, r := range got {
		if w, ok := want[r.Name]; !ok || r.Value != w {
			t.Errorf("ratio %s = %v, want %v", r.Name, r.Value, w)
		}
	}
}

// TestCIScenario runs the CI scenarios briefly against the real broker
// named by SWITCHYARD_TEST_KAFKA_BROKERS, with real processes: nothing may
// be lost and no dead letter may appear where none is expected.
func TestCIScenario(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Postgres, the control plane and a data-plane node against a real Kafka broker")
	}
	brokers := os.Getenv("SWITCHYARD_TEST_KAFKA_BROKERS")
	if brokers == "" {
		// In CI a missing broker is a broken setup, not a reason to pass.
		if os.Getenv("CI") != "" {
			t.Fatal("SWITCHYARD_TEST_KAFKA_BROKERS is not set: the load test needs a real Kafka broker (`make test` starts one)")
		}
		t.Skip("needs a real Kafka broker: set SWITCHYARD_TEST_KAFKA_BROKERS (`make test` starts one)")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	h, err := harness.Start(ctx, harness.Config{Brokers: strings.Split(brokers, ","), Log: testWriter{t}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := h.Close(cctx); err != nil {
			t.Errorf("closing the harness: %v", err)
		}
	})
	sk, err := sink.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sk.Close() })
	r := scenario.NewRunner(h, sk, scenario.Options{
		Rate: 100, Duration: 5 * time.Second, CapacityEvents: 500, DrainTimeout: time.Minute,
		Progress: testWriter{t}, ProgressEvery: 2 * time.Second,
	})
	for _, name := range scenario.CI {
		sc, err := r.Run(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if len(sc.Failures) > 0 {
			t.Errorf("%s failed: %v", name, sc.Failures)
		}
		d := sc.Delivery
		if d == nil || sc.Acknowledged == 0 || d.Total.Expected != sc.Acknowledged { // the warm-up event counts in both
			t.Fatalf("%s: acknowledged %d, delivery %+v", name, sc.Acknowledged, d)
		}
		if d.Total.Lost != 0 {
			t.Errorf("%s: %d lost", name, d.Total.Lost)
		}
		if name == scenario.Failing && d.Total.InjectedErrors+d.Total.InjectedTimeouts == 0 {
			t.Errorf("%s: the sink failed no request", name)
		}
		t.Logf("%s: acked %d delivered %d dead-lettered %d duplicates %d e2e p99 %.1f ms",
			name, sc.Acknowledged, d.Total.Delivered, d.Total.DeadLettered, d.Total.Duplicates, d.E2ELatency.P99Ms)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

func TestHeadlines(t *testing.T) {
	t.Parallel()
	scs := []report.Scenario{
		{Name: scenario.E2E, TargetRate: 1500, Timeline: []string{"rate: 50% of the capacity"}, Delivery: &report.Delivery{
			Total: sink.Tally{Lost: 0, Duplicates: 2}, E2ELatency: latencySummary(20, 150),
		}},
		{Name: scenario.NodeKill, Delivery: &report.Delivery{Total: sink.Tally{Duplicates: 8}, E2ELatency: latencySummary(12, 5400)}},
	}
	got := scenario.Headlines(scs)
	if len(got) != 2 {
		t.Fatalf("headlines %q", got)
	}
	if !strings.Contains(got[0], "End to end at 1500 events/s (50% of the capacity): p50 20.0 ms") || !strings.Contains(got[0], "duplicates 2") {
		t.Errorf("e2e headline %q", got[0])
	}
	if !strings.Contains(got[1], "lost 0, duplicates 8") {
		t.Errorf("nodekill headline %q", got[1])
	}
}

func latencySummary(p50, p99 float64) latency.Summary {
	return latency.Summary{Count: 1, P50Ms: p50, P90Ms: p50, P99Ms: p99, P999Ms: p99, MaxMs: p99}
}
