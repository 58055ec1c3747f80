// Package provision keeps the Kafka topics of a region in line with the
// configuration: the Kafka topic of every tenant topic homed in the region
// (partitions and retention), the dead-letter topic of every pipeline reading
// those topics, and the shared retry-tier topics.
//
// It reconciles on every new snapshot and periodically (so a topic deleted
// behind its back, or a broker that was down, is caught up). It is
// idempotent: topics that exist are left alone except to grow their
// partitions or correct their retention. It never deletes a topic and never
// shrinks one: events are data, and removing them is an operator's decision.
package provision

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/switchyard-dev/switchyard/dataplane/snapshot"
	"github.com/switchyard-dev/switchyard/internal/kafkaname"
	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
)

// Defaults, matching the API's documented defaults.
const (
	// DefaultPartitions is the partition count of a topic whose config says 0.
	DefaultPartitions = 8
	// DefaultTopicRetention is a topic's retention when its config has none.
	DefaultTopicRetention = 7 * 24 * time.Hour
	// DefaultDeadLetterRetention is a dead-letter topic's retention when the
	// pipeline's dead-letter policy has none.
	DefaultDeadLetterRetention = 14 * 24 * time.Hour
	// DefaultRetryPartitions is the partition count of retry-tier topics.
	DefaultRetryPartitions = 8
	// DefaultInterval is the period of the background reconciliation.
	DefaultInterval = 30 * time.Second
	// DefaultTimeout bounds one reconciliation.
	DefaultTimeout = 20 * time.Second
	// retentionConfig is the Kafka topic config holding the retention.
	retentionConfig = "retention.ms"
	// maxMessageConfig is the Kafka topic config bounding a record batch.
	maxMessageConfig = "max.message.bytes"
)

