// Package ledger fills the delivery ledger: it reads the ack log
// (kafkaname.AckLogTopic, package acklog) of every region's Kafka cluster as
// the consumer group DefaultGroup, writes the acks in batches to Postgres
// (tables events and deliveries, migration 0003) and commits the Kafka
// offsets only once the Postgres transaction has committed.
//
// Writes are idempotent (an ack id is stored once), so acks read again
// after a crash or a rebalance change nothing. While Postgres is down the
// ledger retries the same batch with backoff and reads no further: the acks
// wait in Kafka and nothing is lost.
//
// Metrics: switchyard_ledger_lag (acks in the ack log not yet written, per
// Kafka cluster, named by its first region) and switchyard_ledger_rows_total
// (delivery rows written).
//
// The lag is the sum over the ack log's partitions of the high watermark
// minus the next offset to write (the larger of what this ledger wrote and
// what the group committed; the log start where neither says). Besides the
// update after every poll and write, a ticker (Config.LagInterval) lists the
// end, start and committed offsets with an admin request of its own, so the
// lag keeps growing while the writer is stuck on a batch Postgres refuses:
// it counts everything waiting in Kafka, not only the batch in hand.
package ledger

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/switchyard-dev/switchyard/controlplane/store"
	"github.com/switchyard-dev/switchyard/internal/acklog"
	"github.com/switchyard-dev/switchyard/internal/kafkaname"
	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
)

// Defaults of Config.
const (
	// DefaultGroup is the consumer group of the ledger in every region.
	DefaultGroup = kafkaname.Prefix + "_ledger"
	// DefaultMaxBatch is the largest number of acks written at once.
	DefaultMaxBatch = 1000
	// DefaultMaxWait is how long a batch waits for more acks.
	DefaultMaxWait = 200 * time.Millisecond
	// DefaultRegionInterval is how often the regions are read again.
	DefaultRegionInterval = 30 * time.Second
	// DefaultLagInterval is how often the lag is measured from the
	// broker's offsets.
	DefaultLagInterval = 5 * time.Second
)

// Retry backoff while Postgres refuses writes.
const (
	retryBackoff    = 100 * time.Millisecond
	retryBackoffMax = 5 * time.Second
)

// Regions lists regions; store.Store is one.
type Regions interface {
	ListRegions(ctx context.Context, p store.ListParams) ([]*v1.Region, error)
}

// Config configures a Ledger.
type Config struct {
	// Pool is the control plane's database, migrated. Required.
	Pool *pgxpool.Pool
	// Regions lists the regions whose ack logs to read (their Kafka
	// brokers). Required.
	Regions Regions
	// KafkaOpts are extra options of every Kafka client.
	KafkaOpts []kgo.Opt
	// Group is the consumer group; default DefaultGroup.
	Group string
	// Topic is the ack-log topic; default kafkaname.AckLogTopic.
	Topic string
	// MaxBatch bounds a batch; default DefaultMaxBatch.
	MaxBatch int
	// MaxWait is how long a batch waits for more acks; default
	// DefaultMaxWait.
	MaxWait time.Duration
	// RegionInterval is how often regions are listed again; default
	// DefaultRegionInterval.
	RegionInterval time.Duration
	// LagInterval is how often the lag is measured from the broker's
	// offsets; default DefaultLagInterval.
	LagInterval time.Duration
	// Registry, when set, registers the ledger's metrics.
	Registry prometheus.Registerer
	// Logger logs; default slog.Default().
	Logger *slog.Logger
}

// Ledger copies the ack logs of all regions into Postgres.
type Ledger struct {
	cfg    Config
	writer *Writer
	lag    *prometheus.GaugeVec
	rows   prometheus.Counter
}

// New checks cfg and returns a Ledger; it does nothing until Run.
func New(cfg Config) (*Ledger, error) {
	cfg.Group = cmp.Or(cfg.Group, DefaultGroup)
	cfg.Topic = cmp.Or(cfg.Topic, kafkaname.AckLogTopic)
	cfg.MaxBatch = cmp.Or(cfg.MaxBatch, DefaultMaxBatch)
	cfg.MaxWait = cmp.Or(cfg.MaxWait, DefaultMaxWait)
	cfg.RegionInterval = cmp.Or(cfg.RegionInterval, DefaultRegionInterval)
	cfg.LagInterval = cmp.Or(cfg.LagInterval, DefaultLagInterval)
	cfg.Logger = cmp.Or(cfg.Logger, slog.Default())
	var errs []error
	if cfg.Pool == nil {
		errs = append(errs, errors.New("Pool is required"))
	}
	if cfg.Regions == nil {
		errs = append(errs, errors.New("Regions is required"))
	}
	if cfg.MaxBatch < 0 || cfg.MaxWait < 0 || cfg.RegionInterval < 0 || cfg.LagInterval < 0 {
		errs = append(errs, errors.New("MaxBatch, MaxWait, RegionInterval and LagInterval must not be negative"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("ledger: invalid config: %w", err)
	}
	l := &Ledger{
		cfg:    cfg,
		writer: NewWriter(cfg.Pool),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "switchyard_ledger_lag",
			Help: "Acks in a region's ack log not yet written to the ledger.",
		}, []string{"region"}),
		rows: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "switchyard_ledger_rows_total",
			Help: "Delivery rows the ledger wrote to Postgres.",
		}),
	}
	if cfg.Registry != nil {
		for _, c := range []prometheus.Collector{l.lag, l.rows} {
			if err := cfg.Registry.Register(c); err != nil {
				return nil, fmt.Errorf("ledger: registering metrics: %w", err)
			}
		}
	}
	return l, nil
}

