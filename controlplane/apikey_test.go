package controlplane

import (
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/switchyard-dev/switchyard/internal/apikey"
	"github.com/switchyard-dev/switchyard/internal/ids"
	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
)

func TestAPIKeyCRUD(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	tn := b.tenant(t)
	r := b.region(t)
	top := b.topic(t, tn.GetId(), r.GetId())
	_, adminToken := b.key(t, tn.GetId(), v1.ApiKeyRole_API_KEY_ROLE_ADMIN)
	c := b.clients(adminToken).keys

	// A tenant admin creates producer and admin keys of its tenant.
	res, err := c.CreateApiKey(ctx, &v1.CreateApiKeyRequest{TenantId: tn.GetId(), ApiKey: &v1.ApiKey{
		Name: "ingest", Role: v1.ApiKeyRole_API_KEY_ROLE_PRODUCER, TopicIds: []string{top.GetId()},
		ExpireTime: timestamppb.New(time.Now().Add(time.Hour)),
	}})
	require.NoError(t, err)
	k := res.GetApiKey()
	token := res.GetSecret()
	keyID, _, err := apikey.Parse(token)
	require.NoError(t, err)
	require.Equal(t, k.GetId(), keyID)
	require.Equal(t, apikey.Prefix(token), k.GetPrefix())
	require.Equal(t, []string{top.GetId()}, k.GetTopicIds())

	admin2, err := c.CreateApiKey(ctx, &v1.CreateApiKeyRequest{TenantId: tn.GetId(), ApiKey: &v1.ApiKey{Name: "ops", Role: v1.ApiKeyRole_API_KEY_ROLE_ADMIN}})
	require.NoError(t, err)
	_, err = b.clients(admin2.GetSecret()).tenants.GetTenant(ctx, &v1.GetTenantRequest{Id: tn.GetId()})
	require.NoError(t, err)

	_, err = c.CreateApiKey(ctx, &v1.CreateApiKeyRequest{TenantId: tn.GetId(), ApiKey: &v1.ApiKey{Name: "ingest", Role: v1.ApiKeyRole_API_KEY_ROLE_PRODUCER}})
	requireCode(t, err, connect.CodeAlreadyExists)

	// The secret is never shown again.
	got, err := c.GetApiKey(ctx, &v1.GetApiKeyRequest{Id: k.GetId()})
	require.NoError(t, err)
	require.NotContains(t, got.String(), token[len(apikey.Prefix(token)):])
	list, err := c.ListApiKeys(ctx, &v1.ListApiKeysRequest{TenantId: tn.GetId()})
	require.NoError(t, err)
	require.Len(t, list.GetApiKeys(), 3)
	require.NotContains(t, list.String(), token[len(apikey.Prefix(token)):])

	up, err := c.UpdateApiKey(ctx, &v1.UpdateApiKeyRequest{
		ApiKey: &v1.ApiKey{Id: k.GetId(), Name: "ingest-2", Description: "d", Etag: k.GetEtag()}, UpdateMask: mask("name", "description")})
	require.NoError(t, err)
	require.Equal(t, "ingest-2", up.GetApiKey().GetName())
	require.Equal(t, []string{top.GetId()}, up.GetApiKey().GetTopicIds())
	_, err = c.UpdateApiKey(ctx, &v1.UpdateApiKeyRequest{ApiKey: &v1.ApiKey{Id: k.GetId(), Name: "x", Etag: k.GetEtag()}, UpdateMask: mask("name")})
	requireCode(t, err, connect.CodeAborted)
	_, err = c.UpdateApiKey(ctx, &v1.UpdateApiKeyRequest{ApiKey: &v1.ApiKey{Id: k.GetId(), Role: v1.ApiKeyRole_API_KEY_ROLE_ADMIN}, UpdateMask: mask("role")})
	requireViolation(t, err, "update_mask")

	rev, err := c.RevokeApiKey(ctx, &v1.RevokeApiKeyRequest{Id: admin2.GetApiKey().GetId()})
	require.NoError(t, err)
	require.NotNil(t, rev.GetApiKey().GetRevokeTime())
	_, err = b.clients(admin2.GetSecret()).tenants.GetTenant(ctx, &v1.GetTenantRequest{Id: tn.GetId()})
	requireCode(t, err, connect.CodeUnauthenticated)

	_, err = c.DeleteApiKey(ctx, &v1.DeleteApiKeyRequest{Id: k.GetId(), Etag: k.GetEtag()})
	requireCode(t, err, connect.CodeAborted)
	_, err = c.DeleteApiKey(ctx, &v1.DeleteApiKeyRequest{Id: k.GetId()})
	require.NoError(t, err)
	_, err = c.GetApiKey(ctx, &v1.GetApiKeyRequest{Id: k.GetId()})
	requireCode(t, err, connect.CodeNotFound)
}

