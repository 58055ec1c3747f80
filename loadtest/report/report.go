// Package report is the outcome of a load-test run — the machine, the
// command, each scenario's counts, latencies, throughputs and process costs,
// and the ratios to the raw baselines — written as JSON and as a markdown
// summary.
package report

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/switchyard-dev/switchyard/loadtest/baseline"
	"github.com/switchyard-dev/switchyard/loadtest/latency"
	"github.com/switchyard-dev/switchyard/loadtest/procstat"
	"github.com/switchyard-dev/switchyard/loadtest/sink"
)

// Report is one run of the load test.
type Report struct {
	// Title heads the markdown summary.
	Title string `json:"title"`
	// Start is when the run began.
	Start time.Time `json:"start"`
	// Command reproduces the run.
	Command string `json:"command"`
	// Machine is where it ran.
	Machine Machine `json:"machine"`
	// Settings are the options the scenarios ran with, by name.
	Settings []Setting `json:"settings"`
	// Scenarios are the results, in the order they ran.
	Scenarios []Scenario `json:"scenarios"`
	// Ratios compare Switchyard with the raw baselines of the same run.
	Ratios []Ratio `json:"ratios"`
	// Headlines are the few figures a reader wants first.
	Headlines []string `json:"headlines,omitempty"`
	// Error is why the run stopped before every scenario ran; empty when
	// it did not.
	Error string `json:"error,omitempty"`
	// Notes are remarks for the reader (e.g. what else ran on the machine).
	Notes []string `json:"notes,omitempty"`
}

// Setting is one option of the run.
type Setting struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Machine describes the computer a run used.
type Machine struct {
	CPU          string  `json:"cpu"`
	Cores        int     `json:"cores"`
	MemoryGiB    float64 `json:"memory_gib"`
	Kernel       string  `json:"kernel"`
	OS           string  `json:"os"`
	GoVersion    string  `json:"go_version"`
	KafkaVersion string  `json:"kafka_version"`
}

// DescribeMachine reads the machine's description from /proc; kafka is the
// broker's version as the caller knows it.
func DescribeMachine(kafka string) Machine {
	m := Machine{Cores: runtime.NumCPU(), GoVersion: runtime.Version(), KafkaVersion: kafka, OS: runtime.GOOS + "/" + runtime.GOARCH}
	if m.KafkaVersion == "" {
		m.KafkaVersion = "unknown"
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
				m.MemoryGiB = kb / (1 << 20)
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/etc/os-release"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "PRETTY_NAME="); ok {
				m.OS = strings.Trim(v, `"`) + " " + m.OS
			}
		}
	}
	return m
}

// Scenario is the result of one scenario.
type Scenario struct {
	// Name and Description say what ran.
	Name        string `json:"name"`
	Description string `json:"description"`
	// Seconds is the length of the open-loop phase.
	Seconds float64 `json:"seconds"`
	// TargetRate is the arrival rate offered, events/s; AchievedRate the
	// rate of acknowledged events over the open-loop phase.
	TargetRate   float64 `json:"target_rate"`
	AchievedRate float64 `json:"achieved_rate"`
	// Offered, Acknowledged and PublishFailed count the events of the
	// open-loop phase, plus, in scenarios that deliver, the one warm-up
	// event published and delivered before it.
	Offered       int64 `json:"offered"`
	Acknowledged  int64 `json:"acknowledged"`
	PublishFailed int64 `json:"publish_failed"`
	// IngestLatency is from each event's intended send time to its
	// acknowledgement by ingest.
	IngestLatency latency.Summary `json:"ingest_latency"`
	// Delivery is the sink's accounting; nil for ingest-only scenarios.
	Delivery *Delivery `json:"delivery,omitempty"`
	// Capacity holds the closed-loop measurements of the scenario: of
	// Switchyard and of the raw baselines.
	Capacity []baseline.Throughput `json:"capacity,omitempty"`
	// Processes is what each process used during the scenario.
	Processes []procstat.Usage `json:"processes"`
	// Timeline notes what happened when (e.g. a node killed).
	Timeline []string `json:"timeline,omitempty"`
	// Failures are the checks the scenario failed; empty means it passed.
	Failures []string `json:"failures,omitempty"`
}

// Delivery is what the pipelines of a scenario delivered.
type Delivery struct {
	// Pipelines is the number of pipelines, each expected to deliver
	// every acknowledged event.
	Pipelines int `json:"pipelines"`
	// Total sums the pipelines' tallies.
	Total sink.Tally `json:"total"`
	// PerPipeline are the tallies of each pipeline.
	PerPipeline []PipelineTally `json:"per_pipeline"`
	// Ordered says the pipelines are KEY-ordered, so that out-of-order
	// deliveries count; unordered pipelines deliver in any order.
	Ordered bool `json:"ordered"`
	// DeadLetters is the number of records read from the pipelines'
	// dead-letter topics; DeadLettersExpected says whether the scenario
	// provokes them.
	DeadLetters         int64 `json:"dead_letters"`
	DeadLettersExpected bool  `json:"dead_letters_expected"`
	// E2ELatency is from intended send time to the first receipt by the
	// sink; with several pipelines, the worst pipeline's percentiles.
	E2ELatency latency.Summary `json:"e2e_latency"`
	// DrainSeconds is how long after the last publish every event was
	// delivered or dead-lettered.
	DrainSeconds float64 `json:"drain_seconds"`
}

// PipelineTally is the accounting of one pipeline.
type PipelineTally struct {
	Name       string          `json:"name"`
	Tally      sink.Tally      `json:"tally"`
	E2ELatency latency.Summary `json:"e2e_latency"`
}

// Ratio is a Switchyard figure over the matching raw baseline.
type Ratio struct {
	Name        string  `json:"name"`
	Value       float64 `json:"value"`
	Numerator   string  `json:"numerator"`
	Denominator string  `json:"denominator"`
}

// Failed returns every failure of every scenario, prefixed by its name.
func (r *Report) Failed() []string {
	var out []string
	if r.Error != "" {
		out = append(out, "run stopped: "+r.Error)
	}
	for _, s := range r.Scenarios {
		for _, f := range s.Failures {
			out = append(out, s.Name+": "+f)
		}
	}
	return out
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// Throughput returns the scenario's measurement called name, if any.
func (s *Scenario) Throughput(name string) (baseline.Throughput, bool) {
	for _, t := range s.Capacity {
		if t.Name == name {
			return t, true
		}
	}
	return baseline.Throughput{}, false
}

// fmtFloat prints v with sig significant digits at most, no exponent.
func fmtFloat(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case v >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	default:
		return strconv.FormatFloat(v, 'f', 3, 64)
	}
}

func fmtCount(n int64) string { return strconv.FormatInt(n, 10) }

func fmtLatency(l latency.Summary) string {
	if l.Count == 0 {
		return "–"
	}
	return fmt.Sprintf("%s / %s / %s / %s / %s", fmtFloat(l.P50Ms), fmtFloat(l.P90Ms), fmtFloat(l.P99Ms), fmtFloat(l.P999Ms), fmtFloat(l.MaxMs))
}
