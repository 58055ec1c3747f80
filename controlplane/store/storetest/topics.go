package storetest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/switchyard-dev/switchyard/controlplane/store"
	"github.com/switchyard-dev/switchyard/internal/ids"
	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
)

func testTopicCRUD(t *testing.T, s store.Store) {
	r := mkRegion(t, s, "eu-west-1")
	mkRegion(t, s, "eu-west-2")
	tn := mkTenant(t, s, "acme")
	in := &v1.Topic{
		TenantId:    tn.Id,
		Name:        "orders",
		Description: "order events",
		RegionId:    r.Id,
		Partitions:  12,
		Retention:   durationpb.New(72 * time.Hour),
		KafkaTopic:  "attacker-chosen",
	}
	created, err := s.CreateTopic(ctx(t), operator, in)
	require.NoError(t, err)
	require.NoError(t, ids.Check(ids.Topic, created.Id))
	require.Equal(t, tn.Id, created.TenantId)
	require.Equal(t, "orders", created.Name)
	require.Equal(t, "order events", created.Description)
	require.Equal(t, r.Id, created.RegionId)
	require.Equal(t, uint32(12), created.Partitions)
	require.Equal(t, 72*time.Hour, created.Retention.AsDuration())
	require.Equal(t, "sy."+tn.Id+"."+created.Id, created.KafkaTopic)
	require.Equal(t, "1", created.Etag)

	got, err := s.GetTopic(ctx(t), created.Id)
	require.NoError(t, err)
	requireProto(t, created, got)
	got, err = s.GetTopicByName(ctx(t), tn.Id, "orders")
	require.NoError(t, err)
	requireProto(t, created, got)
	_, err = s.GetTopicByName(ctx(t), tn.Id, "nope")
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = s.GetTopicByName(ctx(t), mkTenant(t, s, "other").Id, "orders")
	require.ErrorIs(t, err, store.ErrNotFound)

	// Defaults: 8 partitions, unset retention.
	plain, err := s.CreateTopic(ctx(t), operator, &v1.Topic{TenantId: tn.Id, Name: "plain", RegionId: r.Id})
	require.NoError(t, err)
	require.Equal(t, uint32(8), plain.Partitions)
	require.Nil(t, plain.Retention)

	list, err := s.ListTopics(ctx(t), store.ListParams{TenantID: tn.Id, Limit: 10})
	require.NoError(t, err)
	require.Len(t, list, 2)
	requireProto(t, created, list[0])
	requireProto(t, plain, list[1])

	upd := proto.CloneOf(created)
	upd.Name = "renamed"           // immutable
	upd.TenantId = ids.New("ten")  // immutable
	upd.RegionId = ""              // immutable
	upd.Description = "all orders" // mutable
	upd.Partitions = 16
	upd.Retention = nil
	updated, err := s.UpdateTopic(ctx(t), operator, upd, 1)
	require.NoError(t, err)
	require.Equal(t, "orders", updated.Name)
	require.Equal(t, tn.Id, updated.TenantId)
	require.Equal(t, r.Id, updated.RegionId)
	require.Equal(t, "all orders", updated.Description)
	require.Equal(t, uint32(16), updated.Partitions)
	require.Nil(t, updated.Retention)
	require.Equal(t, "2", updated.Etag)
	got, err = s.GetTopic(ctx(t), created.Id)
	require.NoError(t, err)
	requireProto(t, updated, got)

	_, err = s.UpdateTopic(ctx(t), operator, upd, 1)
	require.ErrorIs(t, err, store.ErrConflict)
	err = s.DeleteTopic(ctx(t), operator, store.DeleteParams{ID: created.Id, Version: 1})
	require.ErrorIs(t, err, store.ErrConflict)

	require.NoError(t, s.DeleteTopic(ctx(t), operator, store.DeleteParams{ID: created.Id, Version: 2}))
	_, err = s.GetTopic(ctx(t), created.Id)
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = s.UpdateTopic(ctx(t), operator, upd, 2)
	require.ErrorIs(t, err, store.ErrNotFound)
	err = s.DeleteTopic(ctx(t), operator, store.DeleteParams{ID: created.Id})
	require.ErrorIs(t, err, store.ErrNotFound)

	_, err = s.CreateTopic(ctx(t), operator, &v1.Topic{TenantId: ids.New(ids.Tenant), Name: "orphan"})
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = s.CreateTopic(ctx(t), operator, &v1.Topic{TenantId: tn.Id, Name: "lost", RegionId: ids.New(ids.Region)})
	require.ErrorIs(t, err, store.ErrNotFound)
}

