// Package dataplane assembles a data-plane node: it follows the control
// plane's configuration stream, provisions the region's Kafka topics, accepts
// events (the Connect IngestService and CloudEvents over HTTP), runs the
// pipeline workers that deliver them to webhooks and Kafka topics, and serves
// metrics and health endpoints.
//
// A node keeps no state of its own beyond a cache of the last configuration
// (so it can start and keep delivering while the control plane is down):
// events live in Kafka, progress in Kafka's committed offsets.
//
//	node, err := dataplane.New(dataplane.Config{
//		ControlPlaneURL: "http://controlplane:8080",
//		Token:           os.Getenv("SWITCHYARD_NODE_TOKEN"),
//		Region:          "eu-west-1",
//	})
//	...
//	err = node.Run(ctx) // until ctx is done; then a graceful shutdown
package dataplane

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/grpchealth"
	"connectrpc.com/grpcreflect"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/switchyard-dev/switchyard/dataplane/confsync"
	"github.com/switchyard-dev/switchyard/dataplane/deliver"
	"github.com/switchyard-dev/switchyard/dataplane/ingest"
	"github.com/switchyard-dev/switchyard/dataplane/pipeline"
	"github.com/switchyard-dev/switchyard/dataplane/provision"
	"github.com/switchyard-dev/switchyard/dataplane/snapshot"
	"github.com/switchyard-dev/switchyard/internal/acklog"
	"github.com/switchyard-dev/switchyard/internal/kafkaname"
	"github.com/switchyard-dev/switchyard/internal/netguard"
	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
)

// Defaults of a node.
const (
	// DefaultListen is where a node serves ingest, metrics and health.
	DefaultListen = "127.0.0.1:8081"
	// DefaultShutdownTimeout bounds each stage of a graceful shutdown:
	// draining ingest requests, then letting the workers finish and commit.
	DefaultShutdownTimeout = 15 * time.Second
	// DefaultReadHeaderTimeout bounds how long a client may take to send
	// request headers.
	DefaultReadHeaderTimeout = 10 * time.Second
	// DefaultIdleTimeout closes keep-alive connections idle this long.
	DefaultIdleTimeout = 2 * time.Minute
	// snapshotCacheFile is the name of the configuration cache in DataDir.
	snapshotCacheFile = "config-snapshot.pb"
	// flushTimeout bounds the final flush of the producer.
	flushTimeout = 10 * time.Second
	// initialProvisionAttempts is how often the first provisioning is tried
	// before the node starts anyway (the provisioner keeps trying).
	initialProvisionAttempts = 3
)

// ingestServiceName is the Connect service the node serves.
const ingestServiceName = "switchyard.v1.IngestService"

// ackLogPartitions is the partition count of the ack log the node
// provisions (kafkaname.AckLogTopic); every node of a region writes its
// delivery outcomes there, for the control plane's ledger.
const ackLogPartitions = 8

