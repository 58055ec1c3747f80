package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"

	"github.com/switchyard-dev/switchyard/dataplane/deliver"
	"github.com/switchyard-dev/switchyard/dataplane/record"
	"github.com/switchyard-dev/switchyard/internal/kafkaname"
	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
)

// tierConsumer reads one retry tier for every pipeline.
type tierConsumer struct {
	r    *Runner
	tier Tier
	c    *consumer
}

// newTierConsumer makes the consumer of tier t.
func (r *Runner) newTierConsumer(t Tier) (*tierConsumer, error) {
	tc := &tierConsumer{r: r, tier: t}
	tc.c = &consumer{
		r:        r,
		log:      r.cfg.Logger.With("tier", t.Delay.String()),
		group:    t.Group,
		topic:    t.Topic,
		cap:      newCapacity(r.cfg.MaxInFlight),
		dispatch: tc.dispatch,
		onNew:    tc.startLane,
		parts:    make(map[topicPartition]*partState),
	}
	cl, err := kgo.NewClient(r.clientOpts(t.Group, t.Topic, kgo.NewOffset().AtStart(), tc.c)...)
	if err != nil {
		return nil, fmt.Errorf("pipeline: retry tier %s: kafka client: %w", t.Delay, err)
	}
	tc.c.cl = cl
	return tc, nil
}

func (tc *tierConsumer) run(ctx context.Context) { tc.c.run(ctx) }

// dispatch queues a record behind the others of its partition.
func (tc *tierConsumer) dispatch(ps *partState, q queued) {
	ps.mu.Lock()
	ps.queue = append(ps.queue, q)
	ps.mu.Unlock()
	select {
	case ps.wake <- struct{}{}:
	default:
	}
}

// startLane starts the goroutine that takes a partition's records in order,
// waits until each is due and starts its attempt.
func (tc *tierConsumer) startLane(ps *partState) {
	ps.wg.Go(func() { tc.lane(ps) })
}

func (tc *tierConsumer) lane(ps *partState) {
	for {
		ps.mu.Lock()
		if ps.intake.Err() != nil {
			rest := ps.queue
			ps.queue = nil
			ps.mu.Unlock()
			for _, q := range rest {
				tc.c.finish(ps, q.ticket, false)
			}
			return
		}
		if len(ps.queue) == 0 {
			ps.mu.Unlock()
			select {
			case <-ps.intake.Done():
			case <-ps.wake:
			}
			continue
		}
		q := ps.queue[0]
		ps.mu.Unlock()
		// Wait until due, but no longer than the tier's delay from when the
		// record was written: a record due later goes round again.
		due := tc.due(q.rec)
		until := due
		if limit := q.rec.Timestamp.Add(tc.tier.Delay); limit.Before(until) {
			until = limit
		}
		if !sleep(ps.intake, until.Sub(tc.r.cfg.Now())) {
			continue // intake stopped: the loop hands the queue back
		}
		ps.mu.Lock()
		ps.queue = ps.queue[1:]
		ps.mu.Unlock()
		ps.wg.Go(func() {
			tc.c.finish(ps, q.ticket, tc.process(ps.ctx, q.rec, due))
		})
	}
}

// due returns when a retry record is due; now for a record without a valid
// sy-due.
func (tc *tierConsumer) due(rec *kgo.Record) time.Time {
	v, _ := record.Header(rec, kafkaname.HeaderDue)
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return tc.r.cfg.Now()
	}
	return t
}