// Lag returns the acks not yet written in all clusters, as last measured.
func (l *Ledger) Lag() float64 {
	ch := make(chan prometheus.Metric, 16)
	go func() { l.lag.Collect(ch); close(ch) }()
	var sum float64
	for m := range ch {
		var pb dtoMetric
		if err := m.Write(&pb.Metric); err == nil {
			sum += pb.GetGauge().GetValue()
		}
	}
	return sum
}

// Rows returns the delivery rows written so far.
func (l *Ledger) Rows() float64 {
	var pb dtoMetric
	if err := l.rows.Write(&pb.Metric); err != nil {
		return 0
	}
	return pb.GetCounter().GetValue()
}

// Run reads the ack logs until ctx ends, following the regions as they
// change (a cluster read by no region any more is left), and returns nil.
func (l *Ledger) Run(ctx context.Context) error {
	type running struct {
		cancel context.CancelFunc
		done   chan struct{}
	}
	readers := make(map[string]*running) // by brokers key
	stop := func(key string) {
		r := readers[key]
		r.cancel()
		<-r.done
		delete(readers, key)
	}
	defer func() {
		for key := range readers {
			stop(key)
		}
	}()
	tick := time.NewTicker(l.cfg.RegionInterval)
	defer tick.Stop()
	for {
		clusters, err := l.clusters(ctx)
		if err != nil && ctx.Err() == nil {
			l.cfg.Logger.Warn("ledger: cannot list regions; keeping the clusters known", "err", err)
		}
		if err == nil {
			for key := range readers {
				if _, ok := clusters[key]; !ok {
					stop(key)
				}
			}
			for key, c := range clusters {
				if readers[key] != nil {
					continue
				}
				rctx, cancel := context.WithCancel(ctx)
				r := &running{cancel: cancel, done: make(chan struct{})}
				readers[key] = r
				go func() {
					defer close(r.done)
					l.read(rctx, c)
				}()
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// cluster is a Kafka cluster and the first region (by id) on it.
type cluster struct {
	region  string
	brokers []string
}

// clusters returns the distinct Kafka clusters of the regions, by brokers
// key.
func (l *Ledger) clusters(ctx context.Context) (map[string]cluster, error) {
	out := make(map[string]cluster)
	after := ""
	for {
		page, err := l.cfg.Regions.ListRegions(ctx, store.ListParams{AfterID: after, Limit: 100})
		if err != nil {
			return nil, err
		}
		for _, r := range page {
			b := slices.Clone(r.GetKafkaBrokers())
			if len(b) == 0 {
				continue
			}
			slices.Sort(b)
			key := strings.Join(b, ",")
			if _, ok := out[key]; !ok {
				out[key] = cluster{region: r.GetId(), brokers: b}
			}
		}
		if len(page) < 100 {
			return out, nil
		}
		after = page[len(page)-1].GetId()
	}
}

// read consumes one cluster's ack log until ctx ends.
func (l *Ledger) read(ctx context.Context, c cluster) {
	log := l.cfg.Logger.With("region", c.region)
	opts := append([]kgo.Opt{
		kgo.SeedBrokers(c.brokers...),
		kgo.ConsumerGroup(l.cfg.Group),
		kgo.ConsumeTopics(l.cfg.Topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.FetchMaxWait(l.cfg.MaxWait),
	}, l.cfg.KafkaOpts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		log.Error("ledger: kafka client", "err", err)
		return
	}
	defer cl.Close()
	defer l.lag.DeleteLabelValues(c.region)
	lag := newLagTracker()
	// Measured beside the loop, which blocks while Postgres refuses a batch.
	lagCtx, stopLag := context.WithCancel(ctx)
	var measuring sync.WaitGroup
	measuring.Go(func() { l.measureLag(lagCtx, log, cl, c.region, lag) })
	defer func() { stopLag(); measuring.Wait() }()
	for ctx.Err() == nil {
		recs := l.poll(ctx, cl, lag)
		lag.committed(cl.CommittedOffsets()[l.cfg.Topic])
		// Reported before the write, so a batch Postgres refuses shows.
		l.lag.WithLabelValues(c.region).Set(float64(lag.total()))
		if len(recs) > 0 && !l.write(ctx, log, recs) {
			cl.AllowRebalance()
			return
		}
		if len(recs) > 0 {
			if err := cl.CommitRecords(ctx, recs...); err != nil && ctx.Err() == nil {
				// Written but not committed: read again later, written again
				// as no-ops.
				log.Warn("ledger: commit failed", "err", err)
			}
			lag.written(recs)
		}
		l.lag.WithLabelValues(c.region).Set(float64(lag.total()))
		cl.AllowRebalance()
	}
}

// poll returns the next batch: up to MaxBatch records, waiting at most
// MaxWait after the first for more.
func (l *Ledger) poll(ctx context.Context, cl *kgo.Client, lag *lagTracker) []*kgo.Record {
	var recs []*kgo.Record
	take := func(fs kgo.Fetches) {
		fs.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
				l.cfg.Logger.Warn("ledger: fetch error", "topic", t, "partition", p, "err", err)
			}
		})
		fs.EachPartition(func(p kgo.FetchTopicPartition) {
			lag.seen(p.Partition, p.HighWatermark)
			recs = append(recs, p.Records...)
		})
	}
	// The first poll waits for records at most MaxWait, so the lag is
	// reported even when nothing comes.
	first, cancel := context.WithTimeout(ctx, l.cfg.MaxWait)
	take(cl.PollRecords(first, l.cfg.MaxBatch))
	cancel()
	if len(recs) == 0 {
		return nil
	}
	deadline, cancel := context.WithTimeout(ctx, l.cfg.MaxWait)
	defer cancel()
	for len(recs) < l.cfg.MaxBatch && deadline.Err() == nil {
		take(cl.PollRecords(deadline, l.cfg.MaxBatch-len(recs)))
	}
	return recs
}

// write decodes recs and writes them, retrying with backoff until Postgres
// takes them; it reports false when ctx ended first.
func (l *Ledger) write(ctx context.Context, log *slog.Logger, recs []*kgo.Record) bool {
	acks := make([]*acklog.Ack, 0, len(recs))
	for _, r := range recs {
		a, err := acklog.Decode(r.Value)
		if err != nil {
			log.Warn("ledger: skipping an undecodable ack", "partition", r.Partition, "offset", r.Offset, "err", err)
			continue
		}
		acks = append(acks, a)
	}
	wait := retryBackoff
	for {
		n, err := l.writer.Write(ctx, acks)
		if err == nil {
			l.rows.Add(float64(n))
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		log.Warn("ledger: write failed; trying again", "acks", len(acks), "in", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
		wait = min(2*wait, retryBackoffMax)
	}
}

// measureLag sets the region's lag from the broker's offsets now and every
// LagInterval until ctx ends.
func (l *Ledger) measureLag(ctx context.Context, log *slog.Logger, cl *kgo.Client, region string, lag *lagTracker) {
	adm := kadm.NewClient(cl) // not closed: closing it would close cl
	tick := time.NewTicker(l.cfg.LagInterval)
	defer tick.Stop()
	for {
		if err := lag.measure(ctx, adm, l.cfg.Group, l.cfg.Topic); err != nil {
			if ctx.Err() == nil {
				log.Debug("ledger: lag not measured", "err", err)
			}
		} else {
			l.lag.WithLabelValues(region).Set(float64(lag.total()))
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// lagTracker keeps, per partition of the ack log, the high watermark seen
// and the next offset to write.
type lagTracker struct {
	mu   sync.Mutex
	high map[int32]int64
	next map[int32]int64
}

func newLagTracker() *lagTracker {
	return &lagTracker{high: make(map[int32]int64), next: make(map[int32]int64)}
}

func (t *lagTracker) seen(p int32, high int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.high[p] = max(t.high[p], high)
}

func (t *lagTracker) written(recs []*kgo.Record) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, r := range recs {
		t.next[r.Partition] = max(t.next[r.Partition], r.Offset+1)
	}
}

func (t *lagTracker) committed(offs map[int32]kgo.EpochOffset) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for p, o := range offs {
		t.next[p] = max(t.next[p], o.Offset)
	}
}

// measure reads the end, start and committed offsets of topic (for group)
// from the broker and takes them in.
func (t *lagTracker) measure(ctx context.Context, adm *kadm.Client, group, topic string) error {
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return fmt.Errorf("listing end offsets: %w", err)
	}
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		return fmt.Errorf("listing start offsets: %w", err)
	}
	commits, err := adm.FetchOffsetsForTopics(ctx, group, topic)
	if err != nil {
		return fmt.Errorf("fetching committed offsets: %w", err)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	ends.Each(func(e kadm.ListedOffset) {
		if e.Err != nil {
			return
		}
		t.high[e.Partition] = max(t.high[e.Partition], e.Offset)
		if s, ok := starts.Lookup(topic, e.Partition); ok && s.Err == nil {
			t.next[e.Partition] = max(t.next[e.Partition], s.Offset)
		}
		if c, ok := commits.Lookup(topic, e.Partition); ok && c.Err == nil {
			t.next[e.Partition] = max(t.next[e.Partition], c.At)
		}
	})
	return nil
}

func (t *lagTracker) total() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	var n int64
	for p, h := range t.high {
		if d := h - t.next[p]; d > 0 {
			n += d
		}
	}
	return n
}

// dtoMetric reads a metric's value.
type dtoMetric struct{ dto.Metric }
