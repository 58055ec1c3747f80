package scenario

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/switchyard-dev/switchyard/loadtest/gen"
	"github.com/switchyard-dev/switchyard/loadtest/report"
	"github.com/switchyard-dev/switchyard/loadtest/sink"
	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
	"github.com/switchyard-dev/switchyard/sdk/switchyard"
)

// load is one open-loop phase: events offered to a topic at a rate.
type load struct {
	scenario string
	topic    string
	client   *switchyard.Client
	rate     float64
	// routes are shown in the progress lines.
	routes []*sink.Route
	// during runs beside the load (e.g. kills a node); it returns
	// timeline lines.
	during func(ctx context.Context, g *gen.Generator) []string
}

// loadResult is what an open-loop phase did.
type loadResult struct {
	acked    []string
	stats    gen.Stats
	seconds  float64   // the schedule's length
	end      time.Time // when the last event was resolved
	timeline []string
}

// event returns event seq of a scenario: the key is seq modulo Keys and
// the payload carries the key's own sequence number and the intended time.
func (r *Runner) event(scenario string, seq int64, intended time.Time, warmup bool) *switchyard.Event {
	keys := int64(r.opts.Keys)
	key := fmt.Sprintf("k%d", seq%keys)
	body := sink.Payload{Key: key, Seq: seq / keys, Intended: intended.UnixNano(), Warmup: warmup}.Marshal(r.opts.PayloadBytes)
	id := fmt.Sprintf("%s-%s-%d", scenario, r.run, seq)
	if warmup {
		id = fmt.Sprintf("%s-%s-warmup-%d", scenario, r.run, seq)
	}
	return &switchyard.Event{
		ID: id, Source: "/loadtest", Type: "load.event", DataContentType: "application/json",
		Data: body, PartitionKey: key,
	}
}

// protoEvent is ev as ingest writes it, for the raw baselines.
func protoEvent(ev *switchyard.Event) *v1.Event {
	return &v1.Event{
		Id: ev.ID, Source: ev.Source, Type: ev.Type, DataContentType: ev.DataContentType,
		Data: ev.Data, PartitionKey: ev.PartitionKey,
	}
}

// openLoop offers the load and waits until every event is resolved.
func (r *Runner) openLoop(ctx context.Context, l load) (loadResult, error) {
	g, err := gen.New(gen.Config{Rate: l.rate, Duration: r.opts.Duration, Ramp: r.opts.Ramp, Events: r.opts.Events})
	if err != nil {
		return loadResult{}, err
	}
	// A buffer no run fills: the generator must never wait for room.
	p, err := switchyard.NewProducer(l.client, l.topic, switchyard.WithBufferSize(1<<22))
	if err != nil {
		return loadResult{}, err
	}
	var mu sync.Mutex
	acked := make([]string, 0, g.Schedule().Total())

	stopProgress := r.progress(l.scenario, g, l.routes)
	var timeline []string
	var wg sync.WaitGroup
	duringCtx, cancelDuring := context.WithCancel(ctx)
	defer cancelDuring()
	if l.during != nil {
		wg.Go(func() { timeline = l.during(duringCtx, g) })
	}
	runErr := g.Run(ctx, func(s gen.Shot) {
		ev := r.event(l.scenario, s.Seq, s.Intended, false)
		p.ProduceFunc(ctx, ev, func(_ switchyard.Result, err error) {
			if err == nil {
				mu.Lock()
				acked = append(acked, ev.ID)
				mu.Unlock()
			}
			g.Done(s, err)
		})
	})
	closeCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	_ = p.Close(closeCtx) // every event is resolved, and counted, by its callback
	end := time.Now()
	wg.Wait()
	stopProgress()
	if runErr != nil {
		return loadResult{}, runErr
	}
	mu.Lock()
	defer mu.Unlock()
	return loadResult{acked: acked, stats: g.Stats(), seconds: r.opts.Duration.Seconds(), end: end, timeline: timeline}, nil
}

// progress prints a line every ProgressEvery until the returned function
// is called.
func (r *Runner) progress(scenario string, g *gen.Generator, routes []*sink.Route) func() {
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(r.opts.ProgressEvery)
		defer t.Stop()
		var lastOffered int64
		last := time.Now()
		for {
			select {
			case <-stop:
				return
			case now := <-t.C:
				st := g.Stats()
				rate := float64(st.Offered-lastOffered) / now.Sub(last).Seconds()
				lastOffered, last = st.Offered, now
				line := fmt.Sprintf("[%s %5.0fs] offered %d (%.0f/s now) acked %d errors %d ack p50 %.1fms p99 %.1fms",
					scenario, st.Elapsed.Seconds(), st.Offered, rate, st.Acked, st.Failed, st.Latency.P50Ms, st.Latency.P99Ms)
				if len(routes) > 0 {
					var delivered int64
					for _, rt := range routes {
						delivered += rt.Accepted()
					}
					lat := routes[0].Latency()
					line += fmt.Sprintf(" delivered %d e2e p50 %.1fms p99 %.1fms", delivered, lat.P50Ms, lat.P99Ms)
				}
				fmt.Fprintln(r.opts.Progress, line)
			}
		}
	}()
	return func() { close(stop); <-done }
}

