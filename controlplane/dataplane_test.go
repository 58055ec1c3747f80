package controlplane

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/switchyard-dev/switchyard/controlplane/store"
	"github.com/switchyard-dev/switchyard/controlplane/store/pgstore"
	"github.com/switchyard-dev/switchyard/internal/ids"
	"github.com/switchyard-dev/switchyard/internal/testenv/pgtest"
	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
	"github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1/switchyardv1connect"
)

func TestRegisterNode(t *testing.T) {
	t.Parallel()
	b := setup(t)
	region := b.region(t)
	node := b.clients(testNodeToken).dataplane
	ctx := t.Context()

	byName, err := node.RegisterNode(ctx, &v1.RegisterNodeRequest{
		Region: region.GetName(), Hostname: "node-a", Version: "1.2.3", IngestUrl: "http://node-a:8081"})
	require.NoError(t, err)
	n := byName.GetNode()
	require.NoError(t, ids.Check(ids.Node, n.GetId()))
	require.Equal(t, region.GetId(), n.GetRegionId())
	require.Equal(t, "node-a", n.GetHostname())
	require.Equal(t, "1.2.3", n.GetVersion())
	require.Equal(t, "http://node-a:8081", n.GetIngestUrl())
	require.Equal(t, v1.NodeState_NODE_STATE_ALIVE, n.GetState())
	require.Equal(t, DefaultNodeHeartbeatInterval, byName.GetHeartbeatInterval().AsDuration())

	// By id, the same host: the same node.
	byID, err := node.RegisterNode(ctx, &v1.RegisterNodeRequest{Region: region.GetId(), Hostname: "node-a", Version: "1.2.4"})
	require.NoError(t, err)
	require.Equal(t, n.GetId(), byID.GetNode().GetId())
	require.Equal(t, "1.2.4", byID.GetNode().GetVersion())

	// Unknown regions, by name or id, and malformed references.
	for _, ref := range []string{"nowhere", ids.New(ids.Region)} {
		_, err = node.RegisterNode(ctx, &v1.RegisterNodeRequest{Region: ref, Hostname: "node-a"})
		requireViolation(t, err, "region")
		require.Contains(t, err.Error(), ref)
	}
	for _, ref := range []string{"", strings.Repeat("a", 64)} {
		_, err = node.RegisterNode(ctx, &v1.RegisterNodeRequest{Region: ref, Hostname: "node-a"})
		requireViolation(t, err, "region")
	}
	_, err = node.RegisterNode(ctx, &v1.RegisterNodeRequest{Region: region.GetName()})
	requireViolation(t, err, "hostname")
}

func TestRegisterNodeRegionByNameAmongMany(t *testing.T) {
	t.Parallel()
	b := setup(t)
	// More regions than one page of the name lookup.
	var last *v1.Region
	for range 105 {
		last = b.region(t)
	}
	res, err := b.clients(testNodeToken).dataplane.RegisterNode(t.Context(),
		&v1.RegisterNodeRequest{Region: last.GetName(), Hostname: "node-a"})
	require.NoError(t, err)
	require.Equal(t, last.GetId(), res.GetNode().GetRegionId())
}

