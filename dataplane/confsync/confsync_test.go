package confsync_test

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/switchyard-dev/switchyard/controlplane"
	"github.com/switchyard-dev/switchyard/controlplane/store"
	"github.com/switchyard-dev/switchyard/controlplane/store/pgstore"
	"github.com/switchyard-dev/switchyard/dataplane/confsync"
	"github.com/switchyard-dev/switchyard/dataplane/snapshot"
	"github.com/switchyard-dev/switchyard/internal/testenv/pgtest"
	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
	"github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1/switchyardv1connect"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const (
	operatorToken = "operator-token-for-tests-0123456789"
	nodeToken     = "node-token-for-tests-0123456789"
)

var (
	schema = pgtest.Template{Name: "controlplane", Setup: pgstore.Migrate}
	ops    = store.Actor{Kind: store.ActorOperator, ID: "test"}
)

// world is a database with a region "local", a tenant, a topic, a pipeline
// with a webhook and a producer key.
type world struct {
	pg       *pgstore.Store
	tenant   *v1.Tenant
	topic    *v1.Topic
	pipeline *v1.Pipeline
	key      *v1.ApiKey
}

func newWorld(t *testing.T) *world {
	t.Helper()
	ctx := t.Context()
	pool, err := pgxpool.New(context.Background(), pgtest.NewDB(t, schema))
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	w := &world{pg: pgstore.New(pool)}
	_, err = w.pg.CreateRegion(ctx, ops, &v1.Region{Name: "local", KafkaBrokers: []string{"127.0.0.1:9092"}})
	require.NoError(t, err)
	w.tenant, err = w.pg.CreateTenant(ctx, ops, &v1.Tenant{Name: "acme"})
	require.NoError(t, err)
	w.topic, err = w.pg.CreateTopic(ctx, ops, &v1.Topic{TenantId: w.tenant.GetId(), Name: "orders", Partitions: 3})
	require.NoError(t, err)
	w.pipeline, err = w.pg.CreatePipeline(ctx, ops, &v1.Pipeline{
		TenantId: w.tenant.GetId(), TopicId: w.topic.GetId(), Name: "ship",
		Destinations: []*v1.Destination{{Name: "hook",
			Kind: &v1.Destination_Webhook{Webhook: &v1.WebhookDestination{Url: "https://example.com/hook"}}}},
	}, []store.WebhookSecret{{Destination: "hook", Secret: "whsec_dGVzdC1zZWNyZXQtdmFsdWUtMDEyMzQ1Njc4OQ=="}})
	require.NoError(t, err)
	w.key, err = w.pg.CreateAPIKey(ctx, ops, &v1.ApiKey{TenantId: w.tenant.GetId(), Name: "producer",
		Role: v1.ApiKeyRole_API_KEY_ROLE_PRODUCER}, []byte("hash-of-producer"))
	require.NoError(t, err)
	return w
}

// controlPlane is a control plane served on a listener.
type controlPlane struct {
	srv  *controlplane.Server
	hs   *http.Server
	done chan struct{}
}

// startControlPlane serves a control plane over pg on addr ("" for a free
// port), with HTTP/1.1 and h2c, and returns it with its URL.
func startControlPlane(t *testing.T, pg store.Store, addr string) (*controlPlane, string) {
	t.Helper()
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var ln net.Listener
	// The address of an earlier server may take a moment to be free again.
	require.Eventually(t, func() bool {
		var err error
		ln, err = net.Listen("tcp", addr)
		return err == nil
	}, 10*time.Second, 20*time.Millisecond, "listen on %s", addr)
	srv, err := controlplane.New(controlplane.Config{
		Store: pg, OperatorToken: operatorToken, NodeToken: nodeToken,
		NodeHeartbeatInterval: 100 * time.Millisecond,
		Logger:                testLogger(t),
	})
	require.NoError(t, err)
	p := new(http.Protocols)
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	cp := &controlPlane{srv: srv, hs: &http.Server{Handler: srv.Handler(), Protocols: p}, done: make(chan struct{})}
	go func() {
		defer close(cp.done)
		_ = cp.hs.Serve(ln) // ErrServerClosed once stopped
	}()
	t.Cleanup(cp.stop)
	return cp, "http://" + ln.Addr().String()
}

