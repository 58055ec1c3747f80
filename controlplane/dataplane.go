package controlplane

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/switchyard-dev/switchyard/controlplane/store"
	"github.com/switchyard-dev/switchyard/internal/ids"
	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
)

// msgShuttingDown is the message of a WatchConfig stream ended by Close.
const msgShuttingDown = "the control plane is shutting down; reconnect"

// dataPlaneService implements switchyardv1connect.DataPlaneServiceHandler.
type dataPlaneService struct{ *Server }

// RegisterNode registers a node in a region given by id or name. The same
// host registering again in the same region keeps its id.
func (s *dataPlaneService) RegisterNode(ctx context.Context, req *v1.RegisterNodeRequest) (*v1.RegisterNodeResponse, error) {
	regionID, err := s.resolveNodeRegion(ctx, req)
	if err != nil {
		return nil, err
	}
	n, err := s.store.RegisterNode(ctx, &v1.Node{
		RegionId:  regionID,
		Hostname:  req.GetHostname(),
		Version:   req.GetVersion(),
		IngestUrl: req.GetIngestUrl(),
	})
	if errors.Is(err, store.ErrNotFound) { // the region went away meanwhile
		return nil, errUnknownRegion(req)
	}
	if err != nil {
		return nil, s.storeError(ctx, err, "node", "")
	}
	n.State = s.nodeState(n, time.Now())
	s.log.InfoContext(ctx, "data-plane node registered", slog.String("node_id", n.GetId()),
		slog.String("region_id", regionID), slog.String("hostname", n.GetHostname()), slog.String("version", n.GetVersion()))
	return &v1.RegisterNodeResponse{Node: n, HeartbeatInterval: durationpb.New(s.heartbeat)}, nil
}

// resolveNodeRegion returns the id of the region a RegisterNodeRequest names by
// id or by name, or an InvalidArgument error when there is none.
func (s *Server) resolveNodeRegion(ctx context.Context, req *v1.RegisterNodeRequest) (string, error) {
	ref := req.GetRegion()
	if ids.Check(ids.Region, ref) == nil {
		ok, err := s.regionExists(ctx, ref)
		if err != nil {
			return "", err
		}
		if !ok {
			return "", errUnknownRegion(req)
		}
		return ref, nil
	}
	// Regions are few: page through them for the name.
	after := ""
	for {
		rs, err := s.store.ListRegions(ctx, store.ListParams{AfterID: after, Limit: 100})
		if err != nil {
			return "", s.storeError(ctx, err, "region", ref)
		}
		for _, r := range rs {
			if r.GetName() == ref {
				return r.GetId(), nil
			}
		}
		if len(rs) < 100 {
			return "", errUnknownRegion(req)
		}
		after = rs[len(rs)-1].GetId()
	}
}

// errUnknownRegion is the InvalidArgument error of a region reference that
// names no region.
func errUnknownRegion(req *v1.RegisterNodeRequest) error {
	var vs violations
	vs.add(fieldPath(req.ProtoReflect().Descriptor(), "region"),
		"region.exists", fmt.Sprintf("no region has the id or name %q", req.GetRegion()))
	return vs.err()
}

// Heartbeat records that a node is alive and the config version it runs. An
// unknown node gets NotFound and should register again.
func (s *dataPlaneService) Heartbeat(ctx context.Context, req *v1.HeartbeatRequest) (*v1.HeartbeatResponse, error) {
	if err := s.store.Heartbeat(ctx, req.GetNodeId(), req.GetConfigVersion()); err != nil {
		return nil, s.storeError(ctx, err, "node", req.GetNodeId())
	}
	return &v1.HeartbeatResponse{}, nil
}