// Config configures a Node.
type Config struct {
	// ControlPlaneURL is the control plane's base URL, e.g.
	// "http://127.0.0.1:8080". Required.
	ControlPlaneURL string
	// Token is the bearer token the node presents to the control plane: the
	// node token (or the operator token where no node token is set).
	// Required.
	Token string
	// Region is the region the node serves, by id ("reg_...") or name.
	// Required.
	Region string
	// Brokers, when set, override the region's kafka_brokers: the seed
	// brokers of the Kafka cluster the node uses.
	Brokers []string
	// KafkaOpts are extra franz-go options for every Kafka client of the
	// node (TLS, SASL, ...).
	KafkaOpts []kgo.Opt
	// Listen is the address serving ingest (Connect at
	// /switchyard.v1.IngestService/, CloudEvents at /ce/<topic>), /metrics,
	// /healthz and /readyz; port 0 picks a free port. Default DefaultListen.
	Listen string
	// IngestURL is the URL the node reports to the control plane as where it
	// accepts events; empty means http:// and the bound address.
	IngestURL string
	// DataDir keeps the last configuration snapshot, so that the node can
	// start while the control plane is unreachable. Empty keeps nothing.
	DataDir string
	// Hostname identifies the node to the control plane; empty means
	// os.Hostname().
	Hostname string
	// Version is the build's version, reported to the control plane.
	Version string
	// WebhookPolicy is the SSRF guard applied when dialling webhooks. The
	// zero value refuses loopback, private, link-local and metadata
	// addresses.
	WebhookPolicy netguard.Policy
	// Tiers are the retry delay tiers; empty means pipeline.DefaultTiers().
	Tiers []pipeline.Tier
	// BreakerThreshold is the fewest retryable failures within
	// deliver.BreakerWindow that open a destination's circuit breaker (when
	// they are also at least half of its attempts); 0 means
	// deliver.DefaultBreakerThreshold.
	BreakerThreshold int
	// BreakerCooldown is how long an open circuit stays open before a probe;
	// 0 means deliver.DefaultBreakerCooldown.
	BreakerCooldown time.Duration
	// ReplicationFactor of the Kafka topics the node creates; 0 means the
	// broker's default.
	ReplicationFactor int16
	// HTTPClient talks to the control plane; nil means one suited to its
	// streaming API (HTTP/1.1 and cleartext HTTP/2).
	HTTPClient *http.Client
	// ShutdownTimeout bounds each stage of a graceful shutdown. Default
	// DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// Logger receives the node's logs; nil means slog.Default().
	Logger *slog.Logger
	// Registry receives the node's metrics and is served at /metrics; nil
	// means a new registry with the Go and process collectors.
	Registry *prometheus.Registry
}

func (c Config) withDefaults() Config {
	c.Listen = cmp.Or(c.Listen, DefaultListen)
	c.ShutdownTimeout = cmp.Or(c.ShutdownTimeout, DefaultShutdownTimeout)
	c.Logger = cmp.Or(c.Logger, slog.Default())
	if len(c.Tiers) == 0 {
		c.Tiers = pipeline.DefaultTiers()
	}
	if c.Hostname == "" {
		c.Hostname, _ = os.Hostname()
		c.Hostname = cmp.Or(c.Hostname, "switchyard-node")
	}
	c.Version = cmp.Or(c.Version, "dev")
	if c.Registry == nil {
		c.Registry = prometheus.NewRegistry()
		c.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	return c
}

func (c Config) validate() error {
	var errs []error
	if c.ControlPlaneURL == "" {
		errs = append(errs, errors.New("a control-plane URL is required"))
	} else if u, err := url.Parse(c.ControlPlaneURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("control-plane URL %q: want http(s)://host[:port]", c.ControlPlaneURL))
	}
	if c.Token == "" {
		errs = append(errs, errors.New("a node token is required"))
	}
	if c.Region == "" {
		errs = append(errs, errors.New("a region (id or name) is required"))
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		errs = append(errs, fmt.Errorf("listen address %q: %w", c.Listen, err))
	}
	for _, b := range c.Brokers {
		if _, _, err := net.SplitHostPort(b); err != nil {
			errs = append(errs, fmt.Errorf("Kafka broker %q: %w", b, err))
		}
	}
	if c.ShutdownTimeout < 0 {
		errs = append(errs, errors.New("the shutdown timeout must not be negative"))
	}
	if c.BreakerThreshold < 0 || c.BreakerCooldown < 0 {
		errs = append(errs, errors.New("the breaker threshold and cooldown must not be negative"))
	}
	if c.ReplicationFactor < -1 {
		errs = append(errs, fmt.Errorf("replication factor %d: want -1, 0 or more", c.ReplicationFactor))
	}
	for i, t := range c.Tiers {
		if t.Delay <= 0 || t.Topic == "" || t.Group == "" {
			errs = append(errs, fmt.Errorf("retry tier %d: delay, topic and group are required", i))
		}
	}
	return errors.Join(errs...)
}

// Node is one data-plane node. Create it with New and start it with Run.
type Node struct {
	cfg   Config
	ready chan struct{}
	addr  atomic.Pointer[string]
	// ingest is the ingest routes once the node is set up.
	ingest    atomic.Pointer[http.Handler]
	draining  atomic.Bool
	regionID  atomic.Pointer[string]
	nodeID    atomic.Pointer[string]
	readyOnce sync.Once
	ran       atomic.Bool
}

