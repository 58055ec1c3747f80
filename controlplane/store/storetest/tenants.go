package storetest

import (
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/switchyard-dev/switchyard/controlplane/store"
	"github.com/switchyard-dev/switchyard/internal/ids"
	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
)

// requireProto fails unless want and got are equal messages.
func requireProto(t *testing.T, want, got proto.Message) {
	t.Helper()
	require.True(t, proto.Equal(want, got), "want %v\ngot  %v", want, got)
}

func testTenantCRUD(t *testing.T, s store.Store) {
	region := mkRegion(t, s, "eu-west-1")
	in := &v1.Tenant{
		Name:            "acme",
		DisplayName:     "Acme Corp",
		Quotas:          &v1.TenantQuotas{EventsPerSecond: 500, Burst: 800, MaxEventBytes: 65536},
		Retention:       &v1.RetentionPolicy{Days: 14, DropPayloads: true},
		DefaultRegionId: region.Id,
		Etag:            "99",
	}
	created, err := s.CreateTenant(ctx(t), operator, in)
	require.NoError(t, err)
	require.NoError(t, ids.Check(ids.Tenant, created.Id))
	require.Equal(t, "acme", created.Name)
	require.Equal(t, "Acme Corp", created.DisplayName)
	requireProto(t, in.Quotas, created.Quotas)
	requireProto(t, in.Retention, created.Retention)
	require.Equal(t, region.Id, created.DefaultRegionId)
	require.Equal(t, "1", created.Etag)
	require.NotNil(t, created.CreateTime)
	require.Equal(t, created.CreateTime.AsTime(), created.UpdateTime.AsTime())

	got, err := s.GetTenant(ctx(t), created.Id)
	require.NoError(t, err)
	requireProto(t, created, got)

	list, err := s.ListTenants(ctx(t), store.ListParams{Limit: 10})
	require.NoError(t, err)
	require.Len(t, list, 1)
	requireProto(t, created, list[0])

	upd := proto.CloneOf(created)
	upd.Name = "renamed" // immutable: ignored
	upd.DisplayName = "Acme Inc"
	upd.Quotas = &v1.TenantQuotas{EventsPerSecond: 1000, Burst: 1000, MaxEventBytes: 1 << 20}
	upd.Retention = nil
	upd.DefaultRegionId = ""
	updated, err := s.UpdateTenant(ctx(t), operator, upd, 1)
	require.NoError(t, err)
	require.Equal(t, "acme", updated.Name)
	require.Equal(t, "Acme Inc", updated.DisplayName)
	requireProto(t, upd.Quotas, updated.Quotas)
	require.Nil(t, updated.Retention)
	require.Empty(t, updated.DefaultRegionId)
	require.Equal(t, "2", updated.Etag)
	require.Equal(t, created.CreateTime.AsTime(), updated.CreateTime.AsTime())
	require.False(t, updated.UpdateTime.AsTime().Before(created.UpdateTime.AsTime()))

	got, err = s.GetTenant(ctx(t), created.Id)
	require.NoError(t, err)
	requireProto(t, updated, got)

	require.NoError(t, s.DeleteTenant(ctx(t), operator, store.DeleteParams{ID: created.Id}))
	_, err = s.GetTenant(ctx(t), created.Id)
	require.ErrorIs(t, err, store.ErrNotFound)
	err = s.DeleteTenant(ctx(t), operator, store.DeleteParams{ID: created.Id})
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = s.UpdateTenant(ctx(t), operator, updated, 2)
	require.ErrorIs(t, err, store.ErrNotFound)
	list, err = s.ListTenants(ctx(t), store.ListParams{Limit: 10})
	require.NoError(t, err)
	require.Empty(t, list)
}

func testTenantUnsetMessages(t *testing.T, s store.Store) {
	created, err := s.CreateTenant(ctx(t), operator, &v1.Tenant{Name: "bare"})
	require.NoError(t, err)
	require.Nil(t, created.Quotas)
	require.Nil(t, created.Retention)
	require.Empty(t, created.DefaultRegionId)
	require.Empty(t, created.DisplayName)

	// Zero-valued but set messages stay set.
	z, err := s.CreateTenant(ctx(t), operator, &v1.Tenant{Name: "zeros", Quotas: &v1.TenantQuotas{}, Retention: &v1.RetentionPolicy{}})
	require.NoError(t, err)
	require.NotNil(t, z.Quotas)
	require.NotNil(t, z.Retention)
	got, err := s.GetTenant(ctx(t), z.Id)
	require.NoError(t, err)
	requireProto(t, z, got)
}