func TestHeartbeatAndListNodes(t *testing.T) {
	t.Parallel()
	b := setup(t)
	eu, us := b.region(t), b.region(t)
	node := b.clients(testNodeToken).dataplane
	ctx := t.Context()
	register := func(region *v1.Region, host string) *v1.Node {
		res, err := node.RegisterNode(ctx, &v1.RegisterNodeRequest{Region: region.GetId(), Hostname: host})
		require.NoError(t, err)
		return res.GetNode()
	}
	a, bb, c := register(eu, "a"), register(eu, "b"), register(us, "a")

	_, err := node.Heartbeat(ctx, &v1.HeartbeatRequest{NodeId: a.GetId(), ConfigVersion: 9})
	require.NoError(t, err)
	_, err = node.Heartbeat(ctx, &v1.HeartbeatRequest{NodeId: ids.New(ids.Node), ConfigVersion: 9})
	requireCode(t, err, connect.CodeNotFound)
	_, err = node.Heartbeat(ctx, &v1.HeartbeatRequest{NodeId: "nod_bad"})
	requireViolation(t, err, "node_id")

	all, err := b.op.dataplane.ListNodes(ctx, &v1.ListNodesRequest{})
	require.NoError(t, err)
	require.Len(t, all.GetNodes(), 3)
	got := map[string]*v1.Node{}
	for i, n := range all.GetNodes() {
		if i > 0 {
			require.Less(t, all.GetNodes()[i-1].GetId(), n.GetId(), "ordered by id")
		}
		require.Equal(t, v1.NodeState_NODE_STATE_ALIVE, n.GetState())
		got[n.GetId()] = n
	}
	require.Equal(t, int64(9), got[a.GetId()].GetConfigVersion())
	require.Contains(t, got, bb.GetId())
	require.Contains(t, got, c.GetId())

	inUS, err := node.ListNodes(ctx, &v1.ListNodesRequest{RegionId: us.GetId()})
	require.NoError(t, err)
	require.Len(t, inUS.GetNodes(), 1)
	require.Equal(t, c.GetId(), inUS.GetNodes()[0].GetId())
}

func TestNodeState(t *testing.T) {
	t.Parallel()
	s := &Server{heartbeat: 10 * time.Second}
	now := time.Now()
	at := func(ago time.Duration) *v1.Node {
		return &v1.Node{HeartbeatTime: timestamppb.New(now.Add(-ago))}
	}
	require.Equal(t, v1.NodeState_NODE_STATE_ALIVE, s.nodeState(at(0), now))
	require.Equal(t, v1.NodeState_NODE_STATE_ALIVE, s.nodeState(at(29*time.Second), now))
	require.Equal(t, v1.NodeState_NODE_STATE_ALIVE, s.nodeState(at(30*time.Second), now))
	require.Equal(t, v1.NodeState_NODE_STATE_LOST, s.nodeState(at(31*time.Second), now))
	require.Equal(t, v1.NodeState_NODE_STATE_LOST, s.nodeState(at(time.Hour), now))
}

// watch opens a WatchConfig stream and delivers its messages on a channel,
// which is closed with the stream's error sent on errc.
func watch(t *testing.T, c switchyardv1connect.DataPlaneServiceClient, known int64) (<-chan *v1.ConfigSnapshot, <-chan error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	stream, err := c.WatchConfig(ctx, &v1.WatchConfigRequest{NodeId: ids.New(ids.Node), KnownVersion: known})
	require.NoError(t, err)
	msgs := make(chan *v1.ConfigSnapshot, 64)
	errc := make(chan error, 1)
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(msgs)
		for stream.Receive() {
			msgs <- stream.Msg().GetSnapshot()
		}
		errc <- stream.Err()
	})
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		_ = stream.Close() // the stream was cancelled; its close error says so
	})
	return msgs, errc
}

// next returns the next snapshot of msgs, failing after timeout.
func next(t *testing.T, msgs <-chan *v1.ConfigSnapshot, timeout time.Duration) *v1.ConfigSnapshot {
	t.Helper()
	select {
	case m, ok := <-msgs:
		require.True(t, ok, "stream ended")
		return m
	case <-time.After(timeout):
		require.FailNow(t, "no snapshot", "within %v", timeout)
		return nil
	}
}

func hasKey(snap *v1.ConfigSnapshot, id string) bool {
	for _, k := range snap.GetApiKeys() {
		if k.GetId() == id {
			return true
		}
	}
	return false
}