// New checks cfg and returns a node. Nothing starts until Run.
func New(cfg Config) (*Node, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("dataplane: %w", err)
	}
	return &Node{cfg: cfg, ready: make(chan struct{})}, nil
}

// Addr returns the address the node serves on once Run has bound it, else
// "".
func (n *Node) Addr() string {
	if a := n.addr.Load(); a != nil {
		return *a
	}
	return ""
}

// Ready is closed once the node has a configuration and serves ingest and
// delivery.
func (n *Node) Ready() <-chan struct{} { return n.ready }

// RegionID returns the id of the region served, once known.
func (n *Node) RegionID() string {
	if r := n.regionID.Load(); r != nil {
		return *r
	}
	return ""
}

// NodeID returns the id the control plane gave the node, once registered.
func (n *Node) NodeID() string {
	if id := n.nodeID.Load(); id != nil {
		return *id
	}
	return ""
}

// component is a long-running part of the node.
type component struct {
	name string
	run  func(context.Context) error
	// done is closed when run has returned; err is its result.
	done chan struct{}
	err  error
}

func startComponent(ctx context.Context, name string, run func(context.Context) error, failed chan<- *component) *component {
	c := &component{name: name, run: run, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		c.err = run(ctx)
		if ctx.Err() == nil {
			// It stopped on its own: the node cannot go on without it.
			if c.err == nil {
				c.err = errors.New("stopped unexpectedly")
			}
			select {
			case failed <- c:
			default:
			}
		}
	}()
	return c
}

// wait waits for the component to return, at most timeout.
func (c *component) wait(timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-c.done:
		if c.err != nil && !errors.Is(c.err, context.Canceled) {
			return fmt.Errorf("%s: %w", c.name, c.err)
		}
		return nil
	case <-t.C:
		return fmt.Errorf("%s: did not stop within %v", c.name, timeout)
	}
}

