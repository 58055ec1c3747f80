package scenario

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/switchyard-dev/switchyard/dataplane/record"
	"github.com/switchyard-dev/switchyard/internal/kafkaname"
	"github.com/switchyard-dev/switchyard/loadtest/baseline"
	"github.com/switchyard-dev/switchyard/loadtest/gen"
	"github.com/switchyard-dev/switchyard/loadtest/latency"
	"github.com/switchyard-dev/switchyard/loadtest/report"
	"github.com/switchyard-dev/switchyard/loadtest/sink"
	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
	"github.com/switchyard-dev/switchyard/sdk/switchyard"
)

// Names of the closed-loop measurements in a scenario's Capacity.
const (
	SDKIngest  = "Switchyard ingest (SDK Producer)"
	RawProduce = "raw franz-go produce"
	RawConsume = "raw franz-go consume"
	Delivery   = "Switchyard delivery (webhook)"
	RawHTTP    = "raw Go HTTP post"
)

// ingestCapacity publishes events to topic as fast as the SDK's Producer
// (default settings, so a bounded buffer) takes them, closed loop: at
// least CapacityEvents of them and, when minTime > 0, for at least
// minTime, so that the figure is sustained rather than a burst into
// buffers. Then it produces the same records with raw franz-go to a raw
// topic and consumes them back. It returns the three throughputs and the
// number of events; event i is r.event(scenario+"-capacity", i, at, false).
func (r *Runner) ingestCapacity(ctx context.Context, scenario string, client *switchyard.Client, topic *v1.Topic, minTime time.Duration) ([]baseline.Throughput, int, time.Time, error) {
	capScenario := scenario + "-capacity"
	if _, err := r.awaitTopic(ctx, client, topic.GetName(), capScenario); err != nil {
		return nil, 0, time.Time{}, err
	}
	minEvents := r.opts.CapacityEvents
	fmt.Fprintf(r.opts.Progress, "[%s] capacity: publishing at least %d events for at least %v with the SDK Producer, closed loop\n", scenario, minEvents, minTime)
	p, err := switchyard.NewProducer(client, topic.GetName())
	if err != nil {
		return nil, 0, time.Time{}, err
	}
	var failed atomic.Int64
	var firstErr atomic.Pointer[error]
	at := time.Now()
	start := time.Now()
	n := 0
	for n < minEvents || time.Since(start) < minTime {
		p.ProduceFunc(ctx, r.event(capScenario, int64(n), at, false), func(_ switchyard.Result, err error) {
			if err != nil {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, &err)
			}
		})
		n++
	}
	if err := p.Flush(ctx); err != nil {
		return nil, 0, time.Time{}, err
	}
	sdk := baseline.NewThroughput(SDKIngest, int64(n), time.Since(start))
	if err := p.Close(ctx); err != nil || failed.Load() > 0 {
		var first error
		if e := firstErr.Load(); e != nil {
			first = *e
		}
		return nil, 0, time.Time{}, fmt.Errorf("capacity publish: %d of %d failed: %w", failed.Load(), n, errors.Join(err, first))
	}
	fmt.Fprintf(r.opts.Progress, "[%s] capacity: producing the same %d records with raw franz-go\n", scenario, n)
	rawTopic := kafkaname.Prefix + r.h.TenantID() + ".raw-" + scenario + "-" + r.run
	if err := baseline.CreateTopic(ctx, r.h.Brokers, rawTopic, int32(r.opts.Partitions)); err != nil {
		return nil, 0, time.Time{}, err
	}
	produce, err := baseline.Produce(ctx, r.h.Brokers, n, func(i int) *kgo.Record {
		rec := record.Encode(r.h.TenantID(), topic.GetId(), protoEvent(r.event(capScenario, int64(i), at, false)))
		rec.Topic = rawTopic
		return rec
	})
	if err != nil {
		return nil, 0, time.Time{}, err
	}
	cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	consume, err := baseline.Consume(cctx, r.h.Brokers, rawTopic, int64(n))
	if err != nil {
		return nil, 0, time.Time{}, err
	}
	return []baseline.Throughput{sdk, produce, consume}, n, at, nil
}

