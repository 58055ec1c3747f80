// Package pipeline runs the pipeline workers of a data-plane node: for every
// active pipeline of the node's region, a Kafka consumer group on the
// pipeline's topic that filters, transforms and delivers each event to the
// pipeline's destinations, and one consumer per retry tier that makes the
// later attempts of unordered pipelines.
//
// # Commit watermark
//
// Records of a partition are processed in parallel (bounded by
// Config.MaxInFlight per pipeline; polling stops while the bound is reached).
// An offset is committed only when every record at or below it has a final
// outcome for this attempt: delivered, filtered out, durably written to a
// retry tier or durably dead-lettered (the produce acknowledged). Commits
// happen every Config.CommitInterval, when partitions are revoked and on
// shutdown. A process killed at any instant loses nothing: what was not
// committed is read again and delivered again, with the same event id.
//
// # Revocation and shutdown
//
// When partitions are revoked (a rebalance, a pipeline that stops, or
// shutdown) the worker stops taking records of those partitions, waits for
// their in-flight records for at most Config.DrainTimeout, then cancels what
// is still running, and commits the watermark. Records cancelled that way
// are not final: the partition's next owner delivers them again.
//
// # Ordering
//
// ORDERING_MODE_NONE: each record is delivered as soon as it is polled; a
// failed destination goes to the retry tier whose delay covers its backoff,
// so a failing endpoint never blocks a partition. Only the destination that
// failed is retried.
//
// ORDERING_MODE_KEY: records with the same key are processed one after the
// other (all of a record's destinations, each retrying in place with its
// backoff, before the next record of the key); other keys go on. A key that
// is retrying holds the partition's watermark back, so a restart delivers
// again the records committed above it. Completed offsets are not carried in
// the commit metadata.
//
// # Retries
//
// Attempts count from 1. The backoff after attempt n is
// min(max_backoff, initial_backoff * multiplier^(n-1)), randomised by the
// jitter mode (FULL: uniform in [0, b]; EQUAL: [b/2, b]; NONE: b). A
// Retry-After longer than the backoff wins, capped at max_backoff. The
// worker gives up (dead letter) when attempt n is max_attempts
// ("max_attempts") or when the next attempt would come after
// first attempt + max_age ("max_age"); a Permanent result is dead-lettered
// at once ("non_retryable_status", or the reason the error names).
//
// A retry record carries the original key, value and headers plus
// sy-pipeline, sy-destination, sy-attempt (attempts made), sy-first-attempt,
// sy-due and sy-origin. Tier consumers read each partition in order, wait
// until the head record is due (at most the tier's delay: a record due later
// than that is written to the tier again), and deliver the next attempt with
// the pipeline's current configuration; a pipeline or destination that no
// longer exists drops the record (logged and counted as "dropped"); a paused
// pipeline sends it round the tier again.
//
// A redrive with a destination override adds sy-destination-override (the
// binary protobuf of a v1.Destination): the attempt goes to the override's
// URL or Kafka topic instead of the named destination's, signed with the
// named destination's secrets and within its limits, its acks name the
// target (acklog.Ack.Target), and its later retries and dead letter keep the
// header. The SSRF guard applies at dial time as for any webhook. A redriven
// record carries sy-redrive (when the redrive sent it): its attempts are
// numbered afresh, so their acks take ids of their own (acklog.RedriveID).
//
// # Ack log
//
// With Config.Acks set, every outcome is written to the ack log
// (kafkaname.AckLogTopic, format in package acklog) where it is decided:
// delivered, filtered (one ack per pipeline, no destination), retrying (one
// per failed attempt, with its status, error, latency and the next attempt's
// time) and dead-lettered (with the reason, after the dead letter's own
// produce). The record counts as final for the commit watermark only once
// its acks are acknowledged, so an outcome is never committed without its
// ack; a node killed in between handles the record again and writes acks
// with the same ids (acklog.ID), which the ledger keeps once. The first ack
// a pipeline writes for a record of its topic carries the event's payload as
// published (acklog.Ack.Data) when the tenant keeps payloads (its retention
// policy's drop_payloads is not set in the node's configuration); no other
// ack does.
//
// # Filters, transforms and dead letters
//
// A pipeline's filter (event types, then the CEL expression) and transform
// are evaluated once per record, for all its destinations; a record that
// cannot be decoded, whose filter or transform fails, is dead-lettered once
// for the pipeline (no sy-destination header, reasons "malformed",
// "filter_error", "transform_error"). A dead letter carries the original key,
// value and headers plus sy-pipeline, sy-destination, sy-reason, sy-attempt,
// sy-last-status, sy-last-error, sy-first-attempt and sy-origin.
package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"

	"github.com/switchyard-dev/switchyard/dataplane/deliver"
	"github.com/switchyard-dev/switchyard/dataplane/snapshot"
	"github.com/switchyard-dev/switchyard/internal/celenv"
	"github.com/switchyard-dev/switchyard/internal/kafkaname"
	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
)