// Run runs the node until ctx is done, then shuts down gracefully: it stops
// accepting events (answering in-flight publishes), lets the pipeline
// workers finish their attempts and commit, and closes its clients. It
// returns nil after a clean shutdown, or the error that stopped the node.
// Run may be called once.
func (n *Node) Run(ctx context.Context) (err error) {
	if !n.ran.CompareAndSwap(false, true) {
		return errors.New("dataplane: Run called twice")
	}
	log := n.cfg.Logger
	failed := make(chan *component, 8)

	// Bind first: the address goes to the control plane at registration,
	// and /healthz answers while the node starts.
	ln, err := new(net.ListenConfig).Listen(ctx, "tcp", n.cfg.Listen)
	if err != nil {
		return fmt.Errorf("dataplane: listening on %s: %w", n.cfg.Listen, err)
	}
	addr := dialableAddr(ln.Addr())
	n.addr.Store(&addr)
	srv := n.newServer(ctx)
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	log.Info("data plane listening", "addr", addr)
	defer func() {
		n.draining.Store(true)
		if srv != nil {
			_ = srv.Close()
			<-serveErr
		}
	}()

	// The configuration stream.
	holder := new(snapshot.Holder)
	ingestURL := cmp.Or(n.cfg.IngestURL, "http://"+addr)
	var cacheFile string
	if n.cfg.DataDir != "" {
		if err := os.MkdirAll(n.cfg.DataDir, 0o700); err != nil {
			return fmt.Errorf("dataplane: creating data directory: %w", err)
		}
		cacheFile = filepath.Join(n.cfg.DataDir, snapshotCacheFile)
	}
	syncCfg := confsync.Config{
		ControlPlaneURL: n.cfg.ControlPlaneURL,
		Token:           n.cfg.Token,
		Region:          n.cfg.Region,
		Hostname:        n.cfg.Hostname,
		Version:         n.cfg.Version,
		IngestURL:       ingestURL,
		CacheFile:       cacheFile,
		Logger:          log.With("component", "confsync"),
	}
	if n.cfg.HTTPClient != nil {
		syncCfg.HTTPClient = n.cfg.HTTPClient
	}
	syncer, err := confsync.New(syncCfg, holder)
	if err != nil {
		return fmt.Errorf("dataplane: %w", err)
	}
	// Components stop in the reverse order of their start, each with its
	// own context, so that the workers finish before the producer closes.
	syncCtx, stopSync := context.WithCancel(context.WithoutCancel(ctx))
	defer stopSync()
	syncComp := startComponent(syncCtx, "configuration sync", syncer.Run, failed)
	defer func() {
		stopSync()
		err = errors.Join(err, syncComp.wait(n.cfg.ShutdownTimeout))
	}()

	log.Info("waiting for the configuration", "control_plane", n.cfg.ControlPlaneURL, "region", n.cfg.Region)
	select {
	case <-ctx.Done():
		return nil
	case c := <-failed:
		return fmt.Errorf("dataplane: %s: %w", c.name, c.err)
	case <-syncer.Ready():
	}
	if id := syncer.NodeID(); id != "" {
		n.nodeID.Store(&id)
	}

	region, err := n.resolveRegion(ctx, holder, failed)
	if err != nil || region == nil {
		return err
	}
	regionID := region.GetId()
	n.regionID.Store(&regionID)
	brokers := n.cfg.Brokers
	if len(brokers) == 0 {
		brokers = region.GetKafkaBrokers()
	}
	if len(brokers) == 0 {
		return fmt.Errorf("dataplane: region %s (%s) names no Kafka brokers: set its kafka_brokers or give the node brokers", region.GetName(), regionID)
	}
	log = log.With("region", region.GetName())
	log.Info("serving region", "region_id", regionID, "brokers", strings.Join(brokers, ","), "config_version", holder.Current().Version())

	// Kafka: one client produces ingested events, retries, dead letters and
	// Kafka deliveries, and carries the admin requests.
	producer, err := kgo.NewClient(append(ingest.NewProducerOpts(brokers), n.cfg.KafkaOpts...)...)
	if err != nil {
		return fmt.Errorf("dataplane: Kafka producer: %w", err)
	}
	defer func() {
		flushCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), flushTimeout)
		defer cancel()
		if ferr := producer.Flush(flushCtx); ferr != nil {
			err = errors.Join(err, fmt.Errorf("dataplane: flushing producer: %w", ferr))
		}
		producer.Close()
	}()

	// The ack log has its own producer: an ack carrying a payload is larger
	// than the default batch bound, which must stay as it is for tenant
	// topics (their brokers' max.message.bytes).
	ackProducer, err := kgo.NewClient(append(ingest.NewProducerOpts(brokers),
		append([]kgo.Opt{kgo.ProducerBatchMaxBytes(acklog.MaxRecordBytes)}, n.cfg.KafkaOpts...)...)...)
	if err != nil {
		return fmt.Errorf("dataplane: Kafka ack producer: %w", err)
	}
	defer func() {
		flushCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), flushTimeout)
		defer cancel()
		if ferr := ackProducer.Flush(flushCtx); ferr != nil {
			err = errors.Join(err, fmt.Errorf("dataplane: flushing ack producer: %w", ferr))
		}
		ackProducer.Close()
	}()

	retryTopics := make([]string, len(n.cfg.Tiers))
	for i, t := range n.cfg.Tiers {
		retryTopics[i] = t.Topic
	}
	prov, err := provision.New(provision.Config{
		Admin:       kadm.NewClient(producer),
		Snapshots:   holder,
		RegionID:    regionID,
		RetryTopics: retryTopics,
		Internal: []provision.Spec{{Name: kafkaname.AckLogTopic, Partitions: ackLogPartitions,
			MaxMessageBytes: acklog.TopicMaxMessageBytes}},
		ReplicationFactor: n.cfg.ReplicationFactor,
		Logger:            log.With("component", "provision"),
	})
	if err != nil {
		return fmt.Errorf("dataplane: %w", err)
	}
	if err := n.provisionFirst(ctx, prov); err != nil {
		return err
	}
	provCtx, stopProv := context.WithCancel(context.WithoutCancel(ctx))
	defer stopProv()
	provComp := startComponent(provCtx, "provisioner", prov.Run, failed)
	defer func() {
		stopProv()
		err = errors.Join(err, provComp.wait(n.cfg.ShutdownTimeout))
	}()

	// Delivery.
	deliverMetrics := deliver.NewMetrics(n.cfg.Registry)
	webhook, err := deliver.NewWebhook(deliver.WebhookConfig{
		Policy:  n.cfg.WebhookPolicy,
		Metrics: deliverMetrics,
		Logger:  log.With("component", "webhook"),
	})
	if err != nil {
		return fmt.Errorf("dataplane: %w", err)
	}
	defer webhook.Close()
	kafkaDest, err := deliver.NewKafka(deliver.KafkaConfig{Client: producer, Metrics: deliverMetrics})
	if err != nil {
		return fmt.Errorf("dataplane: %w", err)
	}
	router := deliver.NewRouter(webhook, kafkaDest, deliverMetrics)
	router.BreakerThreshold = n.cfg.BreakerThreshold
	router.BreakerCooldown = n.cfg.BreakerCooldown
	router.Logger = log.With("component", "deliver")
	defer router.Close()

	runner, err := pipeline.New(pipeline.Config{
		Brokers:    brokers,
		ClientOpts: n.cfg.KafkaOpts,
		Snapshots:  holder,
		RegionID:   regionID,
		Deliverer:  router,
		Producer:   producer,
		Acks:       ackProducer,
		NodeID:     n.NodeID,
		Tiers:      n.cfg.Tiers,
		Metrics:    pipeline.NewMetrics(n.cfg.Registry),
		Logger:     log.With("component", "pipeline"),
	})
	if err != nil {
		return fmt.Errorf("dataplane: %w", err)
	}
	runCtx, stopRunner := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRunner()
	runComp := startComponent(runCtx, "pipeline runner", runner.Run, failed)
	defer func() {
		// Workers finish their attempts and commit before the producer and
		// the deliverers close.
		stopRunner()
		err = errors.Join(err, runComp.wait(n.cfg.ShutdownTimeout))
	}()

	// Ingest, last: events are accepted once everything that handles them
	// runs.
	ing, err := ingest.New(ingest.Config{
		Snapshots: holder,
		Producer:  producer,
		Logger:    log.With("component", "ingest"),
		Metrics:   ingest.NewMetrics(n.cfg.Registry),
	})
	if err != nil {
		return fmt.Errorf("dataplane: %w", err)
	}
	n.ingest.Store(new(ingestRoutes(ing)))
	n.readyOnce.Do(func() { close(n.ready) })
	log.Info("data plane ready", "ingest", ingestURL, "node_id", n.NodeID())

	select {
	case <-ctx.Done():
	case c := <-failed:
		err = fmt.Errorf("dataplane: %s: %w", c.name, c.err)
		log.Error("data plane component failed; shutting down", "component", c.name, "err", c.err)
	case serr := <-serveErr:
		srv = nil
		err = fmt.Errorf("dataplane: serving HTTP: %w", serr)
	}

	// Stop accepting events first; in-flight publishes get their answer.
	n.draining.Store(true)
	log.Info("shutting down data plane", "timeout", n.cfg.ShutdownTimeout.String())
	if srv != nil {
		shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), n.cfg.ShutdownTimeout)
		if serr := srv.Shutdown(shutdownCtx); serr != nil {
			log.Warn("graceful HTTP shutdown incomplete; closing connections", "err", serr)
			_ = srv.Close()
		}
		cancel()
		<-serveErr
		srv = nil
	}
	// The deferred stops run next: runner, provisioner, sync, producer.
	return err
}