// Config configures a Provisioner.
type Config struct {
	// Admin talks to the region's Kafka cluster. Required; the caller closes
	// it after Run returns.
	Admin *kadm.Client
	// Snapshots is the configuration. Required.
	Snapshots *snapshot.Holder
	// RegionID is the region whose topics to provision. Topics of a FAILED
	// region that fails over to this one are provisioned too. Required.
	RegionID string
	// RetryTopics are the names of the shared retry-tier topics.
	RetryTopics []string
	// RetryPartitions is the partition count of retry-tier topics; 0 means
	// DefaultRetryPartitions.
	RetryPartitions int32
	// Internal are topics the region needs whatever its configuration, such
	// as the ack log (kafkaname.AckLogTopic); a name also in the
	// configuration's topics keeps the larger partition count and retention.
	Internal []Spec
	// ReplicationFactor of created topics; 0 or -1 means the broker's
	// default.
	ReplicationFactor int16
	// Interval is the period of background reconciliation; 0 means
	// DefaultInterval.
	Interval time.Duration
	// Timeout bounds one reconciliation; 0 means DefaultTimeout.
	Timeout time.Duration
	// Logger receives progress and errors; nil discards them.
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	c.RetryPartitions = cmp.Or(c.RetryPartitions, DefaultRetryPartitions)
	if c.ReplicationFactor == 0 {
		c.ReplicationFactor = -1
	}
	c.Interval = cmp.Or(c.Interval, DefaultInterval)
	c.Timeout = cmp.Or(c.Timeout, DefaultTimeout)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

func (c Config) validate() error {
	var errs []error
	if c.Admin == nil {
		errs = append(errs, errors.New("provision: Admin is required"))
	}
	if c.Snapshots == nil {
		errs = append(errs, errors.New("provision: Snapshots is required"))
	}
	if c.RegionID == "" {
		errs = append(errs, errors.New("provision: RegionID is required"))
	}
	if c.RetryPartitions < 1 {
		errs = append(errs, fmt.Errorf("provision: RetryPartitions %d must be positive", c.RetryPartitions))
	}
	if c.ReplicationFactor < -1 {
		errs = append(errs, fmt.Errorf("provision: ReplicationFactor %d must be positive or -1", c.ReplicationFactor))
	}
	if c.Interval < 0 || c.Timeout < 0 {
		errs = append(errs, errors.New("provision: Interval and Timeout must not be negative"))
	}
	for _, t := range c.RetryTopics {
		if t == "" {
			errs = append(errs, errors.New("provision: empty retry topic name"))
		}
	}
	for _, s := range c.Internal {
		if s.Name == "" || s.Partitions < 1 {
			errs = append(errs, fmt.Errorf("provision: internal topic %q needs a name and partitions", s.Name))
		}
	}
	return errors.Join(errs...)
}

// Spec is a Kafka topic as the configuration wants it.
type Spec struct {
	// Name is the Kafka topic.
	Name string
	// Partitions is the least number of partitions it must have.
	Partitions int32
	// Retention is its retention.ms; 0 leaves the broker's default.
	Retention time.Duration
	// MaxMessageBytes is its max.message.bytes; 0 leaves the broker's
	// default. The ack log's is acklog.TopicMaxMessageBytes, so an ack
	// carrying a payload fits.
	MaxMessageBytes int32
}

// Provisioner creates and grows the Kafka topics of a region.
type Provisioner struct {
	cfg     Config
	trigger chan struct{}

	mu sync.Mutex // serialises reconciliations; guards applied
	// applied is the retention last set per topic, so configs are altered
	// only when they change.
	applied map[string]time.Duration
	// appliedMax is the max.message.bytes last set per topic.
	appliedMax map[string]int32
}

// New returns a Provisioner. It does nothing until Run or Reconcile.
func New(cfg Config) (*Provisioner, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Provisioner{
		cfg:        cfg,
		trigger:    make(chan struct{}, 1),
		applied:    make(map[string]time.Duration),
		appliedMax: make(map[string]int32),
	}, nil
}

// Run reconciles at once, on every new snapshot and every Interval until
// ctx is done, and returns nil then. A failed reconciliation is logged and
// tried again after a backoff (1 s, doubling, at most Interval).
func (p *Provisioner) Run(ctx context.Context) error {
	p.cfg.Snapshots.Subscribe(func(*snapshot.Snapshot) {
		select {
		case p.trigger <- struct{}{}:
		default:
		}
	})
	timer := time.NewTimer(0)
	defer timer.Stop()
	backoff := time.Second
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-p.trigger:
		case <-timer.C:
		}
		next := p.cfg.Interval
		if err := p.Reconcile(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			p.cfg.Logger.Warn("provisioning Kafka topics failed; will retry", "err", err, "retry_in", backoff.String())
			next = min(backoff, p.cfg.Interval)
			backoff = min(2*backoff, p.cfg.Interval)
		} else {
			backoff = time.Second
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(next)
	}
}

// Reconcile brings the cluster in line with the current snapshot once:
// creates missing topics, grows partitions, sets retention. It is safe to
// call concurrently with Run.
func (p *Provisioner) Reconcile(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()

	specs := withInternal(Wanted(p.cfg.Snapshots.Current(), p.cfg.RegionID, p.cfg.RetryTopics, p.cfg.RetryPartitions), p.cfg.Internal)
	if len(specs) == 0 {
		return nil
	}
	names := make([]string, len(specs))
	for i, s := range specs {
		names[i] = s.Name
	}
	// Fresh metadata, not the client's cache (kadm caches it for seconds),
	// so a topic created or deleted a moment ago is seen as it is.
	details, err := p.cfg.Admin.ListTopics(kadm.WithAuthorizedOps(ctx), names...)
	if err != nil {
		return fmt.Errorf("listing topics: %w", err)
	}
	var errs []error
	for _, s := range specs {
		if err := p.ensure(ctx, s, details[s.Name]); err != nil {
			errs = append(errs, fmt.Errorf("topic %s: %w", s.Name, err))
		}
	}
	return errors.Join(errs...)
}

