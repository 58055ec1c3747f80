package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"

	"github.com/switchyard-dev/switchyard/dataplane/deliver"
	"github.com/switchyard-dev/switchyard/dataplane/record"
	"github.com/switchyard-dev/switchyard/dataplane/snapshot"
	"github.com/switchyard-dev/switchyard/internal/acklog"
	"github.com/switchyard-dev/switchyard/internal/celenv"
	"github.com/switchyard-dev/switchyard/internal/kafkaname"
	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
)

// programs are a pipeline's compiled filter and transform.
type programs struct {
	key       string
	types     []string
	filter    *celenv.Program // nil: no expression
	transform *celenv.Program // nil: no transform
}

// programsFor returns the compiled programs of p, compiling them when its
// filter or transform changed.
func (r *Runner) programsFor(p *v1.Pipeline) (*programs, error) {
	types := p.GetFilter().GetEventTypes()
	fexpr := p.GetFilter().GetExpression()
	texpr := p.GetTransform().GetExpression()
	key := strings.Join(types, "\x00") + "\x01" + fexpr + "\x01" + texpr
	r.progMu.Lock()
	if pr, ok := r.progs[p.GetId()]; ok && pr.key == key {
		r.progMu.Unlock()
		return pr, nil
	}
	r.progMu.Unlock()
	pr := &programs{key: key, types: types}
	var err error
	if fexpr != "" {
		if pr.filter, err = r.env.CompileFilter(fexpr); err != nil {
			return nil, fmt.Errorf("compiling filter of pipeline %s: %w", p.GetId(), err)
		}
	}
	if texpr != "" {
		if pr.transform, err = r.env.CompileTransform(texpr); err != nil {
			return nil, fmt.Errorf("compiling transform of pipeline %s: %w", p.GetId(), err)
		}
	}
	r.progMu.Lock()
	r.progs[p.GetId()] = pr
	r.progMu.Unlock()
	return pr, nil
}

// forgetPrograms drops the programs of pipelines not in snap.
func (r *Runner) forgetPrograms(snap *snapshot.Snapshot) {
	r.progMu.Lock()
	defer r.progMu.Unlock()
	for id := range r.progs {
		if _, ok := snap.Pipeline(id); !ok {
			delete(r.progs, id)
		}
	}
}

// match applies the filter to ev.
func (pr *programs) match(ctx context.Context, ev *v1.Event) (bool, error) {
	if !celenv.MatchTypes(pr.types, ev.GetType()) {
		return false, nil
	}
	if pr.filter == nil {
		return true, nil
	}
	ok, err := pr.filter.Match(ctx, ev)
	if err != nil {
		return false, fmt.Errorf("filter: %w", err)
	}
	return ok, nil
}

// apply returns the event to deliver: ev itself without a transform, or a
// copy whose data is the transform's JSON.
func (pr *programs) apply(ctx context.Context, ev *v1.Event) (*v1.Event, error) {
	if pr.transform == nil {
		return ev, nil
	}
	data, err := pr.transform.Transform(ctx, ev)
	if err != nil {
		return nil, fmt.Errorf("transform: %w", err)
	}
	out := proto.CloneOf(ev)
	out.Data = data
	out.DataContentType = "application/json"
	return out, nil
}

// attempt is one delivery attempt of one record to one destination.
type attempt struct {
	p     *v1.Pipeline
	pol   retryPolicy
	dest  *v1.Destination
	rec   *kgo.Record // the record as read: original or from a retry tier
	ev    *v1.Event   // the event to send (transformed)
	n     int         // this attempt's number, from 1
	first time.Time   // when the first attempt was made
	// origin is "<topic>/<partition>/<offset>" of the original record.
	origin string
	// ingest is when the broker stored the original record; zero when the
	// attempt read a retry record.
	ingest time.Time
	// orig is the event as published (before the transform), when decoded.
	orig *v1.Event
	// payload says the next ack carries orig's data (see package acklog):
	// set for the first ack of a record per pipeline when the tenant keeps
	// payloads, cleared once that ack is written.
	payload bool
	// target is the webhook URL or Kafka topic of a destination override;
	// empty when dest is the pipeline's own.
	target string
	// redrive is the sy-redrive stamp of a redriven retry record; empty
	// otherwise.
	redrive string
	// acks, when set, collects the acks of the attempt's record instead of
	// waiting for each (see ackWait); nil writes each ack synchronously.
	acks *ackWait
}