// ListNodes lists every node, or one region's, with its liveness.
func (s *dataPlaneService) ListNodes(ctx context.Context, req *v1.ListNodesRequest) (*v1.ListNodesResponse, error) {
	nodes, err := s.store.ListNodes(ctx, req.GetRegionId())
	if err != nil {
		return nil, s.storeError(ctx, err, "node", "")
	}
	now := time.Now()
	for _, n := range nodes {
		n.State = s.nodeState(n, now)
	}
	return &v1.ListNodesResponse{Nodes: nodes}, nil
}

// nodeState is ALIVE while the node's last heartbeat is at most
// nodeLostAfter heartbeat intervals old, LOST after.
func (s *Server) nodeState(n *v1.Node, now time.Time) v1.NodeState {
	if now.Sub(n.GetHeartbeatTime().AsTime()) > nodeLostAfter*s.heartbeat {
		return v1.NodeState_NODE_STATE_LOST
	}
	return v1.NodeState_NODE_STATE_ALIVE
}

// WatchConfig sends the current snapshot at once when it is newer than
// known_version, then a snapshot after every change. Changes are read once
// per Server and fanned out; a watcher that is slow to receive skips to the
// latest snapshot.
func (s *dataPlaneService) WatchConfig(ctx context.Context, req *v1.WatchConfigRequest, stream *connect.ServerStream[v1.WatchConfigResponse]) error {
	// Subscribe before reading: a change committed after the read below
	// wakes this watcher.
	w, err := s.configs.subscribe()
	if err != nil {
		return connect.NewError(connect.CodeUnavailable, errors.New(msgShuttingDown))
	}
	defer s.configs.unsubscribe(w)

	log := s.log.With(slog.String("node_id", req.GetNodeId()))
	sent := req.GetKnownVersion()
	send := func(snap *v1.ConfigSnapshot) error {
		if snap == nil || snap.GetVersion() <= sent {
			return nil
		}
		if err := stream.Send(&v1.WatchConfigResponse{Snapshot: snap}); err != nil {
			return err
		}
		sent = snap.GetVersion()
		log.DebugContext(ctx, "sent config snapshot", slog.Int64("version", sent))
		return nil
	}

	snap, err := s.currentSnapshot(ctx)
	if err != nil {
		return s.storeError(ctx, err, "config snapshot", "")
	}
	if err := send(snap); err != nil {
		return err
	}
	if sent == req.GetKnownVersion() {
		// Nothing to send yet: send the response headers alone, so the
		// client's call returns and it can wait for the next snapshot.
		if err := stream.Send(nil); err != nil {
			return err
		}
	}
	log.InfoContext(ctx, "config watch started", slog.Int64("version", snap.GetVersion()))
	for {
		select {
		case <-ctx.Done():
			log.InfoContext(ctx, "config watch ended", slog.Int64("version", sent))
			return nil
		case <-w.gone:
			return connect.NewError(connect.CodeUnavailable, errors.New(msgShuttingDown))
		case <-w.wake:
			if err := send(s.configs.latest()); err != nil {
				return err
			}
		}
	}
}

// currentSnapshot returns the current configuration snapshot: the
// broadcaster's latest when it is current (so many nodes reconnecting at
// once cost one version read each), else one read from the store.
func (s *Server) currentSnapshot(ctx context.Context) (*v1.ConfigSnapshot, error) {
	if latest := s.configs.latest(); latest != nil {
		v, err := s.store.ConfigVersion(ctx)
		if err != nil {
			return nil, err
		}
		if latest.GetVersion() == v {
			return latest, nil
		}
	}
	return s.store.Snapshot(ctx)
}

// Backoff of the broadcaster after a store error.
const (
	broadcastMinBackoff = 250 * time.Millisecond
	broadcastMaxBackoff = 5 * time.Second
)

// broadcaster reads each configuration change once and wakes every
// watcher. Its goroutine runs while there are watchers: it starts with the
// first and stops when the last leaves, so N watchers share one
// WaitConfigVersion (one listening database connection).
type broadcaster struct {
	store store.Store
	log   *slog.Logger

	mu       sync.Mutex
	watchers map[*configWatcher]struct{}
	snap     *v1.ConfigSnapshot // newest snapshot read; nil before the first
	cancel   context.CancelFunc // stops the running goroutine; nil when none runs
	closed   bool
	wg       sync.WaitGroup
}