func (r *Runner) ingest(ctx context.Context) (report.Scenario, error) {
	sc := report.Scenario{Description: "Publish only, no pipeline: the SDK's async Producer against one data-plane node. " +
		"Capacity is a closed loop through the SDK's bounded buffer for at least --capacity-time (a sustained rate, not a burst into buffers), " +
		"compared with raw franz-go produce and consume of the same records on the same broker; " +
		"the open loop then offers a fraction of that capacity and measures each event from its intended send time to its acknowledgement (acks=all)."}
	topic, err := r.h.CreateTopic(ctx, r.name("ingest"), r.opts.Partitions)
	if err != nil {
		return sc, err
	}
	client, err := r.h.Producer(r.h.Nodes[0])
	if err != nil {
		return sc, err
	}
	defer client.Close()
	caps, _, _, err := r.ingestCapacity(ctx, Ingest, client, topic, r.opts.CapacityTime)
	if err != nil {
		return sc, err
	}
	sc.Capacity = caps
	r.mu.Lock()
	r.ingestCap = caps[0].PerSecond
	r.mu.Unlock()
	rate, how := r.opts.Rate, "fixed by --rate"
	if rate == 0 {
		rate, how = r.opts.Fraction*caps[0].PerSecond, fmt.Sprintf("%.0f%% of the SDK ingest capacity measured above, %.0f events/s", 100*r.opts.Fraction, caps[0].PerSecond)
	}
	sampler := r.sampler()
	sampler.Start()
	res, err := r.openLoop(ctx, load{scenario: Ingest, topic: topic.GetName(), client: client, rate: rate})
	sc.Processes = sampler.Stop()
	if err != nil {
		return sc, err
	}
	fillLoad(&sc, rate, res)
	sc.Timeline = append([]string{"rate: " + how}, sc.Timeline...)
	return sc, nil
}

// pipelineSpec is one pipeline a scenario makes, with its route.
type pipelineSpec struct {
	name     string
	ordering v1.OrderingMode
	faults   sink.Faults
	retry    *v1.RetryPolicy
	timeout  time.Duration
}

// makePipelines creates a route and a pipeline per spec on topic. The
// routes verify the pipelines' webhook signatures.
func (r *Runner) makePipelines(ctx context.Context, topic *v1.Topic, specs []pipelineSpec) ([]*v1.Pipeline, []*sink.Route, error) {
	var pipes []*v1.Pipeline
	var routes []*sink.Route
	for _, s := range specs {
		secret := newSecret()
		rt, err := r.sink.Route(s.name, s.faults, secret)
		if err != nil {
			return nil, nil, err
		}
		timeout := s.timeout
		if timeout == 0 {
			timeout = 10 * time.Second
		}
		p, err := r.h.CreatePipeline(ctx, &v1.Pipeline{
			Name: s.name, TopicId: topic.GetId(), Ordering: s.ordering, RetryPolicy: s.retry,
			Destinations: []*v1.Destination{{
				Name:        "sink",
				MaxInFlight: uint32(r.opts.Concurrency),
				Kind: &v1.Destination_Webhook{Webhook: &v1.WebhookDestination{
					Url: rt.URL(), SigningSecret: secret, Timeout: durationpb.New(timeout),
				}},
			}},
		})
		if err != nil {
			return nil, nil, fmt.Errorf("creating pipeline %s: %w", s.name, err)
		}
		pipes = append(pipes, p)
		routes = append(routes, rt)
	}
	return pipes, routes, nil
}

