// Package confsync keeps a data-plane node's configuration in step with the
// control plane.
//
// A Syncer registers the node with the control plane's DataPlaneService,
// heartbeats at the interval the control plane asks for, and follows the
// WatchConfig stream, publishing every snapshot it receives to a
// snapshot.Holder. It keeps the last good snapshot in a file, so a node that
// restarts while the control plane is down serves with the configuration it
// had; every failure (control plane down, stream broken) is retried with
// capped exponential backoff and jitter until the context ends.
package confsync

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	"github.com/switchyard-dev/switchyard/dataplane/snapshot"
	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
	"github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1/switchyardv1connect"
)

// Defaults of Config.
const (
	DefaultMinBackoff  = 200 * time.Millisecond
	DefaultMaxBackoff  = 10 * time.Second
	DefaultCallTimeout = 10 * time.Second
)

// defaultHeartbeatInterval is used when the control plane names none.
const defaultHeartbeatInterval = 10 * time.Second

// Config configures a Syncer.
type Config struct {
	// ControlPlaneURL is the base URL of the control plane, e.g.
	// http://127.0.0.1:8080. Required.
	ControlPlaneURL string
	// Token is the bearer token the node calls the control plane with: the
	// node token, or the operator token. Required.
	Token string
	// Region is the id or the name of the region the node serves. Required.
	Region string
	// Hostname identifies the node within its region; a node registering
	// again with the same hostname keeps its id. Default os.Hostname().
	Hostname string
	// Version is the node's software version, for ListNodes.
	Version string
	// IngestURL is the base URL of the node's ingest API, advertised to the
	// control plane. Optional.
	IngestURL string
	// CacheFile is where the last snapshot received is kept (protobuf
	// binary), and read at start. Empty: no cache.
	CacheFile string
	// HTTPClient makes the calls. Default: an http.Client whose transport
	// (a clone of http.DefaultTransport) allows HTTP/1.1, HTTP/2 over TLS and
	// unencrypted HTTP/2; Connect calls work over any of them.
	HTTPClient connect.HTTPClient
	// Logger receives what the Syncer does. Default slog.Default().
	Logger *slog.Logger
	// MinBackoff and MaxBackoff bound the wait between retries of a failed
	// registration or a broken stream; it doubles from MinBackoff up to
	// MaxBackoff, with jitter. Defaults DefaultMinBackoff and
	// DefaultMaxBackoff.
	MinBackoff, MaxBackoff time.Duration
	// CallTimeout bounds each RegisterNode and Heartbeat call. Default
	// DefaultCallTimeout.
	CallTimeout time.Duration
}

// withDefaults returns a copy of c with zero values filled in.
func (c Config) withDefaults() Config {
	if c.Hostname == "" {
		if h, err := os.Hostname(); err == nil {
			c.Hostname = h
		}
	}
	if c.HTTPClient == nil {
		p := new(http.Protocols)
		p.SetHTTP1(true)
		p.SetHTTP2(true)
		p.SetUnencryptedHTTP2(true)
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.Protocols = p
		c.HTTPClient = &http.Client{Transport: tr}
	}
	c.Logger = cmp.Or(c.Logger, slog.Default())
	c.MinBackoff = cmp.Or(c.MinBackoff, DefaultMinBackoff)
	c.MaxBackoff = cmp.Or(c.MaxBackoff, DefaultMaxBackoff)
	c.CallTimeout = cmp.Or(c.CallTimeout, DefaultCallTimeout)
	return c
}

// validate reports what is wrong with c.
func (c Config) validate() error {
	var errs []error
	if u, err := url.Parse(c.ControlPlaneURL); c.ControlPlaneURL == "" || err != nil ||
		(u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("ControlPlaneURL must be an http or https URL, got %q", c.ControlPlaneURL))
	}
	if c.Token == "" {
		errs = append(errs, errors.New("Token is required"))
	}
	if c.Region == "" {
		errs = append(errs, errors.New("Region is required"))
	}
	if c.Hostname == "" {
		errs = append(errs, errors.New("Hostname is required (os.Hostname failed)"))
	}
	if c.MinBackoff < 0 || c.MaxBackoff < c.MinBackoff {
		errs = append(errs, fmt.Errorf("backoff must satisfy 0 <= MinBackoff <= MaxBackoff, got %v and %v", c.MinBackoff, c.MaxBackoff))
	}
	if c.CallTimeout < 0 {
		errs = append(errs, fmt.Errorf("CallTimeout must not be negative, got %v", c.CallTimeout))
	}
	return errors.Join(errs...)
}