// stop ends the control plane's streams, closes its server and waits for
// it. Stopping twice is harmless.
func (cp *controlPlane) stop() {
	cp.srv.Close()
	_ = cp.hs.Close()
	<-cp.done
}

// testLogger logs to the test's log until it ends.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(logWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type logWriter struct{ t *testing.T }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// run starts s.Run and returns a function that stops it and checks that it
// returned nil.
func run(t *testing.T, s *confsync.Syncer) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- s.Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-errc:
			require.NoError(t, err)
		case <-time.After(30 * time.Second):
			t.Fatal("Run did not return after its context ended")
		}
	}
	t.Cleanup(stop)
	return stop
}

func waitReady(t *testing.T, s *confsync.Syncer) {
	t.Helper()
	select {
	case <-s.Ready():
	case <-time.After(15 * time.Second):
		t.Fatal("the syncer did not become ready")
	}
}

// readCache decodes the cache file; nil when it does not exist or does not
// decode (yet).
func readCache(path string) *v1.ConfigSnapshot {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	raw := &v1.ConfigSnapshot{}
	if proto.Unmarshal(b, raw) != nil {
		return nil
	}
	return raw
}

func TestSyncer(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	_, url := startControlPlane(t, w.pg, "")
	cache := filepath.Join(t.TempDir(), "config.pb")
	holder := &snapshot.Holder{}
	s, err := confsync.New(confsync.Config{
		ControlPlaneURL: url, Token: nodeToken, Region: "local", Hostname: "node-1", Version: "1.0.0-test",
		IngestURL: "http://node-1:8081", CacheFile: cache, Logger: testLogger(t),
	}, holder)
	require.NoError(t, err)
	require.Empty(t, s.NodeID())
	run(t, s)
	waitReady(t, s)

	// The snapshot holds what was created.
	cur := holder.Current()
	_, ok := cur.Tenant(w.tenant.GetId())
	require.True(t, ok)
	tp, ok := cur.TopicByName(w.tenant.GetId(), "orders")
	require.True(t, ok)
	require.Equal(t, w.topic.GetId(), tp.GetId())
	p, ok := cur.Pipeline(w.pipeline.GetId())
	require.True(t, ok)
	require.Equal(t, "ship", p.GetName())
	require.Equal(t, []string{"whsec_dGVzdC1zZWNyZXQtdmFsdWUtMDEyMzQ1Njc4OQ=="}, cur.SigningSecrets(w.pipeline.GetId(), "hook"))
	k, ok := cur.APIKey(w.key.GetId())
	require.True(t, ok)
	require.Equal(t, []byte("hash-of-producer"), k.GetSecretHash())
	_, ok = cur.RegionByName("local")
	require.True(t, ok)

	// The node is registered and heartbeats the version it runs.
	require.Eventually(t, func() bool { return s.NodeID() != "" }, 10*time.Second, 10*time.Millisecond)
	hc := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(hc.CloseIdleConnections)
	op := switchyardv1connect.NewDataPlaneServiceClient(hc, url, connect.WithInterceptors(authHeader(operatorToken)))
	var node *v1.Node
	require.Eventually(t, func() bool {
		res, err := op.ListNodes(t.Context(), &v1.ListNodesRequest{})
		if err != nil || len(res.GetNodes()) != 1 {
			return false
		}
		node = res.GetNodes()[0]
		return node.GetConfigVersion() == holder.Current().Version()
	}, 10*time.Second, 20*time.Millisecond, "heartbeat reports the config version")
	require.Equal(t, s.NodeID(), node.GetId())
	require.Equal(t, "node-1", node.GetHostname())
	require.Equal(t, "1.0.0-test", node.GetVersion())
	require.Equal(t, "http://node-1:8081", node.GetIngestUrl())
	require.Equal(t, v1.NodeState_NODE_STATE_ALIVE, node.GetState())

	// The cache holds the snapshot.
	require.Eventually(t, func() bool {
		c := readCache(cache)
		return c != nil && c.GetVersion() == holder.Current().Version()
	}, 10*time.Second, 10*time.Millisecond)

	// A change arrives: revoke the key.
	before := holder.Current().Version()
	_, err = w.pg.RevokeAPIKey(t.Context(), ops, w.key.GetId())
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		_, ok := holder.Current().APIKey(w.key.GetId())
		return !ok
	}, 5*time.Second, 10*time.Millisecond, "the revoked key leaves the node's snapshot")
	require.Greater(t, holder.Current().Version(), before)
	require.Eventually(t, func() bool {
		c := readCache(cache)
		return c != nil && c.GetVersion() == holder.Current().Version() && len(c.GetApiKeys()) == 0
	}, 10*time.Second, 10*time.Millisecond)

	// Only the cache file is left in its directory: temporary files are
	// renamed or removed.
	entries, err := os.ReadDir(filepath.Dir(cache))
	require.NoError(t, err)
	require.Len(t, entries, 1)
	require.Equal(t, "config.pb", entries[0].Name())
}