// process makes the next attempt of a retry record and reports whether it
// reached a final outcome.
func (tc *tierConsumer) process(ctx context.Context, rec *kgo.Record, due time.Time) bool {
	r := tc.r
	now := r.cfg.Now()
	if now.Before(due) {
		// Due after the tier's delay: round again, unchanged.
		return r.produce(ctx, copyRecord(rec, tc.tier.Topic))
	}
	pid, _ := record.Header(rec, kafkaname.HeaderPipeline)
	dname, _ := record.Header(rec, kafkaname.HeaderDestination)
	snap := r.cfg.Snapshots.Current()
	p, ok := snap.Pipeline(pid)
	var dest *v1.Destination
	if ok {
		for _, d := range p.GetDestinations() {
			if d.GetName() == dname {
				dest = d
			}
		}
	}
	if dest == nil {
		r.cfg.Logger.Warn("retry dropped: pipeline or destination gone", "pipeline", pid, "destination", dname, "origin", originOf(rec))
		r.cfg.Metrics.record(pid, ResultDropped)
		return true
	}
	if p.GetPaused() {
		out := copyRecord(rec, tc.tier.Topic)
		record.SetHeader(out, kafkaname.HeaderDue, now.Add(tc.tier.Delay).UTC().Format(time.RFC3339Nano))
		return r.produce(ctx, out)
	}
	a := &attempt{p: p, pol: policyOf(p.GetRetryPolicy()), dest: dest, rec: rec, first: now}
	override, overridden := record.Header(rec, kafkaname.HeaderDestinationOverride)
	a.redrive, _ = record.Header(rec, kafkaname.HeaderRedrive)
	if v, ok := record.Header(rec, kafkaname.HeaderOrigin); ok {
		a.origin = v
	} else {
		a.origin = originOf(rec)
	}
	made, err := strconv.Atoi(headerOr(rec, kafkaname.HeaderAttempt, ""))
	if err != nil || made < 1 {
		made = 1
	}
	a.n = made + 1
	if t, err := time.Parse(time.RFC3339Nano, headerOr(rec, kafkaname.HeaderFirstAttempt, "")); err == nil {
		a.first = t
	}
	if overridden {
		d, target, err := overrideOf(dest, override)
		if err != nil {
			return r.deadLetter(ctx, a, ReasonMalformed, deliver.Result{Err: err})
		}
		a.dest, a.target = d, target
	}
	dec, err := record.Decode(rec)
	if err != nil {
		return r.deadLetter(ctx, a, ReasonMalformed, deliver.Result{Err: err})
	}
	a.ev = dec.Event // the delivered event, once transformed, below
	progs, err := r.programsFor(p)
	if err == nil {
		var ev *v1.Event
		if ev, err = progs.apply(ctx, dec.Event); err == nil {
			a.ev = ev
		}
	}
	if err != nil {
		if ctx.Err() != nil {
			return false
		}
		return r.deadLetter(ctx, a, ReasonTransformError, deliver.Result{Err: err})
	}
	return r.settleUnordered(ctx, a, r.deliverOnce(ctx, a))
}

// overrideOf returns the destination a retry record's override header
// (kafkaname.HeaderDestinationOverride) makes of the pipeline's destination
// dest: dest's name and limits with the override's target. The signing
// secrets stay those of dest's name. It also returns the target: the
// webhook URL or Kafka topic.
func overrideOf(dest *v1.Destination, header string) (*v1.Destination, string, error) {
	o := new(v1.Destination)
	if err := proto.Unmarshal([]byte(header), o); err != nil {
		return nil, "", fmt.Errorf("destination override: %w", err)
	}
	d := proto.CloneOf(dest)
	switch {
	case o.GetWebhook() != nil:
		wh := proto.CloneOf(o.GetWebhook())
		wh.SigningSecret = ""
		d.Kind = &v1.Destination_Webhook{Webhook: wh}
		return d, wh.GetUrl(), nil
	case o.GetKafka() != nil:
		d.Kind = &v1.Destination_Kafka{Kafka: proto.CloneOf(o.GetKafka())}
		return d, o.GetKafka().GetTopic(), nil
	}
	return nil, "", errors.New("destination override: no webhook or Kafka target")
}

// headerOr returns the value of a header, or def.
func headerOr(rec *kgo.Record, key, def string) string {
	if v, ok := record.Header(rec, key); ok {
		return v
	}
	return def
}
