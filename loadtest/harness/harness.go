// Package harness runs Switchyard as real processes for a load test: a
// private Postgres (internal/pgcluster), `switchyard controlplane` on it,
// one or more `switchyard dataplane` nodes, against a real Kafka broker —
// one given, or the repository's own started with scripts/kafka.sh. It
// sets up a region, a tenant and a producer key through the SDK's admin
// client, and removes the run's Kafka topics and groups at Close.
package harness

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/switchyard-dev/switchyard/internal/kafkaname"
	"github.com/switchyard-dev/switchyard/internal/pgcluster"
	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
	"github.com/switchyard-dev/switchyard/sdk/switchyard"
)

// RegionName is the region a harness creates; its nodes serve it.
const RegionName = "load"

// Config says what to run.
type Config struct {
	// RepoRoot is the repository: where scripts/kafka.sh and cmd/switchyard
	// are. Empty: found from the working directory upwards.
	RepoRoot string
	// Brokers are the Kafka seed brokers. Empty: the repository's broker,
	// started with scripts/kafka.sh start, and stopped at Close if it was
	// not running before.
	Brokers []string
	// SwitchyardBin is the switchyard binary. Empty: built from the
	// repository into WorkDir.
	SwitchyardBin string
	// WorkDir holds the Postgres cluster, the binary and the processes'
	// logs. Empty: a temporary directory removed at Close.
	WorkDir string
	// Nodes is the number of data-plane processes to start; default 1.
	Nodes int
	// RetryTiers are the nodes' retry delays; default 1s and 5s.
	RetryTiers []time.Duration
	// SessionTimeout is the nodes' consumer-group session timeout: how
	// soon a killed node's partitions move; default 6s.
	SessionTimeout time.Duration
	// Log receives progress lines; nil discards them.
	Log io.Writer
}

func (c Config) withDefaults() (Config, error) {
	c.Nodes = cmp.Or(c.Nodes, 1)
	if len(c.RetryTiers) == 0 {
		c.RetryTiers = []time.Duration{time.Second, 5 * time.Second}
	}
	c.SessionTimeout = cmp.Or(c.SessionTimeout, 6*time.Second)
	if c.Log == nil {
		c.Log = io.Discard
	}
	if c.RepoRoot == "" {
		root, err := FindRepoRoot()
		if err != nil {
			return c, err
		}
		c.RepoRoot = root
	}
	return c, nil
}

// FindRepoRoot returns the first directory from the working directory
// upwards that holds scripts/kafka.sh and cmd/switchyard.
func FindRepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if isFile(filepath.Join(dir, "scripts", "kafka.sh")) && isDir(filepath.Join(dir, "cmd", "switchyard")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("harness: no Switchyard repository (scripts/kafka.sh, cmd/switchyard) above the working directory")
		}
		dir = parent
	}
}

func isFile(p string) bool { st, err := os.Stat(p); return err == nil && st.Mode().IsRegular() }
func isDir(p string) bool  { st, err := os.Stat(p); return err == nil && st.IsDir() }

// Harness is a running Switchyard installation with a tenant to load.
type Harness struct {
	cfg Config

	// Brokers are the Kafka seed brokers.
	Brokers []string
	// BrokerPID is the local broker JVM's pid, 0 when not found.
	BrokerPID int
	// KafkaVersion is the broker's version as its class path says, or "".
	KafkaVersion string
	// Admin is an SDK client of the control plane with the operator token.
	Admin *switchyard.Client
	// Region and Tenant are what the harness created; ProducerKey is a
	// producer key of the tenant.
	Region      *v1.Region
	Tenant      *v1.Tenant
	ProducerKey string
	// ControlPlane is the control-plane process.
	ControlPlane *Process
	// Nodes are the data-plane processes, in order of start.
	Nodes []*Process

	operatorToken, nodeToken string
	ns                       string
	work                     string
	ownWork                  bool
	pg                       *pgcluster.Cluster
	startedBroker            bool
}