func TestWatchConfig(t *testing.T) {
	t.Parallel()
	b := setup(t)
	region := b.region(t)
	tenant := b.tenant(t)
	topic := b.topic(t, tenant.GetId(), region.GetId())
	pipeline := b.pipeline(t, tenant.GetId(), topic.GetId())
	key, _ := b.key(t, tenant.GetId(), v1.ApiKeyRole_API_KEY_ROLE_PRODUCER)

	for name, c := range map[string]switchyardv1connect.DataPlaneServiceClient{
		"connect": b.clients(testNodeToken).dataplane,
		"grpc":    b.clientsWith(b.h2c, testNodeToken, connect.WithGRPC()).dataplane,
	} {
		t.Run(name, func(t *testing.T) {
			msgs, _ := watch(t, c, 0)
			first := next(t, msgs, 10*time.Second)
			want, err := b.store.Snapshot(t.Context())
			require.NoError(t, err)
			require.Equal(t, want.GetVersion(), first.GetVersion())
			require.Len(t, first.GetRegions(), 1)
			require.Len(t, first.GetTenants(), 1)
			require.Len(t, first.GetTopics(), 1)
			require.Len(t, first.GetPipelines(), 1)
			require.Equal(t, pipeline.GetId(), first.GetPipelines()[0].GetId())
			require.True(t, hasKey(first, key.GetId()))
			require.Len(t, first.GetSigningSecrets(), 1)
			require.True(t, strings.HasPrefix(first.GetSigningSecrets()[0].GetSecrets()[0], "whsec_"))
		})
	}
	// Subtests above run sequentially, so their streams are gone: revoke now
	// and watch a fresh stream see it.
	msgs, _ := watch(t, b.clients(testNodeToken).dataplane, 0)
	before := next(t, msgs, 10*time.Second)
	require.True(t, hasKey(before, key.GetId()))

	_, err := b.op.keys.RevokeApiKey(t.Context(), &v1.RevokeApiKeyRequest{Id: key.GetId()})
	require.NoError(t, err)
	after := next(t, msgs, 2*time.Second)
	require.Greater(t, after.GetVersion(), before.GetVersion())
	require.False(t, hasKey(after, key.GetId()), "the revoked key is gone from the snapshot")
}

func TestWatchConfigKnownVersion(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.region(t)
	current, err := b.store.ConfigVersion(t.Context())
	require.NoError(t, err)

	// A node that has the current version gets nothing until a change.
	connectMsgs, _ := watch(t, b.clients(testNodeToken).dataplane, current)
	grpcMsgs, _ := watch(t, b.clientsWith(b.h2c, testNodeToken, connect.WithGRPC()).dataplane, current)
	for _, msgs := range []<-chan *v1.ConfigSnapshot{connectMsgs, grpcMsgs} {
		select {
		case m := <-msgs:
			t.Fatalf("got a snapshot the node already has: version %d", m.GetVersion())
		case <-time.After(200 * time.Millisecond):
		}
	}
	tenant := b.tenant(t)
	for _, msgs := range []<-chan *v1.ConfigSnapshot{connectMsgs, grpcMsgs} {
		got := next(t, msgs, 5*time.Second)
		require.Equal(t, current+1, got.GetVersion())
		require.Equal(t, tenant.GetId(), got.GetTenants()[0].GetId())
	}

	// A node that is behind gets the current snapshot at once, even when
	// the broadcaster has it already.
	behind, _ := watch(t, b.clients(testNodeToken).dataplane, current)
	got := next(t, behind, 5*time.Second)
	require.Equal(t, current+1, got.GetVersion())
}

// countingStore counts the WaitConfigVersion calls in progress on a real
// store.
type countingStore struct {
	store.Store
	inWait, maxWait atomic.Int64
}

func (c *countingStore) WaitConfigVersion(ctx context.Context, after int64) (int64, error) {
	n := c.inWait.Add(1)
	defer c.inWait.Add(-1)
	for {
		m := c.maxWait.Load()
		if n <= m || c.maxWait.CompareAndSwap(m, n) {
			break
		}
	}
	return c.Store.WaitConfigVersion(ctx, after)
}

// serve runs a Server over st on an HTTP server and returns it with its URL.
func serve(t *testing.T, st store.Store) (*Server, string) {
	t.Helper()
	srv, err := New(Config{Store: st, OperatorToken: testOperatorToken, NodeToken: testNodeToken,
		Logger: slog.New(slog.NewTextHandler(testLogWriter{t}, nil))})
	require.NoError(t, err)
	hs := httptest.NewUnstartedServer(srv.Handler())
	p := new(http.Protocols)
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	hs.Config.Protocols = p
	hs.Start()
	t.Cleanup(hs.Close)
	t.Cleanup(srv.Close)
	return srv, hs.URL
}