// authHeader adds a bearer token to unary calls.
type authHeader string

func (a authHeader) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		req.Header().Set("Authorization", "Bearer "+string(a))
		return next(ctx, req)
	}
}

func (a authHeader) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (a authHeader) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}

// TestSyncerControlPlaneDown starts a node with a cache file while the
// control plane is down: it serves the cached snapshot, then catches up
// once the control plane is up, and again after the control plane restarts.
func TestSyncerControlPlaneDown(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	cached, err := w.pg.Snapshot(t.Context())
	require.NoError(t, err)
	cache := filepath.Join(t.TempDir(), "config.pb")
	b, err := proto.Marshal(cached)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(cache, b, 0o600))

	// An address nothing listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())

	holder := &snapshot.Holder{}
	s, err := confsync.New(confsync.Config{
		ControlPlaneURL: "http://" + addr, Token: nodeToken, Region: "local", Hostname: "node-1",
		CacheFile: cache, Logger: testLogger(t), MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
	}, holder)
	require.NoError(t, err)
	run(t, s)
	waitReady(t, s)
	require.Equal(t, cached.GetVersion(), holder.Current().Version())
	_, ok := holder.Current().Pipeline(w.pipeline.GetId())
	require.True(t, ok, "the cached pipeline is served")
	require.Empty(t, s.NodeID(), "not registered while the control plane is down")

	// The configuration changes meanwhile; the control plane comes up on
	// the same address.
	_, err = w.pg.CreateTopic(t.Context(), ops, &v1.Topic{TenantId: w.tenant.GetId(), Name: "invoices"})
	require.NoError(t, err)
	cp, _ := startControlPlane(t, w.pg, addr)
	require.Eventually(t, func() bool {
		_, ok := holder.Current().TopicByName(w.tenant.GetId(), "invoices")
		return ok
	}, 15*time.Second, 10*time.Millisecond, "the node catches up")
	require.NotEmpty(t, s.NodeID())
	require.Eventually(t, func() bool {
		c := readCache(cache)
		return c != nil && c.GetVersion() == holder.Current().Version()
	}, 10*time.Second, 10*time.Millisecond)

	// The control plane restarts; a change made while it is down arrives
	// once it is back.
	cp.stop()
	_, err = w.pg.CreateTopic(t.Context(), ops, &v1.Topic{TenantId: w.tenant.GetId(), Name: "refunds"})
	require.NoError(t, err)
	_, ok = holder.Current().TopicByName(w.tenant.GetId(), "refunds")
	require.False(t, ok)
	startControlPlane(t, w.pg, addr)
	require.Eventually(t, func() bool {
		_, ok := holder.Current().TopicByName(w.tenant.GetId(), "refunds")
		return ok
	}, 15*time.Second, 10*time.Millisecond, "the stream resumes after a restart")
	want, err := w.pg.ConfigVersion(t.Context())
	require.NoError(t, err)
	require.Equal(t, want, holder.Current().Version())
}