// Start runs everything cfg asks for. On error, what was started is
// stopped again.
func Start(ctx context.Context, cfg Config) (_ *Harness, err error) {
	cfg, err = cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	h := &Harness{cfg: cfg, operatorToken: "op-" + randomHex(16), nodeToken: "node-" + randomHex(16), ns: "load" + randomHex(4)}
	defer func() {
		if err != nil {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			defer cancel()
			_ = h.Close(cctx)
		}
	}()
	h.work = cfg.WorkDir
	if h.work == "" {
		if h.work, err = os.MkdirTemp("", "switchyard-load-"); err != nil {
			return nil, fmt.Errorf("harness: %w", err)
		}
		h.ownWork = true
	}
	// Postgres runs as an unprivileged user when we are root: it must be
	// able to reach its directory.
	if err := os.Chmod(h.work, 0o755); err != nil {
		return nil, fmt.Errorf("harness: %w", err)
	}

	h.Brokers = cfg.Brokers
	if len(h.Brokers) == 0 {
		h.logf("starting Kafka with scripts/kafka.sh start")
		if h.Brokers, h.startedBroker, err = startBroker(ctx, cfg.RepoRoot); err != nil {
			return nil, fmt.Errorf("harness: %w", err)
		}
	}
	h.BrokerPID, h.KafkaVersion = findBroker(h.Brokers[0])
	h.logf("Kafka at %s (pid %d, version %s)", strings.Join(h.Brokers, ","), h.BrokerPID, cmp.Or(h.KafkaVersion, "unknown"))

	bin := cfg.SwitchyardBin
	if bin == "" {
		bin = filepath.Join(h.work, "switchyard")
		t0 := time.Now()
		build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/switchyard")
		build.Dir = cfg.RepoRoot
		if out, err := build.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("harness: go build ./cmd/switchyard: %w: %s", err, out)
		}
		h.logf("built %s in %v", bin, time.Since(t0).Round(time.Millisecond))
	}

	if h.pg, err = pgcluster.Start(ctx, pgcluster.Config{Dir: filepath.Join(h.work, "pg")}); err != nil {
		return nil, fmt.Errorf("harness: %w", err)
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, fmt.Errorf("harness: %w", err)
	}
	h.ControlPlane = &Process{
		name: "controlplane", bin: bin, addr: addr, logPath: filepath.Join(h.work, "controlplane.log"),
		args: []string{"controlplane", "--listen", addr, "--allow-loopback-webhooks", "--log-format", "text", "--log-level", "warn"},
		env: []string{
			"SWITCHYARD_DATABASE_URL=" + h.pg.ConnString("postgres"),
			"SWITCHYARD_OPERATOR_TOKEN=" + h.operatorToken,
			"SWITCHYARD_NODE_TOKEN=" + h.nodeToken,
		},
	}
	if err := h.ControlPlane.start(ctx); err != nil {
		return nil, fmt.Errorf("harness: %w", err)
	}
	if h.Admin, err = switchyard.NewClient(h.ControlPlane.URL(), switchyard.WithToken(h.operatorToken)); err != nil {
		return nil, fmt.Errorf("harness: %w", err)
	}
	if h.Region, err = h.Admin.Regions().Create(ctx, &v1.Region{Name: RegionName, KafkaBrokers: h.Brokers}); err != nil {
		return nil, fmt.Errorf("harness: creating the region: %w", err)
	}
	if h.Tenant, err = h.Admin.Tenants().Create(ctx, &v1.Tenant{
		Name: "load", DefaultRegionId: h.Region.GetId(),
		Quotas: &v1.TenantQuotas{EventsPerSecond: 1_000_000, Burst: 1_000_000},
	}); err != nil {
		return nil, fmt.Errorf("harness: creating the tenant: %w", err)
	}
	if _, h.ProducerKey, err = h.Admin.APIKeys().Create(ctx, h.Tenant.GetId(), &v1.ApiKey{
		Name: "producer", Role: v1.ApiKeyRole_API_KEY_ROLE_PRODUCER,
	}); err != nil {
		return nil, fmt.Errorf("harness: creating a producer key: %w", err)
	}
	for range cfg.Nodes {
		if _, err := h.AddNode(ctx); err != nil {
			return nil, err
		}
	}
	return h, nil
}

// AddNode starts one more data-plane process and waits until it is ready.
func (h *Harness) AddNode(ctx context.Context) (*Process, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, fmt.Errorf("harness: %w", err)
	}
	tiers := make([]string, len(h.cfg.RetryTiers))
	for i, d := range h.cfg.RetryTiers {
		tiers[i] = d.String()
	}
	name := fmt.Sprintf("dataplane-%d", len(h.Nodes)+1)
	p := &Process{
		name: name, bin: h.ControlPlane.bin, addr: addr, logPath: filepath.Join(h.work, name+".log"),
		args: []string{"dataplane",
			"--control-plane", h.ControlPlane.URL(),
			"--region", RegionName,
			"--kafka-brokers", strings.Join(h.Brokers, ","),
			"--listen", addr,
			"--retry-tiers", strings.Join(tiers, ","),
			"--retry-namespace", h.ns,
			"--allow-loopback-webhooks",
			"--kafka-session-timeout", h.cfg.SessionTimeout.String(),
			"--log-format", "text", "--log-level", "warn",
		},
		env: []string{"SWITCHYARD_NODE_TOKEN=" + h.nodeToken},
	}
	if err := p.start(ctx); err != nil {
		return nil, fmt.Errorf("harness: %w", err)
	}
	h.Nodes = append(h.Nodes, p)
	h.logf("%s ready at %s (pid %d)", name, p.URL(), p.PID())
	return p, nil
}