// configWatcher is one WatchConfig stream's subscription.
type configWatcher struct {
	// wake holds one token when a newer snapshot may be available; sends
	// never block, so wake-ups coalesce.
	wake chan struct{}
	// gone is closed when the broadcaster closes.
	gone chan struct{}
}

func newBroadcaster(st store.Store, log *slog.Logger) *broadcaster {
	return &broadcaster{store: st, log: log, watchers: map[*configWatcher]struct{}{}}
}

// errBroadcasterClosed is returned by subscribe after close.
var errBroadcasterClosed = errors.New("config broadcaster closed")

// subscribe adds a watcher, starting the goroutine if none runs.
func (b *broadcaster) subscribe() (*configWatcher, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, errBroadcasterClosed
	}
	w := &configWatcher{wake: make(chan struct{}, 1), gone: make(chan struct{})}
	b.watchers[w] = struct{}{}
	if b.cancel == nil {
		ctx, cancel := context.WithCancel(context.Background())
		b.cancel = cancel
		b.wg.Add(1)
		go b.run(ctx)
	}
	return w, nil
}

// unsubscribe removes a watcher, stopping the goroutine when it was the
// last.
func (b *broadcaster) unsubscribe(w *configWatcher) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.watchers, w)
	if len(b.watchers) == 0 && b.cancel != nil {
		b.cancel()
		b.cancel = nil
	}
}

// latest returns the newest snapshot read, or nil.
func (b *broadcaster) latest() *v1.ConfigSnapshot {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.snap
}

// close ends every watcher and stops the goroutine, waiting for it.
func (b *broadcaster) close() {
	b.mu.Lock()
	if !b.closed {
		b.closed = true
		if b.cancel != nil {
			b.cancel()
			b.cancel = nil
		}
		for w := range b.watchers {
			close(w.gone)
		}
		clear(b.watchers)
	}
	b.mu.Unlock()
	b.wg.Wait()
}

// run waits for configuration changes, reads each new snapshot once and
// wakes the watchers, until ctx ends. Store errors are logged and retried
// with backoff; watchers keep what they have meanwhile.
func (b *broadcaster) run(ctx context.Context) {
	defer b.wg.Done()
	// Start below any version: the first snapshot is read at once, so a
	// change made between a watcher's own first read and this goroutine's
	// start is not missed.
	after := int64(-1)
	backoff := broadcastMinBackoff
	fail := func(what string, err error) bool {
		b.log.WarnContext(ctx, "config broadcast: "+what, slog.Any("error", err), slog.Duration("retry_in", backoff))
		t := time.NewTimer(backoff)
		defer t.Stop()
		backoff = min(2*backoff, broadcastMaxBackoff)
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		}
	}
	for {
		if _, err := b.store.WaitConfigVersion(ctx, after); err != nil {
			if ctx.Err() != nil || !fail("waiting for a change", err) {
				return
			}
			continue
		}
		snap, err := b.store.Snapshot(ctx)
		if err != nil {
			if ctx.Err() != nil || !fail("reading the snapshot", err) {
				return
			}
			continue
		}
		backoff = broadcastMinBackoff
		b.publish(ctx, snap)
		after = snap.GetVersion()
	}
}

// publish makes snap the latest snapshot, if newer, and wakes every
// watcher. A goroutine that was stopped publishes nothing.
func (b *broadcaster) publish(ctx context.Context, snap *v1.ConfigSnapshot) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if ctx.Err() != nil {
		return
	}
	if b.snap != nil && snap.GetVersion() <= b.snap.GetVersion() {
		return
	}
	b.snap = snap
	for w := range b.watchers {
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
}