// deliveryRun is the open-loop phase of a scenario with pipelines: warm
// up, offer the load, drain, count dead letters, fill sc.
func (r *Runner) deliveryRun(ctx context.Context, sc *report.Scenario, l load, pipes []*v1.Pipeline, routes []*sink.Route, dlExpected bool) error {
	var dlTopics, names []string
	for _, p := range pipes {
		dlTopics = append(dlTopics, p.GetDeadLetterTopic())
		names = append(names, p.GetName())
	}
	dls, err := readDeadLetters(r.h.Brokers, dlTopics)
	if err != nil {
		return err
	}
	defer dls.Close()
	warm, err := r.warmUp(ctx, l.client, l.topic, l.scenario, routes)
	if err != nil {
		return err
	}
	l.routes = routes
	sampler := r.sampler()
	sampler.Start()
	res, err := r.openLoop(ctx, l)
	if err != nil {
		sampler.Stop()
		return err
	}
	res.acked = append(res.acked, warm)
	tallies, drained := r.drain(ctx, l.scenario, routes, dlTopics, dls, res.acked, res.end)
	sc.Processes = sampler.Stop()
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := dls.CatchUp(cctx); err != nil {
		sc.Failures = append(sc.Failures, err.Error())
	}
	// Count again with every dead letter read.
	for i, rt := range routes {
		tallies[i] = rt.Tally(res.acked, dls.IDs(dlTopics[i]))
	}
	var dlRecords int64
	for _, t := range dlTopics {
		dlRecords += dls.Records(t)
	}
	fillLoad(sc, l.rate, res)
	// The warm-up event was published, acknowledged and delivered like the
	// others: count it, so acknowledged and delivered compare one to one.
	sc.Offered++
	sc.Acknowledged++
	ordered := pipes[0].GetOrdering() == v1.OrderingMode_ORDERING_MODE_KEY
	fillDelivery(sc, names, ordered, routes, tallies, dlRecords, dlExpected, drained)
	if dlExpected {
		short := 0
		for i, rt := range routes {
			for id := range dls.IDs(dlTopics[i]) {
				if max := pipes[i].GetRetryPolicy().GetMaxAttempts(); max > 0 && rt.Attempts(id) < int(max) {
					short++
				}
			}
		}
		if short > 0 {
			sc.Timeline = append(sc.Timeline, fmt.Sprintf("%d dead letters reached the sink fewer times than the retry policy's attempts (attempts refused by an open circuit breaker never reach it)", short))
		}
	}
	for _, p := range pipes {
		_ = r.h.Admin.Pipelines().Delete(ctx, p.GetId()) // idle consumers cost the next scenarios
	}
	return nil
}

