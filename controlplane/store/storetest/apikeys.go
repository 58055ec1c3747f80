package storetest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/switchyard-dev/switchyard/controlplane/store"
	"github.com/switchyard-dev/switchyard/internal/ids"
	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
)

func testAPIKeyCRUD(t *testing.T, s store.Store) {
	tn := mkTenant(t, s, "acme")
	top := mkTopic(t, s, tn.Id, "orders")
	expires := timestamppb.New(time.Date(2030, 1, 2, 3, 4, 5, 6000, time.UTC))
	in := &v1.ApiKey{
		TenantId:    tn.Id,
		Name:        "producer",
		Description: "checkout service",
		Role:        v1.ApiKeyRole_API_KEY_ROLE_PRODUCER,
		TopicIds:    []string{top.Id},
		Prefix:      "sy_live_ab12",
		ExpireTime:  expires,
		RevokeTime:  timestamppb.Now(), // output only: ignored
	}
	hash := []byte{0xde, 0xad, 0xbe, 0xef, 0x01}
	created, err := s.CreateAPIKey(ctx(t), operator, in, hash)
	require.NoError(t, err)
	require.NoError(t, ids.Check(ids.APIKey, created.Id))
	require.Equal(t, tn.Id, created.TenantId)
	require.Equal(t, "producer", created.Name)
	require.Equal(t, "checkout service", created.Description)
	require.Equal(t, v1.ApiKeyRole_API_KEY_ROLE_PRODUCER, created.Role)
	require.Equal(t, []string{top.Id}, created.TopicIds)
	require.Equal(t, "sy_live_ab12", created.Prefix)
	require.True(t, expires.AsTime().Equal(created.ExpireTime.AsTime()))
	require.Nil(t, created.RevokeTime)
	require.Equal(t, "1", created.Etag)

	got, err := s.GetAPIKey(ctx(t), created.Id)
	require.NoError(t, err)
	requireProto(t, created, got)
	rec, err := s.GetAPIKeyRecord(ctx(t), created.Id)
	require.NoError(t, err)
	requireProto(t, created, rec.Key)
	require.Equal(t, hash, rec.SecretHash)
	list, err := s.ListAPIKeys(ctx(t), store.ListParams{TenantID: tn.Id, Limit: 10})
	require.NoError(t, err)
	require.Len(t, list, 1)
	requireProto(t, created, list[0])

	upd := proto.CloneOf(created)
	upd.Name = "checkout"
	upd.Description = ""
	upd.TopicIds = nil
	upd.ExpireTime = nil
	upd.Role = v1.ApiKeyRole_API_KEY_ROLE_ADMIN // immutable
	upd.Prefix = "changed"                      // output only
	updated, err := s.UpdateAPIKey(ctx(t), operator, upd, 1)
	require.NoError(t, err)
	require.Equal(t, "checkout", updated.Name)
	require.Empty(t, updated.Description)
	require.Empty(t, updated.TopicIds)
	require.Nil(t, updated.ExpireTime)
	require.Equal(t, v1.ApiKeyRole_API_KEY_ROLE_PRODUCER, updated.Role)
	require.Equal(t, "sy_live_ab12", updated.Prefix)
	require.Equal(t, "2", updated.Etag)
	got, err = s.GetAPIKey(ctx(t), created.Id)
	require.NoError(t, err)
	requireProto(t, updated, got)
	rec, err = s.GetAPIKeyRecord(ctx(t), created.Id)
	require.NoError(t, err)
	require.Equal(t, hash, rec.SecretHash)

	_, err = s.UpdateAPIKey(ctx(t), operator, upd, 1)
	require.ErrorIs(t, err, store.ErrConflict)
	err = s.DeleteAPIKey(ctx(t), operator, store.DeleteParams{ID: created.Id, Version: 1})
	require.ErrorIs(t, err, store.ErrConflict)
	require.NoError(t, s.DeleteAPIKey(ctx(t), operator, store.DeleteParams{ID: created.Id, Version: 2}))
	_, err = s.GetAPIKey(ctx(t), created.Id)
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = s.GetAPIKeyRecord(ctx(t), created.Id)
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = s.UpdateAPIKey(ctx(t), operator, upd, 2)
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = s.RevokeAPIKey(ctx(t), operator, created.Id)
	require.ErrorIs(t, err, store.ErrNotFound)
	err = s.DeleteAPIKey(ctx(t), operator, store.DeleteParams{ID: created.Id})
	require.ErrorIs(t, err, store.ErrNotFound)

	_, err = s.CreateAPIKey(ctx(t), operator, &v1.ApiKey{TenantId: ids.New(ids.Tenant), Name: "x",
		Role: v1.ApiKeyRole_API_KEY_ROLE_ADMIN}, hash)
	require.ErrorIs(t, err, store.ErrNotFound)
}