func TestAPIKeyValidation(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	tn, other := b.tenant(t), b.tenant(t)
	r := b.region(t)
	otherTopic := b.topic(t, other.GetId(), r.GetId())
	c := b.op.keys
	for name, tc := range map[string]struct {
		k    *v1.ApiKey
		path string
	}{
		"no role":       {&v1.ApiKey{Name: "a"}, "api_key"},
		"unknown role":  {&v1.ApiKey{Name: "a", Role: v1.ApiKeyRole(7)}, "api_key.role"},
		"bad slug":      {&v1.ApiKey{Name: "A b", Role: v1.ApiKeyRole_API_KEY_ROLE_ADMIN}, "api_key.name"},
		"bad topic id":  {&v1.ApiKey{Name: "a", Role: v1.ApiKeyRole_API_KEY_ROLE_PRODUCER, TopicIds: []string{"orders"}}, "api_key.topic_ids[0]"},
		"foreign topic": {&v1.ApiKey{Name: "a", Role: v1.ApiKeyRole_API_KEY_ROLE_PRODUCER, TopicIds: []string{otherTopic.GetId()}}, "api_key.topic_ids[0]"},
		"expired":       {&v1.ApiKey{Name: "a", Role: v1.ApiKeyRole_API_KEY_ROLE_ADMIN, ExpireTime: timestamppb.New(time.Now().Add(-time.Hour))}, "api_key.expire_time"},
	} {
		_, err := c.CreateApiKey(ctx, &v1.CreateApiKeyRequest{TenantId: tn.GetId(), ApiKey: tc.k})
		require.Error(t, err, name)
		requireViolation(t, err, tc.path)
	}
	// topic_ids on an admin key is refused on create (a request rule) and
	// on update (a handler check).
	_, err := c.CreateApiKey(ctx, &v1.CreateApiKeyRequest{TenantId: other.GetId(), ApiKey: &v1.ApiKey{
		Name: "a", Role: v1.ApiKeyRole_API_KEY_ROLE_ADMIN, TopicIds: []string{otherTopic.GetId()}}})
	requireCode(t, err, connect.CodeInvalidArgument)
	admin, _ := b.key(t, other.GetId(), v1.ApiKeyRole_API_KEY_ROLE_ADMIN)
	_, err = c.UpdateApiKey(ctx, &v1.UpdateApiKeyRequest{
		ApiKey: &v1.ApiKey{Id: admin.GetId(), TopicIds: []string{otherTopic.GetId()}}, UpdateMask: mask("topic_ids")})
	requireViolation(t, err, "api_key.topic_ids")
	_, err = c.CreateApiKey(ctx, &v1.CreateApiKeyRequest{TenantId: ids.New(ids.Tenant), ApiKey: &v1.ApiKey{Name: "a", Role: v1.ApiKeyRole_API_KEY_ROLE_ADMIN}})
	requireCode(t, err, connect.CodeNotFound)
}