func testTopicRegionDefault(t *testing.T, s store.Store) {
	// No region at all: the topic has none.
	tn := mkTenant(t, s, "acme")
	top := mkTopic(t, s, tn.Id, "first")
	require.Empty(t, top.RegionId)

	// Exactly one region: that one.
	only := mkRegion(t, s, "only")
	top = mkTopic(t, s, tn.Id, "second")
	require.Equal(t, only.Id, top.RegionId)

	// Two regions and no tenant default: none.
	second := mkRegion(t, s, "second")
	top = mkTopic(t, s, tn.Id, "third")
	require.Empty(t, top.RegionId)

	// The tenant's default wins.
	tn.DefaultRegionId = second.Id
	_, err := s.UpdateTenant(ctx(t), operator, tn, 1)
	require.NoError(t, err)
	top = mkTopic(t, s, tn.Id, "fourth")
	require.Equal(t, second.Id, top.RegionId)
}

func testTopicDuplicateName(t *testing.T, s store.Store) {
	a := mkTenant(t, s, "a")
	b := mkTenant(t, s, "b")
	mkTopic(t, s, a.Id, "orders")
	_, err := s.CreateTopic(ctx(t), operator, &v1.Topic{TenantId: a.Id, Name: "orders"})
	require.ErrorIs(t, err, store.ErrAlreadyExists)
	require.Contains(t, err.Error(), `"orders"`)
	// The same name in another tenant is fine.
	mkTopic(t, s, b.Id, "orders")
}

func testTopicPartitionsGrowOnly(t *testing.T, s store.Store) {
	tn := mkTenant(t, s, "acme")
	top := mkTopic(t, s, tn.Id, "orders")
	require.Equal(t, uint32(8), top.Partitions)

	top.Partitions = 4
	_, err := s.UpdateTopic(ctx(t), operator, top, 1)
	require.ErrorIs(t, err, store.ErrFailedPrecondition)
	require.Contains(t, err.Error(), "never shrink (8 to 4)")

	top.Partitions = 0 // keeps the count
	top.Description = "d"
	got, err := s.UpdateTopic(ctx(t), operator, top, 1)
	require.NoError(t, err)
	require.Equal(t, uint32(8), got.Partitions)
	require.Equal(t, "2", got.Etag)

	top.Partitions = 8 // same count is fine
	got, err = s.UpdateTopic(ctx(t), operator, top, 2)
	require.NoError(t, err)
	require.Equal(t, uint32(8), got.Partitions)
}

func testTopicDeleteForce(t *testing.T, s store.Store) {
	tn := mkTenant(t, s, "acme")
	top := mkTopic(t, s, tn.Id, "orders")
	keep := mkTopic(t, s, tn.Id, "keep")
	p1, _ := mkPipeline(t, s, tn.Id, top.Id, "one")
	p2, _ := mkPipeline(t, s, tn.Id, top.Id, "two")
	p3, _ := mkPipeline(t, s, tn.Id, keep.Id, "three")

	err := s.DeleteTopic(ctx(t), operator, store.DeleteParams{ID: top.Id})
	require.ErrorIs(t, err, store.ErrFailedPrecondition)
	var pe *store.PreconditionError
	require.ErrorAs(t, err, &pe)
	require.Equal(t, "topic has 2 pipelines; delete them first or set force", pe.Reason)
	_, err = s.GetPipeline(ctx(t), p1.Id)
	require.NoError(t, err)

	require.NoError(t, s.DeleteTopic(ctx(t), operator, store.DeleteParams{ID: top.Id, Force: true}))
	for _, id := range []string{p1.Id, p2.Id} {
		_, err = s.GetPipeline(ctx(t), id)
		require.ErrorIs(t, err, store.ErrNotFound)
	}
	got, err := s.GetPipeline(ctx(t), p3.Id)
	require.NoError(t, err)
	requireProto(t, p3, got)
	ps, err := s.ListPipelines(ctx(t), store.ListParams{TenantID: tn.Id, Limit: 10})
	require.NoError(t, err)
	require.Len(t, ps, 1)
	require.Equal(t, p3.Id, ps[0].Id)
}