func testTenantDuplicateName(t *testing.T, s store.Store) {
	mkTenant(t, s, "acme")
	_, err := s.CreateTenant(ctx(t), operator, &v1.Tenant{Name: "acme"})
	require.ErrorIs(t, err, store.ErrAlreadyExists)
	require.Contains(t, err.Error(), `"acme"`)
	list, err := s.ListTenants(ctx(t), store.ListParams{Limit: 10})
	require.NoError(t, err)
	require.Len(t, list, 1)
}

func testTenantStaleVersion(t *testing.T, s store.Store) {
	tn := mkTenant(t, s, "acme")
	tn.DisplayName = "first"
	v2, err := s.UpdateTenant(ctx(t), operator, tn, 1)
	require.NoError(t, err)
	require.Equal(t, "2", v2.Etag)

	tn.DisplayName = "second"
	_, err = s.UpdateTenant(ctx(t), operator, tn, 1)
	require.ErrorIs(t, err, store.ErrConflict)
	got, err := s.GetTenant(ctx(t), tn.Id)
	require.NoError(t, err)
	require.Equal(t, "first", got.DisplayName)
	require.Equal(t, "2", got.Etag)

	err = s.DeleteTenant(ctx(t), operator, store.DeleteParams{ID: tn.Id, Version: 1})
	require.ErrorIs(t, err, store.ErrConflict)
	require.NoError(t, s.DeleteTenant(ctx(t), operator, store.DeleteParams{ID: tn.Id, Version: 2}))
}

func testTenantMissingRegion(t *testing.T, s store.Store) {
	_, err := s.CreateTenant(ctx(t), operator, &v1.Tenant{Name: "acme", DefaultRegionId: ids.New(ids.Region)})
	require.ErrorIs(t, err, store.ErrNotFound)
	tn := mkTenant(t, s, "acme")
	tn.DefaultRegionId = ids.New(ids.Region)
	_, err = s.UpdateTenant(ctx(t), operator, tn, 1)
	require.ErrorIs(t, err, store.ErrNotFound)
}

func testTenantDeleteForce(t *testing.T, s store.Store) {
	tn := mkTenant(t, s, "acme")
	other := mkTenant(t, s, "other")
	top1 := mkTopic(t, s, tn.Id, "orders")
	mkTopic(t, s, tn.Id, "payments")
	p, _ := mkPipeline(t, s, tn.Id, top1.Id, "ship")
	k := mkAPIKey(t, s, tn.Id, "admin")
	otherTopic := mkTopic(t, s, other.Id, "orders")

	err := s.DeleteTenant(ctx(t), operator, store.DeleteParams{ID: tn.Id})
	require.ErrorIs(t, err, store.ErrFailedPrecondition)
	var pe *store.PreconditionError
	require.ErrorAs(t, err, &pe)
	require.Equal(t, "tenant has 2 topics, 1 pipeline, 1 API key; delete them first or set force", pe.Reason)
	_, err = s.GetTenant(ctx(t), tn.Id)
	require.NoError(t, err)

	require.NoError(t, s.DeleteTenant(ctx(t), operator, store.DeleteParams{ID: tn.Id, Force: true}))
	_, err = s.GetTenant(ctx(t), tn.Id)
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = s.GetTopic(ctx(t), top1.Id)
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = s.GetPipeline(ctx(t), p.Id)
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = s.WebhookSecrets(ctx(t), p.Id)
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = s.GetAPIKey(ctx(t), k.Id)
	require.ErrorIs(t, err, store.ErrNotFound)
	topics, err := s.ListTopics(ctx(t), store.ListParams{TenantID: tn.Id, Limit: 10})
	require.NoError(t, err)
	require.Empty(t, topics)

	// The other tenant is untouched.
	got, err := s.GetTopic(ctx(t), otherTopic.Id)
	require.NoError(t, err)
	requireProto(t, otherTopic, got)

	// An empty tenant needs no force.
	require.NoError(t, s.DeleteTenant(ctx(t), operator, store.DeleteParams{ID: mkTenant(t, s, "empty").Id}))
}