// TestSyncerBadCache ignores a cache that does not decode and replaces it.
func TestSyncerBadCache(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	_, url := startControlPlane(t, w.pg, "")
	cache := filepath.Join(t.TempDir(), "config.pb")
	require.NoError(t, os.WriteFile(cache, []byte("\xff\xff not a snapshot"), 0o600))
	holder := &snapshot.Holder{}
	s, err := confsync.New(confsync.Config{
		ControlPlaneURL: url, Token: operatorToken, Region: "local", Hostname: "node-1",
		CacheFile: cache, Logger: testLogger(t),
	}, holder)
	require.NoError(t, err)
	run(t, s)
	waitReady(t, s)
	want, err := w.pg.ConfigVersion(t.Context())
	require.NoError(t, err)
	require.Equal(t, want, holder.Current().Version())
	require.Eventually(t, func() bool {
		c := readCache(cache)
		return c != nil && c.GetVersion() == want
	}, 10*time.Second, 10*time.Millisecond)
}

// TestSyncerRefused keeps retrying a registration the control plane
// refuses (unknown region, wrong token) without becoming ready, and stops
// when its context ends.
func TestSyncerRefused(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	_, url := startControlPlane(t, w.pg, "")
	for name, cfg := range map[string]confsync.Config{
		"unknown region": {Token: nodeToken, Region: "elsewhere"},
		"bad token":      {Token: "not-the-token", Region: "local"},
	} {
		t.Run(name, func(t *testing.T) {
			cfg.ControlPlaneURL, cfg.Hostname, cfg.Logger = url, "node-1", testLogger(t)
			cfg.MinBackoff, cfg.MaxBackoff = 10*time.Millisecond, 50*time.Millisecond
			s, err := confsync.New(cfg, &snapshot.Holder{})
			require.NoError(t, err)
			stop := run(t, s)
			select {
			case <-s.Ready():
				t.Fatal("ready without a snapshot")
			case <-time.After(300 * time.Millisecond):
			}
			require.Empty(t, s.NodeID())
			stop()
		})
	}
	nodes, err := w.pg.ListNodes(t.Context(), "")
	require.NoError(t, err)
	require.Empty(t, nodes)
}

func TestNew(t *testing.T) {
	t.Parallel()
	good := confsync.Config{ControlPlaneURL: "http://127.0.0.1:8080", Token: nodeToken, Region: "local"}
	s, err := confsync.New(good, &snapshot.Holder{})
	require.NoError(t, err)
	require.Empty(t, s.NodeID())
	select {
	case <-s.Ready():
		t.Fatal("ready before Run")
	default:
	}
	_, err = confsync.New(good, nil)
	require.Error(t, err)

	for name, mutate := range map[string]func(*confsync.Config){
		"no url":        func(c *confsync.Config) { c.ControlPlaneURL = "" },
		"bad scheme":    func(c *confsync.Config) { c.ControlPlaneURL = "ftp://x" },
		"no host":       func(c *confsync.Config) { c.ControlPlaneURL = "http://" },
		"no token":      func(c *confsync.Config) { c.Token = "" },
		"no region":     func(c *confsync.Config) { c.Region = "" },
		"max below min": func(c *confsync.Config) { c.MinBackoff, c.MaxBackoff = time.Second, time.Millisecond },
		"neg timeout":   func(c *confsync.Config) { c.CallTimeout = -time.Second },
	} {
		cfg := good
		mutate(&cfg)
		_, err := confsync.New(cfg, &snapshot.Holder{})
		require.Error(t, err, name)
	}

	// Run runs once.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	require.NoError(t, s.Run(ctx))
	require.Error(t, s.Run(ctx))
}
