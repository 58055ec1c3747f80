package report_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/loadtest/baseline"
	"github.com/switchyard-dev/switchyard/loadtest/latency"
	"github.com/switchyard-dev/switchyard/loadtest/procstat"
	"github.com/switchyard-dev/switchyard/loadtest/report"
	"github.com/switchyard-dev/switchyard/loadtest/sink"
)

func sample() *report.Report {
	return &report.Report{
		Title:   "Switchyard load test",
		Start:   time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC),
		Command: "make bench",
		Machine: report.Machine{CPU: "Test CPU", Cores: 2, MemoryGiB: 8, Kernel: "6.1", OS: "linux/amd64", GoVersion: "go1.26", KafkaVersion: "4.4.0"},
		Scenarios: []report.Scenario{
			{
				Name: "e2e", Description: "one pipeline", Seconds: 30, TargetRate: 1000, AchievedRate: 999.5,
				Offered: 30000, Acknowledged: 30000,
				IngestLatency: latency.Summary{Count: 30000, P50Ms: 2.5, P90Ms: 4, P99Ms: 9.25, P999Ms: 20, MaxMs: 31},
				Delivery: &report.Delivery{
					Pipelines: 1, Ordered: true,
					Total:       sink.Tally{Expected: 30000, Delivered: 30000, Duplicates: 3},
					E2ELatency:  latency.Summary{Count: 30000, P50Ms: 5, P90Ms: 8, P99Ms: 15, P999Ms: 40, MaxMs: 55},
					PerPipeline: []report.PipelineTally{{Name: "e2e-1", Tally: sink.Tally{Expected: 30000, Delivered: 30000, Duplicates: 3}}},
				},
				Capacity:  []baseline.Throughput{baseline.NewThroughput("raw franz-go produce", 5000, time.Second)},
				Processes: []procstat.Usage{{Name: "dataplane-1", CPUCores: 0.75, PeakRSSMiB: 48.5, Restarts: 1}},
				Timeline:  []string{"10.0s: SIGKILL dataplane-2"},
			},
			{
				Name: "ingest", Seconds: 30, TargetRate: 2000, Acknowledged: 60000,
				Failures: []string{"2 events lost"},
			},
		},
		Ratios: []report.Ratio{{Name: "ingest / raw produce (e2e)", Value: 0.8123, Numerator: "a", Denominator: "b"}},
		Notes:  []string{"shared machine"},
	}
}

func TestMarkdown(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	if err := sample().WriteMarkdown(&b); err != nil {
		t.Fatal(err)
	}
	md := b.String()
	for _, want := range []string{
		"# Switchyard load test\n",
		"```sh\nmake bench\n```",
		"| CPU | Test CPU |",
		"| Kafka | 4.4.0 |",
		"**FAILED**",
		"- ingest: 2 events lost",
		"| ingest / raw produce (e2e) | 0.812 | a | b |",
		"| e2e | 1000 | 1000 | 30000 | 0 | 30000 | 0 | 3 | 0 | 0 | 2.50 / 4.00 / 9.25 / 20.0 / 31.0 | 5.00 / 8.00 / 15.0 / 40.0 / 55.0 |",
		"| ingest | 2000 | 0 | 60000 | 0 | – | – | – | – | – | – | – |",
		"| raw franz-go produce | 5000 | 1.00 | 5000 |",
		"| dataplane-1 (restarted 1×) | 0.750 | 48.5 |",
		"- 10.0s: SIGKILL dataplane-2",
		"- shared machine",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q\n%s", want, md)
		}
	}
}

func TestMarkdownPassed(t *testing.T) {
	t.Parallel()
	r := sample()
	r.Scenarios = r.Scenarios[:1]
	var b bytes.Buffer
	if err := r.WriteMarkdown(&b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "Passed: no event lost, no unexpected dead letter.") {
		t.Fatalf("no verdict in\n%s", b.String())
	}
}

func TestTable(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	if err := sample().WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"e2e", "30000", "FAILED    ingest: 2 events lost", "ratio     ingest / raw produce (e2e)"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q\n%s", want, out)
		}
	}
}

func TestJSONRoundTrip(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	r := sample()
	r.Error = "broker gone"
	if err := r.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var got report.Report
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.Scenarios[0].Delivery.Total.Duplicates != 3 || got.Scenarios[0].IngestLatency.P99Ms != 9.25 || got.Machine.Cores != 2 {
		t.Fatalf("round trip lost data: %+v", got)
	}
	if f := got.Failed(); len(f) != 2 || f[0] != "run stopped: broker gone" {
		t.Fatalf("Failed() = %q", f)
	}
}

func TestDescribeMachine(t *testing.T) {
	t.Parallel()
	m := report.DescribeMachine("")
	if m.Cores < 1 || m.GoVersion == "" || m.KafkaVersion != "unknown" {
		t.Fatalf("machine %+v", m)
	}
}