// Defaults of Config.
const (
	DefaultMaxInFlight    = 1024
	DefaultCommitInterval = time.Second
	DefaultDrainTimeout   = 5 * time.Second
)

// Internal timings.
const (
	commitTimeout    = 10 * time.Second
	lagInterval      = 5 * time.Second
	reconcileEvery   = 30 * time.Second
	produceBackoff   = 100 * time.Millisecond
	produceBackoffUp = 5 * time.Second
	maxErrorHeader   = 1024
)

// Config configures a Runner.
type Config struct {
	// Brokers are the seed brokers of the region's Kafka cluster.
	Brokers []string
	// ClientOpts are extra options for every Kafka client the runner makes.
	ClientOpts []kgo.Opt
	// Snapshots holds the configuration.
	Snapshots *snapshot.Holder
	// RegionID selects the pipelines to run: those whose topic's region_id
	// is this one.
	RegionID string
	// Deliverer makes the delivery attempts.
	Deliverer deliver.Deliverer
	// Producer writes retry and dead-letter records; it should be
	// idempotent with acks=all (franz-go's defaults). The runner does not
	// close it.
	Producer *kgo.Client
	// Acks, when set, writes an ack (package acklog) to
	// kafkaname.AckLogTopic for every outcome and every failed attempt; a
	// record becomes final for the commit watermark only once its acks are
	// acknowledged by the broker. It should be idempotent with acks=all and
	// may be Producer itself. Nil writes no ack log. The runner does not
	// close it.
	Acks *kgo.Client
	// NodeID, when set, names the node in acks (it may return "" until the
	// node is registered).
	NodeID func() string
	// Tiers are the retry tiers; default DefaultTiers(). They are sorted by
	// delay; delays must be distinct.
	Tiers []Tier
	// MaxInFlight bounds the records in flight per pipeline (and per retry
	// tier); default 1024.
	MaxInFlight int
	// CommitInterval is the time between commits; default 1 s.
	CommitInterval time.Duration
	// DrainTimeout bounds the wait for in-flight records when partitions
	// are revoked or a worker stops; default 5 s.
	DrainTimeout time.Duration
	// Metrics, when set, records the workers' metrics.
	Metrics *Metrics
	// Logger logs; default slog.Default().
	Logger *slog.Logger
	// Now tells the time; default time.Now.
	Now func() time.Time
}

func (c *Config) setDefaults() {
	if len(c.Tiers) == 0 {
		c.Tiers = DefaultTiers()
	}
	c.Tiers = slices.Clone(c.Tiers)
	slices.SortFunc(c.Tiers, func(a, b Tier) int { return int(a.Delay - b.Delay) })
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	if c.CommitInterval <= 0 {
		c.CommitInterval = DefaultCommitInterval
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = DefaultDrainTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

func (c *Config) validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("Brokers is required"))
	}
	if c.Snapshots == nil {
		errs = append(errs, errors.New("Snapshots is required"))
	}
	if c.RegionID == "" {
		errs = append(errs, errors.New("RegionID is required"))
	}
	if c.Deliverer == nil {
		errs = append(errs, errors.New("Deliverer is required"))
	}
	if c.Producer == nil {
		errs = append(errs, errors.New("Producer is required"))
	}
	for i, t := range c.Tiers {
		if t.Delay <= 0 || t.Topic == "" || t.Group == "" {
			errs = append(errs, fmt.Errorf("tier %d: Delay, Topic and Group are required", i))
		}
		if i > 0 && c.Tiers[i-1].Delay == t.Delay {
			errs = append(errs, fmt.Errorf("two tiers have the delay %s", t.Delay))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("pipeline: invalid config: %w", err)
	}
	return nil
}

// Runner runs the pipeline workers and retry-tier consumers of a region.
type Runner struct {
	cfg     Config
	env     *celenv.Env
	rnd     func() float64
	running atomic.Bool

	progMu sync.Mutex
	progs  map[string]*programs // by pipeline id
}

// New checks cfg and returns a Runner.
func New(cfg Config) (*Runner, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	env, err := celenv.New()
	if err != nil {
		return nil, fmt.Errorf("pipeline: %w", err)
	}
	return &Runner{cfg: cfg, env: env, rnd: rand.Float64, progs: make(map[string]*programs)}, nil
}