// drain waits until each route has every acknowledged event, delivered or
// (when dls reads dead letters) dead-lettered, or until DrainTimeout after
// since. It returns each route's tally and how long the wait took.
func (r *Runner) drain(ctx context.Context, scenario string, routes []*sink.Route, dlTopics []string, dls *deadLetters, acked []string, since time.Time) ([]sink.Tally, time.Duration) {
	deadline := since.Add(r.opts.DrainTimeout)
	lastPrint := time.Now()
	for {
		tallies := make([]sink.Tally, len(routes))
		var lost int64
		for i, rt := range routes {
			var dl map[string]bool
			if dls != nil {
				dl = dls.IDs(dlTopics[i])
			}
			tallies[i] = rt.Tally(acked, dl)
			lost += tallies[i].Lost
		}
		now := time.Now()
		if lost == 0 || now.After(deadline) || ctx.Err() != nil {
			return tallies, now.Sub(since)
		}
		if now.Sub(lastPrint) >= r.opts.ProgressEvery {
			fmt.Fprintf(r.opts.Progress, "[%s drain %4.0fs] %d events not yet delivered or dead-lettered\n", scenario, now.Sub(since).Seconds(), lost)
			lastPrint = now
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// warmUp publishes one event and waits until every route got it, so that
// the open loop does not measure the pipelines' start. It returns the
// event's id, to be counted with the others.
func (r *Runner) warmUp(ctx context.Context, client *switchyard.Client, topic, scenario string, routes []*sink.Route) (string, error) {
	id, err := r.awaitTopic(ctx, client, topic, scenario)
	if err != nil {
		return "", err
	}
	deadline := time.Now().Add(60 * time.Second)
	for _, rt := range routes {
		for rt.Accepted() == 0 {
			if time.Now().After(deadline) {
				return "", fmt.Errorf("warm-up event not delivered to %s within 60s", rt.Name())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return id, nil
}

// awaitTopic publishes one warm-up event to topic, again and again until
// the node knows the topic (a new topic reaches it through the config
// stream), and returns the event's id.
func (r *Runner) awaitTopic(ctx context.Context, client *switchyard.Client, topic, scenario string) (string, error) {
	ev := r.event(scenario, 0, time.Now(), true)
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := client.Publish(ctx, topic, ev)
		if err == nil {
			return ev.ID, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return "", fmt.Errorf("warm-up publish to %s: %w", topic, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// fillDelivery sets sc's delivery section and failures from the tallies.
func fillDelivery(sc *report.Scenario, names []string, ordered bool, routes []*sink.Route, tallies []sink.Tally, dlRecords int64, dlExpected bool, drained time.Duration) {
	d := &report.Delivery{Pipelines: len(routes), Ordered: ordered, DeadLetters: dlRecords, DeadLettersExpected: dlExpected, DrainSeconds: drained.Seconds()}
	for i, t := range tallies {
		lat := routes[i].Latency()
		d.PerPipeline = append(d.PerPipeline, report.PipelineTally{Name: names[i], Tally: t, E2ELatency: lat})
		d.Total = addTally(d.Total, t)
		d.E2ELatency = worst(d.E2ELatency, lat)
	}
	sc.Delivery = d
	if d.Total.Lost > 0 {
		sc.Failures = append(sc.Failures, fmt.Sprintf("%d events lost (acknowledged, never delivered nor dead-lettered within %.0fs of the last publish)", d.Total.Lost, drained.Seconds()))
	}
	if !dlExpected && dlRecords > 0 {
		sc.Failures = append(sc.Failures, fmt.Sprintf("%d unexpected dead letters", dlRecords))
	}
	if d.Total.DeadLetteredAfterDelivery > 0 {
		sc.Failures = append(sc.Failures, fmt.Sprintf("%d events dead-lettered although the sink had accepted them", d.Total.DeadLetteredAfterDelivery))
	}
	if d.Total.BadSignatures > 0 {
		sc.Failures = append(sc.Failures, fmt.Sprintf("%d deliveries with a bad webhook signature", d.Total.BadSignatures))
	}
	if d.Total.Malformed > 0 {
		sc.Failures = append(sc.Failures, fmt.Sprintf("%d deliveries with a malformed payload", d.Total.Malformed))
	}
}

func addTally(a, b sink.Tally) sink.Tally {
	a.Expected += b.Expected
	a.Delivered += b.Delivered
	a.DeadLettered += b.DeadLettered
	a.Lost += b.Lost
	a.Duplicates += b.Duplicates
	a.OutOfOrder += b.OutOfOrder
	a.Unexpected += b.Unexpected
	a.DeadLetteredAfterDelivery += b.DeadLetteredAfterDelivery
	a.Requests += b.Requests
	a.InjectedErrors += b.InjectedErrors
	a.InjectedTimeouts += b.InjectedTimeouts
	a.BadSignatures += b.BadSignatures
	a.Malformed += b.Malformed
	return a
}
