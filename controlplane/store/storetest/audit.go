package storetest

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/switchyard-dev/switchyard/controlplane/store"
	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
)

func testAudit(t *testing.T, s store.Store) {
	node := store.Actor{Kind: store.ActorNode, ID: "nod_0000000000000000000000node"}
	r, err := s.CreateRegion(ctx(t), operator, &v1.Region{Name: "eu", KafkaBrokers: []string{"k:9092"}})
	require.NoError(t, err)
	tn, err := s.CreateTenant(ctx(t), operator, &v1.Tenant{Name: "acme"})
	require.NoError(t, err)
	tn.DisplayName = "Acme"
	_, err = s.UpdateTenant(ctx(t), adminKey, tn, 1)
	require.NoError(t, err)
	r.Status = v1.RegionStatus_REGION_STATUS_FAILED
	_, err = s.UpdateRegion(ctx(t), node, r, 1)
	require.NoError(t, err)
	top := mkTopic(t, s, tn.Id, "orders")
	require.NoError(t, s.DeleteTopic(ctx(t), adminKey, store.DeleteParams{ID: top.Id}))

	// Failed changes leave no trace.
	_, err = s.CreateTenant(ctx(t), operator, &v1.Tenant{Name: "acme"})
	require.ErrorIs(t, err, store.ErrAlreadyExists)
	_, err = s.UpdateTenant(ctx(t), operator, tn, 1)
	require.ErrorIs(t, err, store.ErrConflict)

	type row struct {
		actor                          store.Actor
		tenant, action, rtype, rid, nm string
	}
	want := []row{
		{adminKey, tn.Id, "topic.delete", "topic", top.Id, "orders"},
		{operator, tn.Id, "topic.create", "topic", top.Id, "orders"},
		{node, "", "region.update", "region", r.Id, "eu"},
		{adminKey, tn.Id, "tenant.update", "tenant", tn.Id, "acme"},
		{operator, tn.Id, "tenant.create", "tenant", tn.Id, "acme"},
		{operator, "", "region.create", "region", r.Id, "eu"},
	}
	entries, err := s.ListAudit(ctx(t), store.AuditFilter{Limit: 100})
	require.NoError(t, err)
	require.Len(t, entries, len(want))
	for i, e := range entries {
		w := want[i]
		require.Equal(t, w.actor, e.Actor, "entry %d", i)
		require.Equal(t, w.tenant, e.TenantID, "entry %d", i)
		require.Equal(t, w.action, e.Action, "entry %d", i)
		require.Equal(t, w.rtype, e.ResourceType, "entry %d", i)
		require.Equal(t, w.rid, e.ResourceID, "entry %d", i)
		var detail map[string]any
		require.NoError(t, json.Unmarshal(e.Detail, &detail), "entry %d: %s", i, e.Detail)
		require.Equal(t, w.nm, detail["name"], "entry %d", i)
		require.False(t, e.Time.IsZero())
		if i > 0 {
			require.Greater(t, entries[i-1].ID, e.ID, "newest first")
			require.False(t, entries[i-1].Time.Before(e.Time))
		}
	}

	// Filters and limits.
	byTenant, err := s.ListAudit(ctx(t), store.AuditFilter{TenantID: tn.Id, Limit: 100})
	require.NoError(t, err)
	require.Equal(t, []string{"topic.delete", "topic.create", "tenant.update", "tenant.create"}, actions(byTenant))
	byResource, err := s.ListAudit(ctx(t), store.AuditFilter{ResourceID: r.Id, Limit: 100})
	require.NoError(t, err)
	require.Equal(t, []string{"region.update", "region.create"}, actions(byResource))
	both, err := s.ListAudit(ctx(t), store.AuditFilter{TenantID: tn.Id, ResourceID: top.Id, Limit: 1})
	require.NoError(t, err)
	require.Equal(t, []string{"topic.delete"}, actions(both))
}

func actions(es []store.AuditEntry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Action
	}
	return out
}

func testConfigVersion(t *testing.T, s store.Store) {
	last, err := s.ConfigVersion(ctx(t))
	require.NoError(t, err)
	bumped := func(what string) {
		t.Helper()
		v, err := s.ConfigVersion(ctx(t))
		require.NoError(t, err)
		require.Greater(t, v, last, "config version after %s", what)
		last = v
	}
	unchanged := func(what string) {
		t.Helper()
		v, err := s.ConfigVersion(ctx(t))
		require.NoError(t, err)
		require.Equal(t, last, v, "config version after %s", what)
	}

	r := mkRegion(t, s, "eu")
	bumped("create region")
	r.DisplayName = "Europe"
	_, err = s.UpdateRegion(ctx(t), operator, r, 1)
	require.NoError(t, err)
	bumped("update region")
	tn := mkTenant(t, s, "acme")
	bumped("create tenant")
	_, err = s.CreateTenant(ctx(t), operator, &v1.Tenant{Name: "acme"})
	require.ErrorIs(t, err, store.ErrAlreadyExists)
	unchanged("failed create")
	_, err = s.UpdateTenant(ctx(t), operator, tn, 1)
	require.NoError(t, err)
	bumped("update tenant")
	top := mkTopic(t, s, tn.Id, "orders")
	bumped("create topic")
	_, err = s.UpdateTopic(ctx(t), operator, top, 1)
	require.NoError(t, err)
	bumped("update topic")
	p, _ := mkPipeline(t, s, tn.Id, top.Id, "ship")
	bumped("create pipeline")
	_, err = s.UpdatePipeline(ctx(t), operator, p, 1, nil)
	require.NoError(t, err)
	bumped("update pipeline")
	_, err = s.UpdatePipeline(ctx(t), operator, p, 1, nil)
	require.ErrorIs(t, err, store.ErrConflict)
	unchanged("stale update")
	_, err = s.SetPipelinePaused(ctx(t), operator, p.Id, true)
	require.NoError(t, err)
	bumped("pause pipeline")
	_, err = s.RotateWebhookSecret(ctx(t), operator,
		store.WebhookSecret{PipelineID: p.Id, Destination: "hook", Secret: newSecret(t)}, 0)
	require.NoError(t, err)
	bumped("rotate secret")
	k := mkAPIKey(t, s, tn.Id, "admin")
	bumped("create key")
	_, err = s.UpdateAPIKey(ctx(t), operator, k, 1)
	require.NoError(t, err)
	bumped("update key")
	_, err = s.RevokeAPIKey(ctx(t), operator, k.Id)
	require.NoError(t, err)
	bumped("revoke key")
	require.NoError(t, s.DeleteAPIKey(ctx(t), operator, store.DeleteParams{ID: k.Id}))
	bumped("delete key")
	require.NoError(t, s.DeletePipeline(ctx(t), operator, store.DeleteParams{ID: p.Id}))
	bumped("delete pipeline")
	err = s.DeleteTenant(ctx(t), operator, store.DeleteParams{ID: tn.Id})
	require.ErrorIs(t, err, store.ErrFailedPrecondition)
	unchanged("refused delete")
	require.NoError(t, s.DeleteTopic(ctx(t), operator, store.DeleteParams{ID: top.Id}))
	bumped("delete topic")
	require.NoError(t, s.DeleteTenant(ctx(t), operator, store.DeleteParams{ID: tn.Id}))
	bumped("delete tenant")
	require.NoError(t, s.DeleteRegion(ctx(t), operator, store.DeleteParams{ID: r.Id}))
	bumped("delete region")
}