// ackWait collects the acks written for one record without waiting for
// the broker, so that a KEY lane may go on to the key's next record once a
// delivery is settled: the record becomes final for the commit watermark
// only when wait reports every ack acknowledged.
type ackWait struct {
	wg      sync.WaitGroup
	written atomic.Bool
	failed  atomic.Bool
}

// add counts one more ack in flight.
func (w *ackWait) add() {
	w.written.Store(true)
	w.wg.Add(1)
}

// done settles one ack: acknowledged or given up.
func (w *ackWait) done(ok bool) {
	if !ok {
		w.failed.Store(true)
	}
	w.wg.Done()
}

// pending reports whether any ack was written through w.
func (w *ackWait) pending() bool { return w.written.Load() }

// wait waits for every ack and reports whether all were acknowledged.
func (w *ackWait) wait() bool {
	w.wg.Wait()
	return !w.failed.Load()
}

// keepsPayloads reports whether the ledger may keep the payloads of a
// tenant's events, as the current configuration says. An unknown tenant's
// are not kept.
func (r *Runner) keepsPayloads(tenantID string) bool {
	t, ok := r.cfg.Snapshots.Current().Tenant(tenantID)
	return ok && !t.GetRetention().GetDropPayloads()
}

// originOf names where rec was read.
func originOf(rec *kgo.Record) string {
	return rec.Topic + "/" + strconv.FormatInt(int64(rec.Partition), 10) + "/" + strconv.FormatInt(rec.Offset, 10)
}

// deliverOnce makes the attempt.
func (r *Runner) deliverOnce(ctx context.Context, a *attempt) deliver.Result {
	tp, _ := record.Header(a.rec, kafkaname.HeaderTraceparent)
	req := &deliver.Request{
		TenantID:     a.p.GetTenantId(),
		PipelineID:   a.p.GetId(),
		Destination:  a.dest,
		Secrets:      r.cfg.Snapshots.Current().SigningSecrets(a.p.GetId(), a.dest.GetName()),
		Event:        a.ev,
		Attempt:      a.n,
		NonRetryable: a.pol.nonRetryable,
		Traceparent:  tp,
	}
	return r.cfg.Deliverer.Deliver(ctx, req)
}

// attemptsUsed is how many attempts count after res. A result the
// deliverer gave without sending (an open circuit breaker) uses none, so a
// destination's outage is bounded by the policy's max_age instead of burning
// through max_attempts while its breaker is open.
func attemptsUsed(a *attempt, res deliver.Result) int {
	if errors.Is(res.Err, deliver.ErrCircuitOpen) {
		return a.n - 1
	}
	return a.n
}

// nextAttempt is when and as which attempt a failed delivery goes again.
type nextAttempt struct {
	used  int           // attempts used so far
	delay time.Duration // until the next attempt
}

// settle handles what result res of attempt a at now decides on its own: a
// delivery (acked), a permanent failure or an attempt out of its policy's
// budget (dead-lettered). It returns nil and whether the record is final
// for the destination in those cases, and when ctx ended first (false);
// otherwise the next attempt the caller is to schedule.
func (r *Runner) settle(ctx context.Context, a *attempt, res deliver.Result, now time.Time) (*nextAttempt, bool) {
	switch res.Outcome {
	case deliver.Delivered:
		if !r.ack(ctx, a, acklog.Delivered, "", res, time.Time{}) {
			return nil, false
		}
		r.cfg.Metrics.delivered(a.p.GetId(), eventTime(a.ev), now)
		return nil, true
	case deliver.Permanent:
		return nil, r.deadLetter(ctx, a, permanentReason(res), res)
	}
	if ctx.Err() != nil {
		// Cut short by shutdown or revocation: not an attempt that counts.
		return nil, false
	}
	used := attemptsUsed(a, res)
	delay, giveUp := a.pol.next(used, a.first, now, res.RetryAfter, r.rnd)
	if giveUp != "" {
		return nil, r.deadLetter(ctx, a, giveUp, res)
	}
	return &nextAttempt{used: used, delay: delay}, false
}