// Syncer keeps a snapshot.Holder in step with the control plane. Create it
// with New and call Run once.
type Syncer struct {
	cfg    Config
	holder *snapshot.Holder
	client switchyardv1connect.DataPlaneServiceClient
	log    *slog.Logger

	ready     chan struct{}
	readyOnce sync.Once
	running   atomic.Bool

	// ownClient is the default HTTP client, made by New: its idle
	// connections are closed when Run returns.
	ownClient *http.Client

	mu        sync.Mutex
	nodeID    string
	heartbeat time.Duration
}

// New returns a Syncer publishing to holder, after filling defaults and
// checking cfg.
func New(cfg Config, holder *snapshot.Holder) (*Syncer, error) {
	own := cfg.HTTPClient == nil
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("confsync: invalid config: %w", err)
	}
	if holder == nil {
		return nil, errors.New("confsync: holder is required")
	}
	s := &Syncer{
		cfg:    cfg,
		holder: holder,
		client: switchyardv1connect.NewDataPlaneServiceClient(cfg.HTTPClient, cfg.ControlPlaneURL,
			connect.WithInterceptors(bearer(cfg.Token))),
		log:   cfg.Logger,
		ready: make(chan struct{}),
	}
	if own {
		s.ownClient, _ = cfg.HTTPClient.(*http.Client)
	}
	return s, nil
}

// NodeID returns the id the control plane gave this node, or "" before the
// first registration.
func (s *Syncer) NodeID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nodeID
}

// Ready returns a channel closed once the holder has a snapshot, from the
// cache file or from the control plane.
func (s *Syncer) Ready() <-chan struct{} { return s.ready }

// markReady closes the Ready channel once.
func (s *Syncer) markReady() { s.readyOnce.Do(func() { close(s.ready) }) }

// Run publishes the cached snapshot, if any, then registers the node,
// heartbeats and follows the config stream, retrying every failure, until
// ctx ends; then it returns nil, its goroutines finished. It fails only when
// called more than once.
func (s *Syncer) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return errors.New("confsync: Run called more than once")
	}
	if s.ownClient != nil {
		defer s.ownClient.CloseIdleConnections()
	}
	s.loadCache()
	if err := s.register(ctx); err != nil {
		return nil // ctx ended
	}
	var wg sync.WaitGroup
	wg.Go(func() { s.heartbeatLoop(ctx) })
	s.watchLoop(ctx)
	wg.Wait()
	return nil
}

// loadCache publishes the snapshot of the cache file, if there is one.
func (s *Syncer) loadCache() {
	if s.cfg.CacheFile == "" {
		return
	}
	b, err := os.ReadFile(s.cfg.CacheFile)
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	if err != nil {
		s.log.Warn("cannot read the config cache", slog.String("file", s.cfg.CacheFile), slog.Any("error", err))
		return
	}
	raw := &v1.ConfigSnapshot{}
	if err := proto.Unmarshal(b, raw); err != nil {
		s.log.Warn("ignoring a config cache that does not decode", slog.String("file", s.cfg.CacheFile), slog.Any("error", err))
		return
	}
	s.holder.Set(snapshot.New(raw))
	s.markReady()
	s.log.Info("serving the cached config until the control plane answers",
		slog.String("file", s.cfg.CacheFile), slog.Int64("version", raw.GetVersion()))
}

