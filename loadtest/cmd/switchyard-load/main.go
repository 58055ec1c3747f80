// Command switchyard-load runs Switchyard's load-test scenarios against
// real processes — a private Postgres, `switchyard controlplane`,
// `switchyard dataplane` nodes — and a real Kafka broker, with raw
// baselines measured in the same run, and writes a JSON report and a
// markdown summary.
//
//	switchyard-load --scenario ci --out ../.cache/loadtest
//	switchyard-load --scenario all --out ../docs/benchmarks --name 2026-12-03
//
// It exits 1 when a check fails (an event lost, an unexpected dead letter)
// and 2 when the run itself fails. See docs/loadtest.md.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/switchyard-dev/switchyard/loadtest/harness"
	"github.com/switchyard-dev/switchyard/loadtest/report"
	"github.com/switchyard-dev/switchyard/loadtest/scenario"
	"github.com/switchyard-dev/switchyard/loadtest/sink"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// multiFlag is a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, "; ") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("switchyard-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		scenarios      = fs.String("scenario", "ci", "scenarios to run, comma-separated: "+strings.Join(scenario.All, ", ")+"; or all, or ci ("+strings.Join(scenario.CI, ", ")+")")
		rate           = fs.Float64("rate", 0, "open-loop arrival rate, events/s (0: --fraction of the capacity measured in the run)")
		fraction       = fs.Float64("fraction", 0.5, "fraction of the measured capacity the open-loop phases run at when --rate is 0")
		duration       = fs.Duration("duration", 30*time.Second, "length of each open-loop phase")
		ramp           = fs.Duration("ramp", 0, "linear ramp from 0 to the rate at the start of each open-loop phase (part of --duration)")
		events         = fs.Int64("events", 0, "cap on the events of each open-loop phase (0: rate × duration)")
		payload        = fs.Int("payload-bytes", 256, "payload size of each event")
		keys           = fs.Int("keys", 64, "number of partition keys")
		partitions     = fs.Uint("partitions", 4, "partitions of each topic")
		capacityEvents = fs.Int("capacity-events", 5000, "least events of each closed-loop capacity measurement")
		capacityTime   = fs.Duration("capacity-time", 10*time.Second, "least time of the ingest scenario's closed-loop capacity measurement")
		concurrency    = fs.Int("concurrency", 32, "webhook destinations' max in flight, and the raw HTTP baseline's concurrency")
		errPct         = fs.Float64("error-percent", 10, "failing scenario: share of webhook requests answered 503")
		timeoutPct     = fs.Float64("timeout-percent", 5, "failing scenario: share of webhook requests held until the sender times out")
		fanout         = fs.Int("fanout", 4, "fanout scenario: number of pipelines on the topic")
		drain          = fs.Duration("drain-timeout", 2*time.Minute, "how long after the last publish every event must be delivered or dead-lettered")
		out            = fs.String("out", "", "directory for <name>.json and <name>.md (empty: write no files)")
		name           = fs.String("name", "", "base name of the report files (default: today's date, YYYY-MM-DD)")
		brokers        = fs.String("kafka-brokers", "", "Kafka seed brokers, comma-separated (empty: start the repository's broker with scripts/kafka.sh start)")
		bin            = fs.String("switchyard-bin", "", "switchyard binary (empty: go build ./cmd/switchyard into a temporary directory)")
		progress       = fs.Duration("progress", 5*time.Second, "interval of the progress lines on stderr")
		reproduce      = fs.String("reproduce", "", "the command to show in the report as how to reproduce it (default: this command line)")
		title          = fs.String("title", "Switchyard load test", "title of the markdown summary")
		render         = fs.String("render", "", "render the markdown summary of an existing JSON report (FILE.json to FILE.md) and exit")
		notes          multiFlag
	)
	fs.Var(&notes, "note", "a note for the report (repeatable)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *render != "" {
		if err := rerender(*render); err != nil {
			fmt.Fprintln(stderr, "switchyard-load:", err)
			return 2
		}
		return 0
	}
	names, err := scenario.Expand(*scenarios)
	if err != nil {
		fmt.Fprintln(stderr, "switchyard-load:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	cfg := harness.Config{SwitchyardBin: *bin, Log: stderr}
	if *brokers != "" {
		cfg.Brokers = strings.Split(*brokers, ",")
	}
	start := time.Now()
	h, err := harness.Start(ctx, cfg)
	if err != nil {
		fmt.Fprintln(stderr, "switchyard-load:", err)
		return 2
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer cancel()
		if err := h.Close(cctx); err != nil {
			fmt.Fprintln(stderr, "switchyard-load: closing the harness:", err)
		}
	}()
	sk, err := sink.Start("127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(stderr, "switchyard-load:", err)
		return 2
	}
	defer sk.Close()

	runner := scenario.NewRunner(h, sk, scenario.Options{
		Rate: *rate, Fraction: *fraction, Duration: *duration, Ramp: *ramp, Events: *events,
		CapacityEvents: *capacityEvents, CapacityTime: *capacityTime, PayloadBytes: *payload, Keys: *keys, Partitions: uint32(*partitions),
		Concurrency: *concurrency, ErrorPercent: *errPct, TimeoutPercent: *timeoutPct, FanOut: *fanout,
		DrainTimeout: *drain, Progress: stderr, ProgressEvery: *progress,
	})
	command := "cd loadtest && go run ./cmd/switchyard-load " + quoteArgs(args)
	if *reproduce != "" {
		command = *reproduce + "\n# which runs, in loadtest/:\n" + strings.TrimPrefix(command, "cd loadtest && ")
	}
	rep := &report.Report{
		Title: *title, Start: start, Command: command,
		Machine: report.DescribeMachine(h.KafkaVersion),
		Notes:   notes,
	}
	rep.Notes = append(rep.Notes,
		"Everything ran on this one machine: Kafka, Postgres, the control plane, the data-plane nodes, the load generator and the sink share its cores, so a figure includes the cost of the others.",
		"Latencies are measured from each event's intended send time (open loop); the ingest latency ends at the SDK's acknowledgement, the end-to-end latency at the sink's receipt of the first delivery.",
		"CPU is the average number of cores a process used during the open-loop phase and the drain after it (from /proc/<pid>/stat); RSS is the largest resident set sampled (from /proc/<pid>/status).")
	if *brokers != "" {
		rep.Notes = append(rep.Notes, "The Kafka broker was given with --kafka-brokers and may serve other work during the run; its CPU figure and every latency then include that load.")
	}
	o := runner.Options()
	rep.Settings = []report.Setting{
		{Name: "scenarios", Value: strings.Join(names, ", ")},
		{Name: "open-loop duration", Value: o.Duration.String()},
		{Name: "ramp", Value: o.Ramp.String()},
		{Name: "rate", Value: rateSetting(o)},
		{Name: "payload", Value: fmt.Sprintf("%d bytes", o.PayloadBytes)},
		{Name: "keys / partitions", Value: fmt.Sprintf("%d / %d", o.Keys, o.Partitions)},
		{Name: "capacity measurements", Value: fmt.Sprintf("at least %d events; ingest for at least %v", o.CapacityEvents, o.CapacityTime)},
		{Name: "webhook concurrency", Value: fmt.Sprint(o.Concurrency)},
		{Name: "failing sink", Value: fmt.Sprintf("%.0f%% 503, %.0f%% timeouts", o.ErrorPercent, o.TimeoutPercent)},
		{Name: "fan-out pipelines", Value: fmt.Sprint(o.FanOut)},
		{Name: "Kafka brokers", Value: strings.Join(h.Brokers, ",")},
	}

	var runErr error
	for _, n := range names {
		fmt.Fprintf(stderr, "==> scenario %s\n", n)
		t0 := time.Now()
		sc, err := runner.Run(ctx, n)
		if err != nil {
			runErr = err
			rep.Error = err.Error()
			fmt.Fprintln(stderr, "switchyard-load:", err)
			break
		}
		rep.Scenarios = append(rep.Scenarios, sc)
		fmt.Fprintf(stderr, "<== scenario %s: %.0fs, %d failed checks\n", n, time.Since(t0).Seconds(), len(sc.Failures))
	}
	rep.Ratios = scenario.Ratios(rep.Scenarios)
	rep.Headlines = scenario.Headlines(rep.Scenarios)

	fmt.Fprintln(stdout)
	_ = rep.WriteTable(stdout)
	fmt.Fprintf(stdout, "total %.0fs\n", time.Since(start).Seconds())
	if *out != "" {
		if err := write(rep, *out, *name); err != nil {
			fmt.Fprintln(stderr, "switchyard-load:", err)
			return 2
		}
	}
	switch {
	case runErr != nil:
		return 2
	case len(rep.Failed()) > 0:
		return 1
	}
	return 0
}

func rateSetting(o scenario.Options) string {
	if o.Rate > 0 {
		return fmt.Sprintf("%.0f events/s", o.Rate)
	}
	return fmt.Sprintf("%.0f%% of the capacity measured in the run", 100*o.Fraction)
}

// write writes the report as <dir>/<name>.json and <dir>/<name>.md.
func write(rep *report.Report, dir, name string) error {
	if name == "" {
		name = rep.Start.Format("2006-01-02")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var errs []error
	for _, f := range []struct {
		ext   string
		write func(io.Writer) error
	}{{".json", rep.WriteJSON}, {".md", rep.WriteMarkdown}} {
		path := filepath.Join(dir, name+f.ext)
		file, err := os.Create(path)
		if err != nil {
			return err
		}
		errs = append(errs, f.write(file), file.Close())
		fmt.Fprintln(os.Stderr, "wrote", path)
	}
	return errors.Join(errs...)
}

// quoteArgs joins args for a shell, quoting those that need it.
func quoteArgs(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t'\"$;&|<>()*?[]#~`\\") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		out[i] = a
	}
	return strings.Join(out, " ")
}

// rerender writes the markdown summary of a JSON report beside it, with
// the headlines and ratios computed again from its scenarios.
func rerender(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var rep report.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	rep.Ratios = scenario.Ratios(rep.Scenarios)
	rep.Headlines = scenario.Headlines(rep.Scenarios)
	var errs []error
	for _, f := range []struct {
		path  string
		write func(io.Writer) error
	}{{path, rep.WriteJSON}, {strings.TrimSuffix(path, ".json") + ".md", rep.WriteMarkdown}} {
		file, err := os.Create(f.path)
		if err != nil {
			return err
		}
		errs = append(errs, f.write(file), file.Close())
	}
	return errors.Join(errs...)
}