// resolveRegion finds the configured region in the snapshot, by id or by
// name, waiting for newer snapshots if it is not there yet. It returns nil,
// nil when ctx ends first.
func (n *Node) resolveRegion(ctx context.Context, holder *snapshot.Holder, failed <-chan *component) (*v1.Region, error) {
	const recheck = 500 * time.Millisecond
	warned := false
	for {
		snap := holder.Current()
		if r, ok := snap.Region(n.cfg.Region); ok {
			return r, nil
		}
		if r, ok := snap.RegionByName(n.cfg.Region); ok {
			return r, nil
		}
		if !warned {
			n.cfg.Logger.Warn("region not in the configuration yet; waiting", "region", n.cfg.Region, "config_version", snap.Version())
			warned = true
		}
		select {
		case <-ctx.Done():
			return nil, nil
		case c := <-failed:
			return nil, fmt.Errorf("dataplane: %s: %w", c.name, c.err)
		case <-time.After(recheck):
		}
	}
}

// provisionFirst creates the region's topics before ingest and the workers
// start, trying a few times; after that the provisioner keeps trying in the
// background.
func (n *Node) provisionFirst(ctx context.Context, p *provision.Provisioner) error {
	backoff := 500 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := p.Reconcile(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return nil
		}
		if attempt == initialProvisionAttempts {
			n.cfg.Logger.Warn("could not provision every Kafka topic; starting anyway and retrying in the background", "err", err)
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
			backoff *= 2
		}
	}
}