// ensure makes one topic match its spec, given what the cluster reported.
func (p *Provisioner) ensure(ctx context.Context, s Spec, d kadm.TopicDetail) error {
	switch {
	case d.Err == nil && len(d.Partitions) > 0:
		if have := int32(len(d.Partitions)); have < s.Partitions {
			if err := p.grow(ctx, s); err != nil {
				return err
			}
			p.cfg.Logger.Info("grew Kafka topic", "topic", s.Name, "from", have, "to", s.Partitions)
		}
		return errors.Join(p.setRetention(ctx, s), p.setMaxMessage(ctx, s))
	case d.Err == nil || errors.Is(d.Err, kerr.UnknownTopicOrPartition):
		return p.create(ctx, s)
	default:
		return d.Err
	}
}

// create creates a topic; one that appeared meanwhile is fine.
func (p *Provisioner) create(ctx context.Context, s Spec) error {
	configs := map[string]*string{}
	if s.Retention > 0 {
		configs[retentionConfig] = new(strconv.FormatInt(s.Retention.Milliseconds(), 10))
	}
	if s.MaxMessageBytes > 0 {
		configs[maxMessageConfig] = new(strconv.FormatInt(int64(s.MaxMessageBytes), 10))
	}
	resp, err := p.cfg.Admin.CreateTopic(ctx, s.Partitions, p.cfg.ReplicationFactor, configs, s.Name)
	if err == nil {
		err = resp.Err
	}
	switch {
	case err == nil:
		p.applied[s.Name] = s.Retention
		p.appliedMax[s.Name] = s.MaxMessageBytes
		attrs := []any{"topic", s.Name, "partitions", s.Partitions}
		if s.Retention > 0 {
			attrs = append(attrs, "retention", s.Retention.String())
		}
		p.cfg.Logger.Info("created Kafka topic", attrs...)
		return nil
	case errors.Is(err, kerr.TopicAlreadyExists):
		return errors.Join(p.setRetention(ctx, s), p.setMaxMessage(ctx, s))
	default:
		return fmt.Errorf("creating: %w", withMessage(err, resp.ErrMessage))
	}
}

// grow raises a topic's partition count to the spec's.
func (p *Provisioner) grow(ctx context.Context, s Spec) error {
	resps, err := p.cfg.Admin.UpdatePartitions(ctx, int(s.Partitions), s.Name)
	if err != nil {
		return fmt.Errorf("growing partitions: %w", err)
	}
	r := resps[s.Name]
	if r.Err != nil && !errors.Is(r.Err, kerr.InvalidPartitions) {
		return fmt.Errorf("growing partitions: %w", withMessage(r.Err, r.ErrMessage))
	}
	return nil
}

// setRetention sets retention.ms unless it was already set to the spec's by
// this provisioner.
func (p *Provisioner) setRetention(ctx context.Context, s Spec) error {
	if s.Retention <= 0 {
		return nil
	}
	if cur, ok := p.applied[s.Name]; ok && cur == s.Retention {
		return nil
	}
	v := strconv.FormatInt(s.Retention.Milliseconds(), 10)
	resps, err := p.cfg.Admin.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: retentionConfig, Value: &v}}, s.Name)
	if err != nil {
		return fmt.Errorf("setting retention: %w", err)
	}
	for _, r := range resps {
		if r.Err != nil {
			return fmt.Errorf("setting retention: %w", withMessage(r.Err, r.ErrMessage))
		}
	}
	p.applied[s.Name] = s.Retention
	return nil
}

