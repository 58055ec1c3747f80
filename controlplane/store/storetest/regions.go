package storetest

import (
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/switchyard-dev/switchyard/controlplane/store"
	"github.com/switchyard-dev/switchyard/internal/ids"
	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
)

func testRegionCRUD(t *testing.T, s store.Store) {
	backup := mkRegion(t, s, "eu-central-1")
	in := &v1.Region{
		Name:             "eu-west-1",
		DisplayName:      "Ireland",
		KafkaBrokers:     []string{"k1.example:9092", "k2.example:9092"},
		FailoverRegionId: backup.Id,
	}
	created, err := s.CreateRegion(ctx(t), operator, in)
	require.NoError(t, err)
	require.NoError(t, ids.Check(ids.Region, created.Id))
	require.Equal(t, "eu-west-1", created.Name)
	require.Equal(t, "Ireland", created.DisplayName)
	require.Equal(t, []string{"k1.example:9092", "k2.example:9092"}, created.KafkaBrokers)
	require.Equal(t, v1.RegionStatus_REGION_STATUS_ACTIVE, created.Status, "unspecified is stored as ACTIVE")
	require.Equal(t, backup.Id, created.FailoverRegionId)
	require.Equal(t, "1", created.Etag)

	got, err := s.GetRegion(ctx(t), created.Id)
	require.NoError(t, err)
	requireProto(t, created, got)

	list, err := s.ListRegions(ctx(t), store.ListParams{Limit: 10})
	require.NoError(t, err)
	require.Len(t, list, 2)
	requireProto(t, backup, list[0])
	requireProto(t, created, list[1])

	upd := proto.CloneOf(created)
	upd.Status = v1.RegionStatus_REGION_STATUS_DRAINING
	upd.KafkaBrokers = []string{"k3.example:9093"}
	upd.FailoverRegionId = ""
	updated, err := s.UpdateRegion(ctx(t), operator, upd, 1)
	require.NoError(t, err)
	require.Equal(t, v1.RegionStatus_REGION_STATUS_DRAINING, updated.Status)
	require.Equal(t, []string{"k3.example:9093"}, updated.KafkaBrokers)
	require.Empty(t, updated.FailoverRegionId)
	require.Equal(t, "2", updated.Etag)
	got, err = s.GetRegion(ctx(t), created.Id)
	require.NoError(t, err)
	requireProto(t, updated, got)

	upd.FailoverRegionId = ids.New(ids.Region)
	_, err = s.UpdateRegion(ctx(t), operator, upd, 2)
	require.ErrorIs(t, err, store.ErrNotFound)

	require.NoError(t, s.DeleteRegion(ctx(t), operator, store.DeleteParams{ID: created.Id, Version: 2}))
	_, err = s.GetRegion(ctx(t), created.Id)
	require.ErrorIs(t, err, store.ErrNotFound)
	err = s.DeleteRegion(ctx(t), operator, store.DeleteParams{ID: created.Id})
	require.ErrorIs(t, err, store.ErrNotFound)
}

func testRegionDuplicateAndStale(t *testing.T, s store.Store) {
	r := mkRegion(t, s, "us-east-1")
	_, err := s.CreateRegion(ctx(t), operator, &v1.Region{Name: "us-east-1", KafkaBrokers: []string{"x:9092"}})
	require.ErrorIs(t, err, store.ErrAlreadyExists)
	require.Contains(t, err.Error(), `"us-east-1"`)

	r.DisplayName = "Virginia"
	_, err = s.UpdateRegion(ctx(t), operator, r, 1)
	require.NoError(t, err)
	r.DisplayName = "stale"
	_, err = s.UpdateRegion(ctx(t), operator, r, 1)
	require.ErrorIs(t, err, store.ErrConflict)
	err = s.DeleteRegion(ctx(t), operator, store.DeleteParams{ID: r.Id, Version: 1})
	require.ErrorIs(t, err, store.ErrConflict)
	got, err := s.GetRegion(ctx(t), r.Id)
	require.NoError(t, err)
	require.Equal(t, "Virginia", got.DisplayName)
	_, err = s.UpdateRegion(ctx(t), operator, &v1.Region{Id: ids.New(ids.Region), Name: "x"}, 1)
	require.ErrorIs(t, err, store.ErrNotFound)
}

func testRegionInUse(t *testing.T, s store.Store) {
	used := mkRegion(t, s, "eu-west-1")
	other := mkRegion(t, s, "eu-west-2")

	// A topic lives in it.
	tn := mkTenant(t, s, "acme")
	top, err := s.CreateTopic(ctx(t), operator, &v1.Topic{TenantId: tn.Id, Name: "orders", RegionId: used.Id})
	require.NoError(t, err)
	err = s.DeleteRegion(ctx(t), operator, store.DeleteParams{ID: used.Id, Force: true})
	require.ErrorIs(t, err, store.ErrFailedPrecondition)
	require.Contains(t, err.Error(), "1 topic live in it")
	require.NoError(t, s.DeleteTopic(ctx(t), operator, store.DeleteParams{ID: top.Id}))

	// A tenant uses it as its default.
	tn.DefaultRegionId = used.Id
	_, err = s.UpdateTenant(ctx(t), operator, tn, 1)
	require.NoError(t, err)
	err = s.DeleteRegion(ctx(t), operator, store.DeleteParams{ID: used.Id})
	require.ErrorIs(t, err, store.ErrFailedPrecondition)
	require.Contains(t, err.Error(), "1 tenant use it as default region")
	tn.DefaultRegionId = ""
	_, err = s.UpdateTenant(ctx(t), operator, tn, 2)
	require.NoError(t, err)

	// Another region fails over to it.
	other.FailoverRegionId = used.Id
	_, err = s.UpdateRegion(ctx(t), operator, other, 1)
	require.NoError(t, err)
	err = s.DeleteRegion(ctx(t), operator, store.DeleteParams{ID: used.Id})
	require.ErrorIs(t, err, store.ErrFailedPrecondition)
	require.Contains(t, err.Error(), "1 region fail over to it")
	_, err = s.GetRegion(ctx(t), used.Id)
	require.NoError(t, err)

	require.NoError(t, s.DeleteRegion(ctx(t), operator, store.DeleteParams{ID: other.Id}))
	require.NoError(t, s.DeleteRegion(ctx(t), operator, store.DeleteParams{ID: used.Id}))
	list, err := s.ListRegions(ctx(t), store.ListParams{Limit: 10})
	require.NoError(t, err)
	require.Empty(t, list)
}