// settleUnordered routes the result of an attempt of an unordered pipeline:
// delivered, to a retry tier, or to the dead-letter topic. It reports
// whether the record is final for the destination; it is not when ctx ended
// first.
func (r *Runner) settleUnordered(ctx context.Context, a *attempt, res deliver.Result) bool {
	now := r.cfg.Now()
	next, final := r.settle(ctx, a, res, now)
	if next == nil {
		return final
	}
	used, delay := next.used, next.delay
	t := tierFor(r.cfg.Tiers, delay)
	out := copyRecord(a.rec, t.Topic)
	record.SetHeader(out, kafkaname.HeaderPipeline, a.p.GetId())
	record.SetHeader(out, kafkaname.HeaderDestination, a.dest.GetName())
	record.SetHeader(out, kafkaname.HeaderAttempt, strconv.Itoa(used))
	record.SetHeader(out, kafkaname.HeaderFirstAttempt, a.first.UTC().Format(time.RFC3339Nano))
	record.SetHeader(out, kafkaname.HeaderDue, now.Add(delay).UTC().Format(time.RFC3339Nano))
	record.SetHeader(out, kafkaname.HeaderOrigin, a.origin)
	setResultHeaders(out, res)
	if !r.produce(ctx, out) || !r.ack(ctx, a, acklog.Retrying, "", res, now.Add(delay)) {
		return false
	}
	r.cfg.Metrics.retry(a.p.GetId(), t.Delay.String())
	return true
}

// deliverInPlace delivers an attempt of a KEY-ordered pipeline, retrying in
// place with the policy's backoff until it is delivered or dead-lettered.
// It reports whether the record is final for the destination; it is not
// when ctx ended first.
func (r *Runner) deliverInPlace(ctx context.Context, a *attempt) bool {
	for {
		res := r.deliverOnce(ctx, a)
		now := r.cfg.Now()
		next, final := r.settle(ctx, a, res, now)
		if next == nil {
			return final
		}
		used, delay := next.used, next.delay
		if !r.ack(ctx, a, acklog.Retrying, "", res, now.Add(delay)) {
			return false
		}
		r.cfg.Metrics.retry(a.p.GetId(), "key")
		if !sleep(ctx, delay) {
			return false
		}
		a.n = used + 1
	}
}

// deadLetter writes the attempt's record to the pipeline's dead-letter
// topic and reports whether the write was acknowledged.
func (r *Runner) deadLetter(ctx context.Context, a *attempt, reason string, res deliver.Result) bool {
	out := copyRecord(a.rec, deadLetterTopic(a.p))
	record.SetHeader(out, kafkaname.HeaderPipeline, a.p.GetId())
	if a.dest != nil {
		record.SetHeader(out, kafkaname.HeaderDestination, a.dest.GetName())
	}
	record.SetHeader(out, kafkaname.HeaderReason, reason)
	record.SetHeader(out, kafkaname.HeaderAttempt, strconv.Itoa(a.n))
	record.SetHeader(out, kafkaname.HeaderFirstAttempt, a.first.UTC().Format(time.RFC3339Nano))
	record.SetHeader(out, kafkaname.HeaderOrigin, a.origin)
	setResultHeaders(out, res)
	if !r.produce(ctx, out) || !r.ack(ctx, a, acklog.DeadLettered, reason, res, time.Time{}) {
		return false
	}
	r.cfg.Metrics.deadLetter(a.p.GetId(), reason)
	r.cfg.Logger.Debug("dead-lettered", "pipeline", a.p.GetId(), "destination", a.dest.GetName(),
		"reason", reason, "attempt", a.n, "origin", a.origin)
	return true
}

// setResultHeaders records the last status and error of a result.
func setResultHeaders(out *kgo.Record, res deliver.Result) {
	record.SetHeader(out, kafkaname.HeaderLastStatus, strconv.Itoa(res.StatusCode))
	if res.Err != nil {
		msg := res.Err.Error()
		if len(msg) > maxErrorHeader {
			msg = msg[:maxErrorHeader]
		}
		record.SetHeader(out, kafkaname.HeaderLastError, msg)
	}
}

// deadLetterTopic returns the pipeline's dead-letter topic.
func deadLetterTopic(p *v1.Pipeline) string {
	if t := p.GetDeadLetterTopic(); t != "" {
		return t
	}
	return kafkaname.DeadLetterTopic(p.GetTenantId(), p.GetId())
}

// copyRecord returns a record for topic with rec's key, value and headers.
func copyRecord(rec *kgo.Record, topic string) *kgo.Record {
	h := make([]kgo.RecordHeader, len(rec.Headers), len(rec.Headers)+8)
	copy(h, rec.Headers)
	return &kgo.Record{Topic: topic, Key: rec.Key, Value: rec.Value, Headers: h}
}

// produce writes rec with the producer and waits for the acknowledgement,
// trying again (with backoff) until it succeeds or ctx ends; it reports
// success.
func (r *Runner) produce(ctx context.Context, rec *kgo.Record) bool {
	return r.produceWith(ctx, r.cfg.Producer, rec)
}