// register calls RegisterNode until it succeeds or ctx ends (then it
// returns ctx.Err()).
func (s *Syncer) register(ctx context.Context) error {
	b := s.newBackoff()
	for {
		cctx, cancel := context.WithTimeout(ctx, s.cfg.CallTimeout)
		res, err := s.client.RegisterNode(cctx, &v1.RegisterNodeRequest{
			Region:    s.cfg.Region,
			Hostname:  s.cfg.Hostname,
			Version:   s.cfg.Version,
			IngestUrl: s.cfg.IngestURL,
		})
		cancel()
		if err == nil {
			n := res.GetNode()
			every := res.GetHeartbeatInterval().AsDuration()
			if every <= 0 {
				every = defaultHeartbeatInterval
			}
			s.mu.Lock()
			s.nodeID, s.heartbeat = n.GetId(), every
			s.mu.Unlock()
			s.log.Info("registered with the control plane", slog.String("node_id", n.GetId()),
				slog.String("region_id", n.GetRegionId()), slog.Duration("heartbeat_interval", every))
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		wait := b.next()
		s.log.Warn("cannot register with the control plane", slog.Any("error", err), slog.Duration("retry_in", wait))
		if !sleep(ctx, wait) {
			return ctx.Err()
		}
	}
}

// heartbeatLoop calls Heartbeat at the interval the control plane gave,
// registering again when the control plane no longer knows the node.
func (s *Syncer) heartbeatLoop(ctx context.Context) {
	for {
		s.mu.Lock()
		every, id := s.heartbeat, s.nodeID
		s.mu.Unlock()
		if !sleep(ctx, every) {
			return
		}
		cctx, cancel := context.WithTimeout(ctx, s.cfg.CallTimeout)
		_, err := s.client.Heartbeat(cctx, &v1.HeartbeatRequest{NodeId: id, ConfigVersion: s.holder.Current().Version()})
		cancel()
		switch {
		case err == nil || ctx.Err() != nil:
		case connect.CodeOf(err) == connect.CodeNotFound:
			s.log.Warn("the control plane forgot this node; registering again", slog.String("node_id", id))
			if s.register(ctx) != nil {
				return
			}
		default:
			s.log.Warn("heartbeat failed", slog.String("node_id", id), slog.Any("error", err))
		}
	}
}

// watchLoop follows WatchConfig, reconnecting with backoff, until ctx ends.
func (s *Syncer) watchLoop(ctx context.Context) {
	b := s.newBackoff()
	for ctx.Err() == nil {
		got, err := s.watchOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		if got {
			b.reset()
		}
		wait := b.next()
		s.log.Warn("config stream ended; reconnecting", slog.Any("error", err), slog.Duration("retry_in", wait))
		if !sleep(ctx, wait) {
			return
		}
	}
}

// watchOnce follows one WatchConfig stream until it ends, and reports
// whether it delivered any snapshot.
func (s *Syncer) watchOnce(ctx context.Context) (got bool, err error) {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := s.client.WatchConfig(sctx, &v1.WatchConfigRequest{
		NodeId:       s.NodeID(),
		KnownVersion: s.holder.Current().Version(),
	})
	if err != nil {
		return false, fmt.Errorf("open config stream: %w", err)
	}
	defer func() {
		cancel()
		_ = stream.Close() // the stream is done either way; its error is err
	}()
	for stream.Receive() {
		got = true
		s.apply(stream.Msg().GetSnapshot())
	}
	if err := stream.Err(); err != nil {
		return got, fmt.Errorf("config stream: %w", err)
	}
	return got, errors.New("config stream closed by the control plane")
}

// apply publishes raw and writes it to the cache file when it is newer than
// what the holder has.
func (s *Syncer) apply(raw *v1.ConfigSnapshot) {
	if raw == nil {
		return
	}
	if !s.holder.Set(snapshot.New(raw)) {
		s.log.Debug("ignoring an older config snapshot", slog.Int64("version", raw.GetVersion()),
			slog.Int64("current", s.holder.Current().Version()))
		s.markReady()
		return
	}
	s.markReady()
	s.log.Info("config snapshot applied", slog.Int64("version", raw.GetVersion()))
	if err := s.writeCache(raw); err != nil {
		s.log.Warn("cannot write the config cache", slog.String("file", s.cfg.CacheFile), slog.Any("error", err))
	}
}

// writeCache writes raw to the cache file atomically: to a temporary file
// in the same directory, synced, then renamed over the cache.
func (s *Syncer) writeCache(raw *v1.ConfigSnapshot) error {
	if s.cfg.CacheFile == "" {
		return nil
	}
	b, err := proto.Marshal(raw)
	if err != nil {
		return fmt.Errorf("encode snapshot: %w", err)
	}
	dir, base := filepath.Split(s.cfg.CacheFile)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, base+".tmp-*")
	if err != nil {
		return fmt.Errorf("create temporary file: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // fails harmlessly once renamed
	if _, err := f.Write(b); err != nil {
		_ = f.Close()
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return fmt.Errorf("sync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, s.cfg.CacheFile); err != nil {
		return fmt.Errorf("rename %s: %w", tmp, err)
	}
	return nil
}

// backoff is capped exponential backoff with jitter.
type backoff struct {
	min, max, cur time.Duration
}

func (s *Syncer) newBackoff() *backoff {
	return &backoff{min: s.cfg.MinBackoff, max: s.cfg.MaxBackoff, cur: s.cfg.MinBackoff}
}

// next returns the next wait, between half and all of the current step,
// and doubles the step up to max.
func (b *backoff) next() time.Duration {
	d := b.cur
	b.cur = min(2*b.cur, b.max)
	if d <= 0 {
		return 0
	}
	half := d / 2
	return half + rand.N(d-half+1)
}

// reset starts again from min.
func (b *backoff) reset() { b.cur = b.min }

// sleep waits for d or until ctx ends, and reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// bearer adds the Authorization header to every call, unary or streaming.
type bearer string

// WrapUnary implements connect.Interceptor.
func (b bearer) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		req.Header().Set("Authorization", "Bearer "+string(b))
		return next(ctx, req)
	}
}

// WrapStreamingClient implements connect.Interceptor.
func (b bearer) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return func(ctx context.Context, spec connect.Spec) connect.StreamingClientConn {
		conn := next(ctx, spec)
		conn.RequestHeader().Set("Authorization", "Bearer "+string(b))
		return conn
	}
}

// WrapStreamingHandler implements connect.Interceptor; handlers are not
// intercepted.
func (b bearer) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}
