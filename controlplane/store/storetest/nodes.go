package storetest

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/switchyard-dev/switchyard/controlplane/store"
	"github.com/switchyard-dev/switchyard/internal/ids"
	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
)

func testNodeRegister(t *testing.T, s store.Store) {
	eu, us := mkRegion(t, s, "eu"), mkRegion(t, s, "us")
	before, err := s.ConfigVersion(ctx(t))
	require.NoError(t, err)

	in := &v1.Node{RegionId: eu.Id, Hostname: "node-a", Version: "1.0.0", IngestUrl: "http://node-a:8081",
		State: v1.NodeState_NODE_STATE_ALIVE, ConfigVersion: 7}
	a, err := s.RegisterNode(ctx(t), in)
	require.NoError(t, err)
	require.NoError(t, ids.Check(ids.Node, a.Id))
	require.Equal(t, eu.Id, a.RegionId)
	require.Equal(t, "node-a", a.Hostname)
	require.Equal(t, "1.0.0", a.Version)
	require.Equal(t, "http://node-a:8081", a.IngestUrl)
	require.Equal(t, int64(7), a.ConfigVersion)
	require.Equal(t, v1.NodeState_NODE_STATE_UNSPECIFIED, a.State, "the store does not judge liveness")
	require.NotNil(t, a.RegisterTime)
	require.True(t, a.RegisterTime.AsTime().Equal(a.HeartbeatTime.AsTime()))

	// The same host in the same region keeps its id; its fields are replaced.
	again, err := s.RegisterNode(ctx(t), &v1.Node{RegionId: eu.Id, Hostname: "node-a", Version: "1.1.0"})
	require.NoError(t, err)
	require.Equal(t, a.Id, again.Id)
	require.Equal(t, "1.1.0", again.Version)
	require.Empty(t, again.IngestUrl)
	require.Zero(t, again.ConfigVersion)
	require.False(t, again.RegisterTime.AsTime().Before(a.RegisterTime.AsTime()))

	// Another host, or the same host name in another region, is another node.
	b, err := s.RegisterNode(ctx(t), &v1.Node{RegionId: eu.Id, Hostname: "node-b"})
	require.NoError(t, err)
	c, err := s.RegisterNode(ctx(t), &v1.Node{RegionId: us.Id, Hostname: "node-a"})
	require.NoError(t, err)
	require.NotEqual(t, a.Id, b.Id)
	require.NotEqual(t, a.Id, c.Id)

	_, err = s.RegisterNode(ctx(t), &v1.Node{RegionId: ids.New(ids.Region), Hostname: "node-x"})
	require.ErrorIs(t, err, store.ErrNotFound)

	all, err := s.ListNodes(ctx(t), "")
	require.NoError(t, err)
	require.Equal(t, sortedIDs(a.Id, b.Id, c.Id), nodeIDs(all))
	inEU, err := s.ListNodes(ctx(t), eu.Id)
	require.NoError(t, err)
	require.Equal(t, sortedIDs(a.Id, b.Id), nodeIDs(inEU))
	for _, n := range inEU {
		if n.Id == a.Id {
			requireProto(t, again, n)
		}
	}
	none, err := s.ListNodes(ctx(t), ids.New(ids.Region))
	require.NoError(t, err)
	require.Empty(t, none)

	// Nodes are not configuration.
	after, err := s.ConfigVersion(ctx(t))
	require.NoError(t, err)
	require.Equal(t, before, after)
	audit, err := s.ListAudit(ctx(t), store.AuditFilter{Limit: 100})
	require.NoError(t, err)
	for _, e := range audit {
		require.NotEqual(t, "node", e.ResourceType)
	}
}

func testNodeHeartbeat(t *testing.T, s store.Store) {
	r := mkRegion(t, s, "eu")
	n, err := s.RegisterNode(ctx(t), &v1.Node{RegionId: r.Id, Hostname: "node-a"})
	require.NoError(t, err)
	before, err := s.ConfigVersion(ctx(t))
	require.NoError(t, err)

	require.NoError(t, s.Heartbeat(ctx(t), n.Id, 42))
	list, err := s.ListNodes(ctx(t), r.Id)
	require.NoError(t, err)
	require.Len(t, list, 1)
	require.Equal(t, int64(42), list[0].ConfigVersion)
	require.False(t, list[0].HeartbeatTime.AsTime().Before(n.HeartbeatTime.AsTime()))
	require.True(t, n.RegisterTime.AsTime().Equal(list[0].RegisterTime.AsTime()), "a heartbeat keeps the register time")

	err = s.Heartbeat(ctx(t), ids.New(ids.Node), 1)
	require.ErrorIs(t, err, store.ErrNotFound)

	after, err := s.ConfigVersion(ctx(t))
	require.NoError(t, err)
	require.Equal(t, before, after, "heartbeats do not change the configuration")
}

func testNodeRegionDeleted(t *testing.T, s store.Store) {
	keep, gone := mkRegion(t, s, "eu"), mkRegion(t, s, "us")
	kept, err := s.RegisterNode(ctx(t), &v1.Node{RegionId: keep.Id, Hostname: "node-a"})
	require.NoError(t, err)
	_, err = s.RegisterNode(ctx(t), &v1.Node{RegionId: gone.Id, Hostname: "node-b"})
	require.NoError(t, err)
	require.NoError(t, s.DeleteRegion(ctx(t), operator, store.DeleteParams{ID: gone.Id}))
	all, err := s.ListNodes(ctx(t), "")
	require.NoError(t, err)
	require.Equal(t, []string{kept.Id}, nodeIDs(all), "nodes of a deleted region go with it")
}

func nodeIDs(ns []*v1.Node) []string {
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = n.Id
	}
	return out
}