// ack writes the ack of an outcome of attempt a (see package acklog) and
// reports whether the broker acknowledged it; without Config.Acks it
// reports true at once. res is the attempt's result; next is when the next
// attempt is due, for acklog.Retrying.
func (r *Runner) ack(ctx context.Context, a *attempt, o acklog.Outcome, reason string, res deliver.Result, next time.Time) bool {
	if r.cfg.Acks == nil {
		return true
	}
	rec, err := acklog.Record(r.ackOf(a, o, reason, res, next))
	if err != nil {
		// A struct of strings, numbers and times always encodes.
		r.cfg.Logger.Error("ack not written", "err", err)
		return true
	}
	if a.acks != nil {
		// Written now, acknowledged later: a.acks.wait tells the caller.
		a.acks.add()
		a.payload = false
		r.cfg.Acks.Produce(ctx, rec, func(rec *kgo.Record, err error) {
			if err == nil {
				a.acks.done(true)
				return
			}
			// Not from the producer's callback goroutine: produceWith
			// waits and backs off.
			go func() { a.acks.done(r.produceWith(ctx, r.cfg.Acks, rec)) }()
		})
		return true
	}
	if !r.produceWith(ctx, r.cfg.Acks, rec) {
		return false
	}
	a.payload = false
	return true
}

// ackOf returns the ack of an outcome of attempt a.
func (r *Runner) ackOf(a *attempt, o acklog.Outcome, reason string, res deliver.Result, next time.Time) *acklog.Ack {
	ack := &acklog.Ack{
		TenantID:        a.p.GetTenantId(),
		TopicID:         a.p.GetTopicId(),
		PipelineID:      a.p.GetId(),
		Destination:     a.dest.GetName(),
		Attempt:         a.n,
		Outcome:         o,
		Reason:          reason,
		HTTPStatus:      res.StatusCode,
		Latency:         res.Latency,
		Time:            r.cfg.Now().UTC(),
		NextAttemptTime: next.UTC(),
		IngestTime:      a.ingest.UTC(),
		Origin:          a.origin,
		Target:          a.target,
	}
	if next.IsZero() {
		ack.NextAttemptTime = time.Time{}
	}
	if a.ingest.IsZero() {
		ack.IngestTime = time.Time{}
	}
	if res.Err != nil {
		msg := res.Err.Error()
		if len(msg) > maxErrorHeader {
			msg = msg[:maxErrorHeader]
		}
		ack.Error = msg
	}
	if r.cfg.NodeID != nil {
		ack.NodeID = r.cfg.NodeID()
	}
	if a.redrive != "" {
		ack.ID = acklog.RedriveID(a.origin, a.redrive, ack.PipelineID, ack.Destination, a.n)
	}
	ev := a.orig
	if ev == nil {
		ev = a.ev
	}
	if ev != nil {
		ack.EventID = ev.GetId()
		ack.EventTime = eventTime(ev).UTC()
		if ev.GetTime() == nil {
			ack.EventTime = time.Time{}
		}
		ack.Event = &acklog.Attributes{
			Source:          ev.GetSource(),
			Type:            ev.GetType(),
			Subject:         ev.GetSubject(),
			DataContentType: ev.GetDataContentType(),
			DataSchema:      ev.GetDataSchema(),
			Extensions:      ev.GetExtensions(),
			PartitionKey:    ev.GetPartitionKey(),
		}
		if a.payload && a.orig != nil && len(a.orig.GetData()) <= acklog.MaxData {
			ack.Data = a.orig.GetData()
		}
	}
	return ack
}

// produceWith writes rec with cl and waits for the acknowledgement, trying
// again (with backoff) until it succeeds or ctx ends; it reports success.
func (r *Runner) produceWith(ctx context.Context, cl *kgo.Client, rec *kgo.Record) bool {
	wait := produceBackoff
	for {
		err := cl.ProduceSync(ctx, rec).FirstErr()
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		r.cfg.Logger.Warn("produce failed; trying again", "topic", rec.Topic, "err", err, "in", wait)
		if !sleep(ctx, wait) {
			return false
		}
		wait = min(2*wait, produceBackoffUp)
	}
}

// sleep waits d or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// eventTime returns the event's time, or the zero time when it has none.
func eventTime(ev *v1.Event) time.Time {
	if ev.GetTime() == nil {
		return time.Time{}
	}
	return ev.GetTime().AsTime()
}