func (r *Runner) e2e(ctx context.Context) (report.Scenario, error) {
	sc := report.Scenario{Description: "One topic, one KEY-ordered pipeline to a webhook on the in-process sink, one data-plane node. " +
		"Capacity: --capacity-events events published closed loop into a paused pipeline (ingest, with raw franz-go produce and consume of the same records), " +
		"then the pipeline resumed and drained (delivery), then a raw Go HTTP client posting the same bodies at the same concurrency to the same sink. " +
		"The open loop then runs at a fraction of min(ingest, delivery) capacity and measures end-to-end latency from intended send time to receipt."}
	client, err := r.h.Producer(r.h.Nodes[0])
	if err != nil {
		return sc, err
	}
	defer client.Close()

	// Capacity.
	capTopic, err := r.h.CreateTopic(ctx, r.name("e2e-capacity"), r.opts.Partitions)
	if err != nil {
		return sc, err
	}
	capPipes, capRoutes, err := r.makePipelines(ctx, capTopic, []pipelineSpec{{name: r.name("e2e-capacity"), ordering: v1.OrderingMode_ORDERING_MODE_KEY}})
	if err != nil {
		return sc, err
	}
	if _, err := r.h.Admin.Pipelines().Pause(ctx, capPipes[0].GetId()); err != nil {
		return sc, fmt.Errorf("pausing: %w", err)
	}
	time.Sleep(time.Second) // the pause reaches the node through the config stream
	caps, n, at, err := r.ingestCapacity(ctx, E2E, client, capTopic, 0)
	if err != nil {
		return sc, err
	}
	if n := capRoutes[0].Accepted(); n > 0 {
		sc.Timeline = append(sc.Timeline, fmt.Sprintf("%d events were delivered before the pause took effect; the delivery figure counts from the first delivery", n))
	}
	fmt.Fprintf(r.opts.Progress, "[%s] capacity: resuming the pipeline and draining %d events\n", E2E, n)
	if _, err := r.h.Admin.Pipelines().Resume(ctx, capPipes[0].GetId()); err != nil {
		return sc, fmt.Errorf("resuming: %w", err)
	}
	ids := make([]string, n)
	bodies := make([][]byte, n)
	for i := range n {
		ev := r.event(E2E+"-capacity", int64(i), at, false)
		ids[i], bodies[i] = ev.ID, ev.Data
	}
	deadline := time.Now().Add(r.opts.DrainTimeout)
	for capRoutes[0].Tally(ids, nil).Lost > 0 {
		if time.Now().After(deadline) {
			return sc, fmt.Errorf("capacity drain: %d events not delivered within %v", capRoutes[0].Tally(ids, nil).Lost, r.opts.DrainTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
	first, last := capRoutes[0].Window()
	delivery := baseline.NewThroughput(Delivery, int64(n), last.Sub(first))
	_ = r.h.Admin.Pipelines().Delete(ctx, capPipes[0].GetId())

	fmt.Fprintf(r.opts.Progress, "[%s] capacity: posting the same %d bodies with a raw Go HTTP client, %d at a time\n", E2E, len(bodies), r.opts.Concurrency)
	rawRoute, err := r.sink.Route(r.name("raw-http"), sink.Faults{})
	if err != nil {
		return sc, err
	}
	raw, err := baseline.Post(ctx, rawRoute.URL(), bodies, r.opts.Concurrency)
	if err != nil {
		return sc, err
	}
	sc.Capacity = append(caps, delivery, raw)
	// The ingest scenario's sustained figure, when it ran, is a better
	// bound than this scenario's sample.
	r.mu.Lock()
	ingestCap := r.ingestCap
	r.mu.Unlock()
	capacity := min(caps[0].PerSecond, delivery.PerSecond)
	if ingestCap > 0 {
		capacity = min(capacity, ingestCap)
	}
	r.mu.Lock()
	r.e2eCap, r.deliveryCap = capacity, delivery.PerSecond
	r.mu.Unlock()

	// Open loop.
	topic, err := r.h.CreateTopic(ctx, r.name("e2e"), r.opts.Partitions)
	if err != nil {
		return sc, err
	}
	pipes, routes, err := r.makePipelines(ctx, topic, []pipelineSpec{{name: r.name("e2e"), ordering: v1.OrderingMode_ORDERING_MODE_KEY}})
	if err != nil {
		return sc, err
	}
	rate, how := r.rate(1)
	sc.Timeline = append(sc.Timeline, "rate: "+how)
	err = r.deliveryRun(ctx, &sc, load{scenario: E2E, topic: topic.GetName(), client: client, rate: rate}, pipes, routes, false)
	return sc, err
}

func (r *Runner) failing(ctx context.Context) (report.Scenario, error) {
	o := r.opts
	sc := report.Scenario{Description: fmt.Sprintf("One pipeline (unordered) whose webhook answers %.0f%% of requests with 503 and holds %.0f%% until the 1 s request timeout. "+
		"Retry policy: 3 attempts, backoff 1 s to 5 s, through the nodes' delay tiers (1 s, 5 s). "+
		"Every acknowledged event must end delivered or dead-lettered; a dead letter is expected only for an event whose every attempt failed "+
		"(never for one the sink accepted). Held requests occupy delivery slots, so the rate is sized to the slots left; "+
		"the destination's circuit breaker (open at half of the last 10 s of attempts failing) stays closed, and every failure is retried on its own.", o.ErrorPercent, o.TimeoutPercent)}
	client, err := r.h.Producer(r.h.Nodes[0])
	if err != nil {
		return sc, err
	}
	defer client.Close()
	topic, err := r.h.CreateTopic(ctx, r.name("failing"), o.Partitions)
	if err != nil {
		return sc, err
	}
	pipes, routes, err := r.makePipelines(ctx, topic, []pipelineSpec{{
		name: r.name("failing"), ordering: v1.OrderingMode_ORDERING_MODE_NONE,
		faults:  sink.Faults{ErrorPercent: o.ErrorPercent, TimeoutPercent: o.TimeoutPercent},
		timeout: failTimeout,
		retry: &v1.RetryPolicy{
			MaxAttempts: 3, InitialBackoff: durationpb.New(time.Second), MaxBackoff: durationpb.New(5 * time.Second),
			Jitter: v1.Jitter_JITTER_EQUAL, MaxAge: durationpb.New(10 * time.Minute),
		},
	}})
	if err != nil {
		return sc, err
	}
	rate, how := r.failingRate(failTimeout)
	sc.Timeline = append(sc.Timeline, "rate: "+how)
	err = r.deliveryRun(ctx, &sc, load{scenario: Failing, topic: topic.GetName(), client: client, rate: rate}, pipes, routes, true)
	return sc, err
}

// failTimeout is the failing scenario's webhook timeout: how long a held
// request occupies a delivery slot.
const failTimeout = time.Second

// failingRate is the failing scenario's rate. Held requests keep a
// delivery slot for the whole timeout, so the destination's capacity with
// the failing sink is lower than with a healthy one: by Little's law each
// event holds a slot for 1/capacity × concurrency plus timeout share ×
// timeout. The open loop runs at the fraction of that reduced capacity.
func (r *Runner) failingRate(timeout time.Duration) (float64, string) {
	if r.opts.Rate > 0 {
		return r.opts.Rate, "fixed by --rate"
	}
	r.mu.Lock()
	capacity, delivery := r.e2eCap, r.deliveryCap
	r.mu.Unlock()
	if capacity == 0 || delivery == 0 {
		return r.rate(1)
	}
	conc := float64(r.opts.Concurrency)
	slot := conc/delivery + r.opts.TimeoutPercent/100*timeout.Seconds()
	reduced := min(capacity, conc/slot)
	return r.opts.Fraction * reduced, fmt.Sprintf("%.0f%% of the capacity left when %.0f%% of requests hold one of %d delivery slots for %v: %.0f of the %.0f events/s measured in this run",
		100*r.opts.Fraction, r.opts.TimeoutPercent, r.opts.Concurrency, timeout, reduced, capacity)
}

func (r *Runner) fanout(ctx context.Context) (report.Scenario, error) {
	n := r.opts.FanOut
	sc := report.Scenario{Description: fmt.Sprintf("One topic read by %d pipelines (unordered), each to its own webhook route: every event is delivered %d times. "+
		"Each pipeline must deliver every acknowledged event.", n, n)}
	client, err := r.h.Producer(r.h.Nodes[0])
	if err != nil {
		return sc, err
	}
	defer client.Close()
	topic, err := r.h.CreateTopic(ctx, r.name("fanout"), r.opts.Partitions)
	if err != nil {
		return sc, err
	}
	specs := make([]pipelineSpec, n)
	for i := range specs {
		specs[i] = pipelineSpec{name: r.name(fmt.Sprintf("fanout-%d", i+1)), ordering: v1.OrderingMode_ORDERING_MODE_NONE}
	}
	pipes, routes, err := r.makePipelines(ctx, topic, specs)
	if err != nil {
		return sc, err
	}
	rate, how := r.rate(n)
	sc.Timeline = append(sc.Timeline, "rate: "+how)
	err = r.deliveryRun(ctx, &sc, load{scenario: FanOut, topic: topic.GetName(), client: client, rate: rate}, pipes, routes, false)
	return sc, err
}

func (r *Runner) nodekill(ctx context.Context) (report.Scenario, error) {
	sc := report.Scenario{Description: "Two data-plane nodes share a KEY-ordered pipeline's partitions; events are published through the first. " +
		"A third of the way through, the second node is killed with SIGKILL; half-way through it is started again. " +
		"Nothing acknowledged may be lost; deliveries repeated after the kill are counted as duplicates (at-least-once), not failures."}
	for len(r.h.Nodes) < 2 {
		if _, err := r.h.AddNode(ctx); err != nil {
			return sc, err
		}
	}
	survivor, victim := r.h.Nodes[0], r.h.Nodes[len(r.h.Nodes)-1]
	client, err := r.h.Producer(survivor, victim)
	if err != nil {
		return sc, err
	}
	defer client.Close()
	topic, err := r.h.CreateTopic(ctx, r.name("nodekill"), r.opts.Partitions)
	if err != nil {
		return sc, err
	}
	pipes, routes, err := r.makePipelines(ctx, topic, []pipelineSpec{{name: r.name("nodekill"), ordering: v1.OrderingMode_ORDERING_MODE_KEY}})
	if err != nil {
		return sc, err
	}
	// Both nodes must have joined the pipeline's group before the kill
	// means anything: give the second its session's worth of time.
	time.Sleep(2 * time.Second)
	rate, how := r.rate(1)
	sc.Timeline = append(sc.Timeline, "rate: "+how)
	killAt, restartAt := r.opts.Duration/3, r.opts.Duration/2
	during := func(ctx context.Context, g *gen.Generator) []string {
		var tl []string
		if !sleepUntil(ctx, g, killAt) {
			return tl
		}
		before := routes[0].Accepted()
		victim.Kill()
		tl = append(tl, fmt.Sprintf("%.1fs: SIGKILL %s (%d deliveries so far)", g.Stats().Elapsed.Seconds(), victim.Name(), before))
		if !sleepUntil(ctx, g, restartAt) {
			return tl
		}
		t0 := time.Now()
		if err := victim.Restart(ctx); err != nil {
			tl = append(tl, fmt.Sprintf("restarting %s failed: %v", victim.Name(), err))
			return tl
		}
		tl = append(tl, fmt.Sprintf("%.1fs: %s started again (ready in %.1fs)", g.Stats().Elapsed.Seconds(), victim.Name(), time.Since(t0).Seconds()))
		return tl
	}
	err = r.deliveryRun(ctx, &sc, load{scenario: NodeKill, topic: topic.GetName(), client: client, rate: rate, during: during}, pipes, routes, false)
	return sc, err
}

// sleepUntil waits until the generator's run is at least d old.
func sleepUntil(ctx context.Context, g *gen.Generator, d time.Duration) bool {
	for g.Stats().Elapsed < d {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(20 * time.Millisecond):
		}
	}
	return true
}

// fillLoad sets sc's open-loop figures.
func fillLoad(sc *report.Scenario, rate float64, res loadResult) {
	sc.Seconds = res.seconds
	sc.TargetRate = rate
	sc.Offered, sc.Acknowledged, sc.PublishFailed = res.stats.Offered, res.stats.Acked, res.stats.Failed
	if res.seconds > 0 {
		sc.AchievedRate = float64(res.stats.Acked) / res.stats.Elapsed.Seconds()
	}
	sc.IngestLatency = res.stats.Latency
	sc.Timeline = append(sc.Timeline, res.timeline...)
	if res.stats.Failed > 0 {
		sc.Timeline = append(sc.Timeline, fmt.Sprintf("%d publishes failed at the client (not acknowledged, so not counted as lost)", res.stats.Failed))
	}
	if res.stats.Acked == 0 {
		sc.Failures = append(sc.Failures, "no event acknowledged")
	}
}

// worst returns, field by field, the larger of two summaries.
func worst(a, b latency.Summary) latency.Summary {
	return latency.Summary{
		Count: a.Count + b.Count, MeanMs: max(a.MeanMs, b.MeanMs), P50Ms: max(a.P50Ms, b.P50Ms), P90Ms: max(a.P90Ms, b.P90Ms),
		P99Ms: max(a.P99Ms, b.P99Ms), P999Ms: max(a.P999Ms, b.P999Ms), MaxMs: max(a.MaxMs, b.MaxMs),
	}
}