func newPGStore(t *testing.T) *pgstore.Store {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), pgtest.NewDB(t, pgtest.Template{Name: "controlplane", Setup: pgstore.Migrate}))
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pgstore.New(pool)
}

// TestWatchConfigFanOut checks that many watchers share one waiter, that
// each sees every change in order (or skips to a later one), and that the
// waiter stops when the last watcher leaves.
func TestWatchConfigFanOut(t *testing.T) {
	t.Parallel()
	pg := newPGStore(t)
	cs := &countingStore{Store: pg}
	_, url := serve(t, cs)
	hc := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(hc.CloseIdleConnections)
	client := switchyardv1connect.NewDataPlaneServiceClient(hc, url, connect.WithInterceptors(bearer(testNodeToken)))
	ops := store.Actor{Kind: store.ActorOperator, ID: "test"}
	_, err := pg.CreateRegion(t.Context(), ops, &v1.Region{Name: "eu", KafkaBrokers: []string{"k:9092"}})
	require.NoError(t, err)

	const watchers = 4
	ctx, cancel := context.WithCancel(t.Context())
	streams := make([]<-chan *v1.ConfigSnapshot, watchers)
	var wg sync.WaitGroup
	for i := range watchers {
		stream, err := client.WatchConfig(ctx, &v1.WatchConfigRequest{NodeId: ids.New(ids.Node)})
		require.NoError(t, err)
		ch := make(chan *v1.ConfigSnapshot, 64)
		streams[i] = ch
		wg.Go(func() {
			defer close(ch)
			defer func() { _ = stream.Close() }()
			for stream.Receive() {
				ch <- stream.Msg().GetSnapshot()
			}
		})
	}
	for _, ch := range streams {
		require.Equal(t, int64(1), next(t, ch, 10*time.Second).GetVersion())
	}
	const changes = 5
	for i := range changes {
		_, err := pg.CreateTenant(t.Context(), ops, &v1.Tenant{Name: "t" + string(rune('a'+i))})
		require.NoError(t, err)
	}
	final := int64(1 + changes)
	for i, ch := range streams {
		last := int64(1)
		for last < final {
			s := next(t, ch, 10*time.Second)
			require.Greater(t, s.GetVersion(), last, "watcher %d: versions only grow", i)
			require.Len(t, s.GetTenants(), int(s.GetVersion()-1), "watcher %d: consistent snapshot", i)
			last = s.GetVersion()
		}
	}
	require.Equal(t, int64(1), cs.maxWait.Load(), "one waiter serves every watcher")

	cancel()
	wg.Wait()
	require.Eventually(t, func() bool { return cs.inWait.Load() == 0 }, 10*time.Second, 10*time.Millisecond,
		"the waiter stops when the last watcher leaves")
}

func TestWatchConfigClose(t *testing.T) {
	t.Parallel()
	pg := newPGStore(t)
	srv, url := serve(t, pg)
	hc := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(hc.CloseIdleConnections)
	client := switchyardv1connect.NewDataPlaneServiceClient(hc, url, connect.WithInterceptors(bearer(testNodeToken)))
	_, err := pg.CreateRegion(t.Context(), store.Actor{Kind: store.ActorOperator, ID: "test"},
		&v1.Region{Name: "eu", KafkaBrokers: []string{"k:9092"}})
	require.NoError(t, err)

	msgs, errc := watch(t, client, 0)
	next(t, msgs, 10*time.Second)
	srv.Close()
	select {
	case err := <-errc:
		requireCode(t, err, connect.CodeUnavailable)
	case <-time.After(10 * time.Second):
		t.Fatal("stream did not end on Close")
	}
	// New watches are refused; other calls still work.
	stream, err := client.WatchConfig(t.Context(), &v1.WatchConfigRequest{NodeId: ids.New(ids.Node)})
	require.NoError(t, err)
	require.False(t, stream.Receive())
	requireCode(t, stream.Err(), connect.CodeUnavailable)
	require.NoError(t, stream.Close())
	_, err = client.ListNodes(t.Context(), &v1.ListNodesRequest{})
	require.NoError(t, err)
	srv.Close() // idempotent
}
