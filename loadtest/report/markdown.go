package report

import (
	"fmt"
	"io"
	"strings"
)

// WriteMarkdown writes the report as a markdown summary: machine, command,
// verdict, ratios, a table of scenarios, then each scenario's details.
func (r *Report) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("# %s\n\n", r.Title)
	p("Run %s.\n\n", r.Start.UTC().Format("2006-01-02 15:04 MST"))
	p("Reproduce:\n\n```sh\n%s\n```\n\n", r.Command)

	p("## Machine\n\n| | |\n| --- | --- |\n")
	m := r.Machine
	p("| CPU | %s |\n| cores | %d |\n| memory | %.1f GiB |\n| kernel | %s |\n| OS | %s |\n| Go | %s |\n| Kafka | %s |\n\n",
		m.CPU, m.Cores, m.MemoryGiB, m.Kernel, m.OS, m.GoVersion, m.KafkaVersion)

	p("## Verdict\n\n")
	if failed := r.Failed(); len(failed) > 0 {
		p("**FAILED**:\n\n")
		for _, f := range failed {
			p("- %s\n", f)
		}
		p("\n")
	} else {
		p("Passed: no event lost, no unexpected dead letter.\n\n")
	}

	if len(r.Headlines) > 0 {
		p("## Headline figures\n\n")
		for _, h := range r.Headlines {
			p("- %s\n", h)
		}
		p("\n")
	}

	if len(r.Ratios) > 0 {
		p("## Ratios to the raw baselines (same run, same broker, same sink)\n\n")
		p("| ratio | value | Switchyard | baseline |\n| --- | ---: | --- | --- |\n")
		for _, x := range r.Ratios {
			p("| %s | %s | %s | %s |\n", x.Name, fmtFloat(x.Value), x.Numerator, x.Denominator)
		}
		p("\n")
	}

	p("## Scenarios\n\n")
	p("Latencies in ms as p50 / p90 / p99 / p99.9 / max, from each event's intended send time (open loop).\n\n")
	p("| scenario | target/s | achieved/s | acked | failed | delivered | lost | duplicates | out of order | dead letters | ingest latency | end-to-end latency |\n")
	p("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |\n")
	for _, s := range r.Scenarios {
		delivered, lost, dups, ooo, dl, e2e := "–", "–", "–", "–", "–", "–"
		if d := s.Delivery; d != nil {
			delivered, lost, dups, ooo = fmtCount(d.Total.Delivered), fmtCount(d.Total.Lost), fmtCount(d.Total.Duplicates), fmtOrder(d)
			dl = fmtCount(d.DeadLetters)
			e2e = fmtLatency(d.E2ELatency)
		}
		p("| %s | %s | %s | %d | %d | %s | %s | %s | %s | %s | %s | %s |\n", s.Name, fmtFloat(s.TargetRate), fmtFloat(s.AchievedRate),
			s.Acknowledged, s.PublishFailed, delivered, lost, dups, ooo, dl, fmtLatency(s.IngestLatency), e2e)
	}
	p("\n")

	for _, s := range r.Scenarios {
		p("### %s\n\n%s\n\n", s.Name, s.Description)
		if len(s.Failures) > 0 {
			p("Failed checks:\n\n")
			for _, f := range s.Failures {
				p("- %s\n", f)
			}
			p("\n")
		}
		p("Open loop for %.0f s at %s events/s: %d offered, %d acknowledged, %d failed.\n\n", s.Seconds, fmtFloat(s.TargetRate), s.Offered, s.Acknowledged, s.PublishFailed)
		if len(s.Capacity) > 0 {
			p("| closed-loop measurement | events | seconds | events/s |\n| --- | ---: | ---: | ---: |\n")
			for _, t := range s.Capacity {
				p("| %s | %d | %s | %s |\n", t.Name, t.Events, fmtFloat(t.Seconds), fmtFloat(t.PerSecond))
			}
			p("\n")
		}
		if d := s.Delivery; d != nil {
			p("| pipeline | expected | delivered | dead-lettered | lost | duplicates | out of order | unexpected | requests | injected 5xx | injected timeouts | e2e latency (ms) |\n")
			p("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n")
			for _, pt := range d.PerPipeline {
				t := pt.Tally
				p("| %s | %d | %d | %d | %d | %d | %d | %d | %d | %d | %d | %s |\n", pt.Name, t.Expected, t.Delivered, t.DeadLettered, t.Lost,
					t.Duplicates, t.OutOfOrder, t.Unexpected, t.Requests, t.InjectedErrors, t.InjectedTimeouts, fmtLatency(pt.E2ELatency))
			}
			p("\nDead letters read from the dead-letter topics: %d (%s). Drained %s s after the last publish.\n\n",
				d.DeadLetters, map[bool]string{true: "expected", false: "none expected"}[d.DeadLettersExpected], fmtFloat(d.DrainSeconds))
		}
		if len(s.Timeline) > 0 {
			for _, e := range s.Timeline {
				p("- %s\n", e)
			}
			p("\n")
		}
		if len(s.Processes) > 0 {
			p("| process | avg CPU (cores) | peak RSS (MiB) |\n| --- | ---: | ---: |\n")
			for _, u := range s.Processes {
				name := u.Name
				if u.Restarts > 0 {
					name += fmt.Sprintf(" (restarted %d×)", u.Restarts)
				}
				p("| %s | %s | %s |\n", name, fmtFloat(u.CPUCores), fmtFloat(u.PeakRSSMiB))
			}
			p("\n")
		}
	}

	if len(r.Settings) > 0 {
		p("## Settings\n\n| option | value |\n| --- | --- |\n")
		for _, s := range r.Settings {
			p("| %s | %s |\n", s.Name, s.Value)
		}
		p("\n")
	}
	if len(r.Notes) > 0 {
		p("## Notes\n\n")
		for _, n := range r.Notes {
			p("- %s\n", n)
		}
		p("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteTable writes a compact plain-text table of the scenarios and ratios,
// for a terminal or a CI log.
func (r *Report) WriteTable(w io.Writer) error {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("%-9s %9s %9s %8s %6s %9s %5s %5s %5s %5s  %-28s %s\n", "scenario", "target/s", "achieved", "acked", "failed",
		"delivered", "lost", "dups", "ooo", "dlq", "ingest p50/p90/p99/p99.9/max", "e2e p50/p90/p99/p99.9/max (ms)")
	for _, s := range r.Scenarios {
		delivered, lost, dups, ooo, dl, e2e := "-", "-", "-", "-", "-", "-"
		if d := s.Delivery; d != nil {
			delivered, lost, dups, ooo = fmtCount(d.Total.Delivered), fmtCount(d.Total.Lost), fmtCount(d.Total.Duplicates), fmtOrder(d)
			dl, e2e = fmtCount(d.DeadLetters), fmtLatency(d.E2ELatency)
		}
		p("%-9s %9s %9s %8d %6d %9s %5s %5s %5s %5s  %-28s %s\n", s.Name, fmtFloat(s.TargetRate), fmtFloat(s.AchievedRate), s.Acknowledged,
			s.PublishFailed, delivered, lost, dups, ooo, dl, fmtLatency(s.IngestLatency), e2e)
	}
	for _, s := range r.Scenarios {
		for _, t := range s.Capacity {
			p("capacity  %-9s %-28s %8d events in %6ss = %s/s\n", s.Name, t.Name, t.Events, fmtFloat(t.Seconds), fmtFloat(t.PerSecond))
		}
	}
	for _, x := range r.Ratios {
		p("ratio     %-40s %s  (%s / %s)\n", x.Name, fmtFloat(x.Value), x.Numerator, x.Denominator)
	}
	for _, s := range r.Scenarios {
		for _, u := range s.Processes {
			p("process   %-9s %-16s cpu %5s cores  peak rss %6s MiB\n", s.Name, u.Name, fmtFloat(u.CPUCores), fmtFloat(u.PeakRSSMiB))
		}
	}
	for _, s := range r.Scenarios {
		if d := s.Delivery; d != nil {
			unexpected := d.DeadLetters
			if d.DeadLettersExpected {
				unexpected = d.Total.DeadLetteredAfterDelivery
			}
			p("check     %-9s lost=%d duplicates=%d dead_letters=%d unexpected_dead_letters=%d\n",
				s.Name, d.Total.Lost, d.Total.Duplicates, d.DeadLetters, unexpected)
		}
	}
	if failed := r.Failed(); len(failed) > 0 {
		for _, f := range failed {
			p("FAILED    %s\n", f)
		}
	} else {
		p("PASSED    no event lost, no unexpected dead letter\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// fmtOrder shows out-of-order deliveries where order is promised.
func fmtOrder(d *Delivery) string {
	if !d.Ordered {
		return "n/a"
	}
	return fmtCount(d.Total.OutOfOrder)
}