func testAPIKeyDuplicateName(t *testing.T, s store.Store) {
	a := mkTenant(t, s, "a")
	b := mkTenant(t, s, "b")
	mkAPIKey(t, s, a.Id, "admin")
	_, err := s.CreateAPIKey(ctx(t), operator, &v1.ApiKey{TenantId: a.Id, Name: "admin",
		Role: v1.ApiKeyRole_API_KEY_ROLE_ADMIN}, []byte("h"))
	require.ErrorIs(t, err, store.ErrAlreadyExists)
	require.Contains(t, err.Error(), `"admin"`)
	mkAPIKey(t, s, b.Id, "admin")

	// Renaming onto a taken name.
	k := mkAPIKey(t, s, a.Id, "ci")
	k.Name = "admin"
	_, err = s.UpdateAPIKey(ctx(t), operator, k, 1)
	require.ErrorIs(t, err, store.ErrAlreadyExists)
	got, err := s.GetAPIKey(ctx(t), k.Id)
	require.NoError(t, err)
	require.Equal(t, "ci", got.Name)
}

func testAPIKeyRevokeIdempotent(t *testing.T, s store.Store) {
	tn := mkTenant(t, s, "acme")
	k := mkAPIKey(t, s, tn.Id, "admin")
	revoked, err := s.RevokeAPIKey(ctx(t), adminKey, k.Id)
	require.NoError(t, err)
	require.NotNil(t, revoked.RevokeTime)
	require.Equal(t, "2", revoked.Etag)
	cv, err := s.ConfigVersion(ctx(t))
	require.NoError(t, err)

	again, err := s.RevokeAPIKey(ctx(t), adminKey, k.Id)
	require.NoError(t, err)
	requireProto(t, revoked, again)
	require.True(t, revoked.RevokeTime.AsTime().Equal(again.RevokeTime.AsTime()))
	cv2, err := s.ConfigVersion(ctx(t))
	require.NoError(t, err)
	require.Equal(t, cv, cv2)

	rec, err := s.GetAPIKeyRecord(ctx(t), k.Id)
	require.NoError(t, err)
	requireProto(t, revoked, rec.Key)
	require.Equal(t, []byte("hash-of-admin"), rec.SecretHash)

	audit, err := s.ListAudit(ctx(t), store.AuditFilter{ResourceID: k.Id, Limit: 10})
	require.NoError(t, err)
	require.Len(t, audit, 2)
	require.Equal(t, "api_key.revoke", audit[0].Action)
	require.Equal(t, adminKey, audit[0].Actor)
	require.Equal(t, "api_key.create", audit[1].Action)
}

func testAPIKeyTopicsOfOtherTenant(t *testing.T, s store.Store) {
	a := mkTenant(t, s, "a")
	b := mkTenant(t, s, "b")
	topB := mkTopic(t, s, b.Id, "orders")
	_, err := s.CreateAPIKey(ctx(t), operator, &v1.ApiKey{TenantId: a.Id, Name: "p",
		Role: v1.ApiKeyRole_API_KEY_ROLE_PRODUCER, TopicIds: []string{topB.Id}}, []byte("h"))
	require.ErrorIs(t, err, store.ErrNotFound)
	k := mkAPIKey(t, s, a.Id, "admin")
	k.TopicIds = []string{topB.Id}
	_, err = s.UpdateAPIKey(ctx(t), operator, k, 1)
	require.ErrorIs(t, err, store.ErrNotFound)
	got, err := s.GetAPIKey(ctx(t), k.Id)
	require.NoError(t, err)
	require.Empty(t, got.TopicIds)
	require.Equal(t, "1", got.Etag)
}

// testAPIKeyGivenID checks that a caller-chosen id is kept (the token embeds
// it, so it exists before the row) and that a malformed one is refused.
func testAPIKeyGivenID(t *testing.T, s store.Store) {
	tn := mkTenant(t, s, "acme")
	want := ids.New(ids.APIKey)
	created, err := s.CreateAPIKey(ctx(t), operator, &v1.ApiKey{
		Id: want, TenantId: tn.Id, Name: "given", Role: v1.ApiKeyRole_API_KEY_ROLE_ADMIN,
	}, []byte{1, 2, 3})
	require.NoError(t, err)
	require.Equal(t, want, created.Id)

	_, err = s.CreateAPIKey(ctx(t), operator, &v1.ApiKey{
		Id: "key_not-an-id", TenantId: tn.Id, Name: "bad", Role: v1.ApiKeyRole_API_KEY_ROLE_ADMIN,
	}, []byte{1, 2, 3})
	require.ErrorIs(t, err, ids.ErrInvalid)
}