// Run runs until ctx ends: a worker per active pipeline (not paused, its
// topic in Config.RegionID), started, stopped and restarted as snapshots
// change (a pipeline restarts when its configuration or Kafka topic
// changes), and a consumer per retry tier. On exit it commits what is final,
// closes every client it made and returns nil. Run may be called once at a
// time.
func (r *Runner) Run(ctx context.Context) error {
	if !r.running.CompareAndSwap(false, true) {
		return errors.New("pipeline: Run is already running")
	}
	defer r.running.Store(false)

	changed := make(chan struct{}, 1)
	// The holder has no way to unsubscribe: after Run returns the callback
	// only finds a full channel.
	r.cfg.Snapshots.Subscribe(func(*snapshot.Snapshot) {
		select {
		case changed <- struct{}{}:
		default:
		}
	})

	tctx, tcancel := context.WithCancel(ctx)
	defer tcancel()
	var tiers sync.WaitGroup
	for _, t := range r.cfg.Tiers {
		tc, err := r.newTierConsumer(t)
		if err != nil {
			tcancel()
			tiers.Wait()
			return err
		}
		tiers.Go(func() { tc.run(tctx) })
	}

	workers := make(map[string]*worker)
	failed := make(map[string]string) // pipeline id -> hash that failed to start
	tick := time.NewTicker(reconcileEvery)
	defer tick.Stop()
	for {
		r.reconcile(workers, failed)
		select {
		case <-ctx.Done():
			stopAll(workers)
			tiers.Wait()
			return nil
		case <-changed:
		case <-tick.C:
		}
	}
}

// spec is what a pipeline's worker needs from a snapshot.
type spec struct {
	p          *v1.Pipeline
	kafkaTopic string
	hash       string
}

// desired returns the active pipelines of the region in snap.
func (r *Runner) desired(snap *snapshot.Snapshot) map[string]spec {
	out := make(map[string]spec)
	for _, p := range snap.Pipelines() {
		if p.GetPaused() || len(p.GetDestinations()) == 0 {
			continue
		}
		top, ok := snap.Topic(p.GetTopicId())
		if !ok || top.GetRegionId() != r.cfg.RegionID {
			continue
		}
		kt := top.GetKafkaTopic()
		if kt == "" {
			kt = kafkaname.TenantTopic(top.GetTenantId(), top.GetId())
		}
		out[p.GetId()] = spec{p: p, kafkaTopic: kt, hash: hashOf(p, kt)}
	}
	return out
}

// hashOf identifies a pipeline's configuration and Kafka topic.
func hashOf(p *v1.Pipeline, kafkaTopic string) string {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(p)
	if err != nil {
		// Cannot happen for a valid message; a unique value restarts.
		b = []byte(time.Now().String())
	}
	h := sha256.New()
	h.Write(b)
	h.Write([]byte{0})
	h.Write([]byte(kafkaTopic))
	return hex.EncodeToString(h.Sum(nil))
}

// reconcile starts, stops and restarts workers to match the current
// snapshot.
func (r *Runner) reconcile(workers map[string]*worker, failed map[string]string) {
	snap := r.cfg.Snapshots.Current()
	want := r.desired(snap)
	r.forgetPrograms(snap)
	stop := make(map[string]*worker)
	for id, w := range workers {
		if s, ok := want[id]; !ok || s.hash != w.spec.hash {
			stop[id] = w
			delete(workers, id)
		}
	}
	stopAll(stop)
	for id, s := range want {
		if _, ok := workers[id]; ok {
			continue
		}
		if failed[id] == s.hash {
			continue
		}
		w, err := r.startWorker(s)
		if err != nil {
			failed[id] = s.hash
			r.cfg.Logger.Error("pipeline worker cannot start", "pipeline", id, "err", err)
			continue
		}
		delete(failed, id)
		workers[id] = w
	}
	for id := range failed {
		if _, ok := want[id]; !ok {
			delete(failed, id)
		}
	}
}

// stopAll stops workers concurrently and waits for them.
func stopAll(workers map[string]*worker) {
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Go(w.stop)
	}
	wg.Wait()
}

// clientOpts returns the options of a consumer of group on topic.
func (r *Runner) clientOpts(group, topic string, reset kgo.Offset, c *consumer) []kgo.Opt {
	opts := []kgo.Opt{
		kgo.SeedBrokers(r.cfg.Brokers...),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(reset),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsRevoked(c.onRevoked),
		kgo.OnPartitionsLost(c.onLost),
	}
	return append(opts, r.cfg.ClientOpts...)
}