// Producer returns an SDK client publishing with the tenant's producer key
// to the given nodes (the first preferred, the others on failure); with
// none, to every node.
func (h *Harness) Producer(nodes ...*Process) (*switchyard.Client, error) {
	if len(nodes) == 0 {
		nodes = h.Nodes
	}
	var more []string
	for _, n := range nodes[1:] {
		more = append(more, n.URL())
	}
	opts := []switchyard.ClientOption{switchyard.WithToken(h.ProducerKey)}
	if len(more) > 0 {
		opts = append(opts, switchyard.WithEndpoints(more...), switchyard.WithFailoverCooldown(time.Second))
	}
	return switchyard.NewClient(nodes[0].URL(), opts...)
}

// CreateTopic creates a topic of the tenant in the harness's region.
func (h *Harness) CreateTopic(ctx context.Context, name string, partitions uint32) (*v1.Topic, error) {
	return h.Admin.Topics().Create(ctx, h.Tenant.GetId(), &v1.Topic{Name: name, Partitions: partitions, RegionId: h.Region.GetId()})
}

// CreatePipeline creates a pipeline of the tenant; the answer carries the
// webhook secrets.
func (h *Harness) CreatePipeline(ctx context.Context, p *v1.Pipeline) (*v1.Pipeline, error) {
	return h.Admin.Pipelines().Create(ctx, h.Tenant.GetId(), p)
}

// KafkaTopic returns the Kafka topic of a topic of the tenant.
func (h *Harness) KafkaTopic(t *v1.Topic) string {
	return kafkaname.TenantTopic(h.Tenant.GetId(), t.GetId())
}

// TenantID returns the tenant's id.
func (h *Harness) TenantID() string { return h.Tenant.GetId() }

// WorkDir is where the processes' logs are.
func (h *Harness) WorkDir() string { return h.work }

// Close stops the nodes and the control plane (gracefully, then by
// force), Postgres, and the broker if Start started it; deletes the run's
// Kafka topics and consumer groups; and removes the work directory if it
// made it. It returns the first error.
func (h *Harness) Close(ctx context.Context) error {
	var errs []error
	for _, n := range h.Nodes {
		n.Stop(20 * time.Second)
	}
	if h.ControlPlane != nil {
		h.ControlPlane.Stop(20 * time.Second)
	}
	if h.Admin != nil {
		h.Admin.Close()
	}
	if h.pg != nil {
		errs = append(errs, h.pg.Stop(ctx))
	}
	if len(h.Brokers) > 0 && h.Tenant != nil {
		errs = append(errs, h.cleanupKafka(ctx))
	}
	if h.startedBroker {
		errs = append(errs, stopBroker(ctx, h.cfg.RepoRoot))
	}
	if h.ownWork && h.work != "" {
		errs = append(errs, os.RemoveAll(h.work))
	}
	return errors.Join(errs...)
}

// cleanupKafka deletes the tenant's topics and groups and the run's retry
// tiers from the broker, which may be shared.
func (h *Harness) cleanupKafka(ctx context.Context) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(h.Brokers...))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	prefix := kafkaname.Prefix + h.Tenant.GetId() + "."
	mine := func(name string) bool { return strings.HasPrefix(name, prefix) || strings.HasSuffix(name, "."+h.ns) }
	var errs []error
	if groups, err := adm.ListGroups(ctx); err == nil {
		var names []string
		for _, g := range groups.Groups() {
			if mine(g) {
				names = append(names, g)
			}
		}
		if len(names) > 0 {
			_, err = adm.DeleteGroups(ctx, names...)
			errs = append(errs, err)
		}
	}
	if topics, err := adm.ListTopics(ctx); err == nil {
		var names []string
		for _, name := range topics.Names() {
			if mine(name) {
				names = append(names, name)
			}
		}
		if len(names) > 0 {
			_, err = adm.DeleteTopics(ctx, names...)
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (h *Harness) logf(format string, args ...any) {
	fmt.Fprintf(h.cfg.Log, "harness: "+format+"\n", args...)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