// ingestRoutes is the handler of the ingest paths.
func ingestRoutes(ing *ingest.Service) http.Handler {
	mux := http.NewServeMux()
	path, h := ing.Handler()
	mux.Handle(path, h)
	mux.Handle("/ce/", ing.CloudEventsHandler())
	return mux
}

// newServer builds the HTTP server: health, readiness, metrics, and the
// ingest routes once the node is ready (503 "unavailable" before).
func (n *Node) newServer(ctx context.Context) *http.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeStatus(w, http.StatusOK, "ok", "")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		switch {
		case n.draining.Load():
			writeStatus(w, http.StatusServiceUnavailable, "draining", "shutting down")
		case n.ingest.Load() == nil:
			writeStatus(w, http.StatusServiceUnavailable, "starting", "waiting for the configuration and Kafka")
		default:
			writeStatus(w, http.StatusOK, "ok", "")
		}
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(n.cfg.Registry, promhttp.HandlerOpts{Registry: n.cfg.Registry}))
	mux.Handle(grpchealth.NewHandler(grpchealth.NewStaticChecker(ingestServiceName)))
	reflector := grpcreflect.NewStaticReflector(ingestServiceName)
	mux.Handle(grpcreflect.NewHandlerV1(reflector))
	mux.Handle(grpcreflect.NewHandlerV1Alpha(reflector))
	gated := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := n.ingest.Load()
		if h == nil || n.draining.Load() {
			writeUnavailable(w)
			return
		}
		(*h).ServeHTTP(w, r)
	})
	mux.Handle("/"+ingestServiceName+"/", gated)
	mux.Handle("/ce/", gated)

	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	// gRPC clients speak HTTP/2 without TLS.
	protocols.SetUnencryptedHTTP2(true)
	return &http.Server{
		Handler:           mux,
		Protocols:         protocols,
		ReadHeaderTimeout: DefaultReadHeaderTimeout,
		IdleTimeout:       DefaultIdleTimeout,
		MaxHeaderBytes:    1 << 20,
		ErrorLog:          slog.NewLogLogger(n.cfg.Logger.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
}

// writeUnavailable answers a request the node cannot take yet (or any more)
// with a Connect "unavailable" error, which clients retry.
func writeUnavailable(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Retry-After", "1")
	w.WriteHeader(http.StatusServiceUnavailable)
	_ = json.NewEncoder(w).Encode(map[string]string{
		"code":    "unavailable",
		"message": "the data-plane node is not serving events (starting or shutting down); try again",
	})
}

// writeStatus writes a small JSON health document.
func writeStatus(w http.ResponseWriter, code int, status, detail string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	body := map[string]string{"status": status}
	if detail != "" {
		body["detail"] = detail
	}
	_ = json.NewEncoder(w).Encode(body)
}

// dialableAddr turns a listener address into one a client on this machine
// can dial: an unspecified host (0.0.0.0, ::) becomes loopback.
func dialableAddr(addr net.Addr) string {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok {
		return addr.String()
	}
	ip := tcp.IP
	if ip == nil || ip.IsUnspecified() {
		ip = net.IPv4(127, 0, 0, 1)
	}
	return net.JoinHostPort(ip.String(), fmt.Sprint(tcp.Port))
}