// setMaxMessage sets max.message.bytes unless it was already set to the
// spec's by this provisioner.
func (p *Provisioner) setMaxMessage(ctx context.Context, s Spec) error {
	if s.MaxMessageBytes <= 0 {
		return nil
	}
	if cur, ok := p.appliedMax[s.Name]; ok && cur == s.MaxMessageBytes {
		return nil
	}
	v := strconv.FormatInt(int64(s.MaxMessageBytes), 10)
	resps, err := p.cfg.Admin.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: maxMessageConfig, Value: &v}}, s.Name)
	if err != nil {
		return fmt.Errorf("setting max.message.bytes: %w", err)
	}
	for _, r := range resps {
		if r.Err != nil {
			return fmt.Errorf("setting max.message.bytes: %w", withMessage(r.Err, r.ErrMessage))
		}
	}
	p.appliedMax[s.Name] = s.MaxMessageBytes
	return nil
}

// withMessage adds Kafka's explanation to an error code when there is one.
func withMessage(err error, msg string) error {
	if msg == "" {
		return err
	}
	return fmt.Errorf("%w (%s)", err, msg)
}

// Serves reports whether a node of regionID serves topic: its home region,
// or a FAILED home region whose failover is regionID.
func Serves(snap *snapshot.Snapshot, topic *v1.Topic, regionID string) bool {
	if topic.GetRegionId() == regionID {
		return true
	}
	home, ok := snap.Region(topic.GetRegionId())
	return ok && home.GetStatus() == v1.RegionStatus_REGION_STATUS_FAILED && home.GetFailoverRegionId() == regionID
}

// Wanted lists the Kafka topics a region needs for snap, sorted by name:
// each served topic's Kafka topic, the dead-letter topic of each pipeline
// reading one, and the retry topics (retryPartitions each).
func Wanted(snap *snapshot.Snapshot, regionID string, retryTopics []string, retryPartitions int32) []Spec {
	byName := make(map[string]Spec)
	add := func(s Spec) {
		if cur, ok := byName[s.Name]; ok {
			s.Partitions = max(s.Partitions, cur.Partitions)
			s.Retention = max(s.Retention, cur.Retention)
		}
		byName[s.Name] = s
	}
	for _, t := range snap.Topics() {
		if !Serves(snap, t, regionID) {
			continue
		}
		partitions := int32(t.GetPartitions())
		if partitions <= 0 {
			partitions = DefaultPartitions
		}
		retention := DefaultTopicRetention
		if r := t.GetRetention(); r != nil && r.AsDuration() > 0 {
			retention = r.AsDuration()
		}
		name := cmp.Or(t.GetKafkaTopic(), kafkaname.TenantTopic(t.GetTenantId(), t.GetId()))
		add(Spec{Name: name, Partitions: partitions, Retention: retention})

		for _, pl := range snap.PipelinesOfTopic(t.GetId()) {
			dlRetention := DefaultDeadLetterRetention
			if r := pl.GetDeadLetterPolicy().GetRetention(); r != nil && r.AsDuration() > 0 {
				dlRetention = r.AsDuration()
			}
			add(Spec{
				Name:       cmp.Or(pl.GetDeadLetterTopic(), kafkaname.DeadLetterTopic(pl.GetTenantId(), pl.GetId())),
				Partitions: partitions,
				Retention:  dlRetention,
			})
		}
	}
	for _, name := range retryTopics {
		add(Spec{Name: name, Partitions: retryPartitions})
	}
	out := make([]Spec, 0, len(byName))
	for _, s := range byName {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b Spec) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// withInternal adds the internal topics to specs (merged by name, the
// larger partition count and retention winning), sorted by name.
func withInternal(specs, internal []Spec) []Spec {
	if len(internal) == 0 {
		return specs
	}
	out := slices.Clone(specs)
	for _, s := range internal {
		if i := slices.IndexFunc(out, func(o Spec) bool { return o.Name == s.Name }); i >= 0 {
			out[i].Partitions = max(out[i].Partitions, s.Partitions)
			out[i].Retention = max(out[i].Retention, s.Retention)
			out[i].MaxMessageBytes = max(out[i].MaxMessageBytes, s.MaxMessageBytes)
			continue
		}
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b Spec) int { return cmp.Compare(a.Name, b.Name) })
	return out
}
