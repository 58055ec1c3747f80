package controlplane

import (
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/switchyard-dev/switchyard/internal/ids"
	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
)

func TestTopicCRUD(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	tn := b.tenant(t)
	_, token := b.key(t, tn.GetId(), v1.ApiKeyRole_API_KEY_ROLE_ADMIN)
	c := b.clients(token).topics

	// No region at all.
	_, err := c.CreateTopic(ctx, &v1.CreateTopicRequest{TenantId: tn.GetId(), Topic: &v1.Topic{Name: "orders"}})
	requireViolation(t, err, "topic.region_id")

	// Exactly one region: it is the home.
	only := b.region(t)
	res, err := c.CreateTopic(ctx, &v1.CreateTopicRequest{TenantId: tn.GetId(), Topic: &v1.Topic{Name: "orders"}})
	require.NoError(t, err)
	top := res.GetTopic()
	require.NoError(t, ids.Check(ids.Topic, top.GetId()))
	require.Equal(t, only.GetId(), top.GetRegionId())
	require.Equal(t, tn.GetId(), top.GetTenantId())
	require.Equal(t, uint32(8), top.GetPartitions())
	require.Equal(t, 7*24*time.Hour, top.GetRetention().AsDuration())

	_, err = c.CreateTopic(ctx, &v1.CreateTopicRequest{TenantId: tn.GetId(), Topic: &v1.Topic{Name: "orders"}})
	requireCode(t, err, connect.CodeAlreadyExists)

	// Two regions and no default: the region must be named.
	second := b.region(t)
	_, err = c.CreateTopic(ctx, &v1.CreateTopicRequest{TenantId: tn.GetId(), Topic: &v1.Topic{Name: "invoices"}})
	requireViolation(t, err, "topic.region_id")
	_, err = c.CreateTopic(ctx, &v1.CreateTopicRequest{TenantId: tn.GetId(), Topic: &v1.Topic{Name: "invoices", RegionId: ids.New(ids.Region)}})
	requireViolation(t, err, "topic.region_id")
	// The tenant's default region applies.
	_, err = b.op.tenants.UpdateTenant(ctx, &v1.UpdateTenantRequest{
		Tenant: &v1.Tenant{Id: tn.GetId(), DefaultRegionId: second.GetId()}, UpdateMask: mask("default_region_id")})
	require.NoError(t, err)
	res, err = c.CreateTopic(ctx, &v1.CreateTopicRequest{TenantId: tn.GetId(), Topic: &v1.Topic{Name: "invoices"}})
	require.NoError(t, err)
	require.Equal(t, second.GetId(), res.GetTopic().GetRegionId())

	up, err := c.UpdateTopic(ctx, &v1.UpdateTopicRequest{
		Topic:      &v1.Topic{Id: top.GetId(), Partitions: 16, Retention: durationpb.New(48 * time.Hour), Etag: top.GetEtag()},
		UpdateMask: mask("partitions", "retention")})
	require.NoError(t, err)
	require.Equal(t, uint32(16), up.GetTopic().GetPartitions())
	require.Equal(t, 48*time.Hour, up.GetTopic().GetRetention().AsDuration())

	_, err = c.UpdateTopic(ctx, &v1.UpdateTopicRequest{Topic: &v1.Topic{Id: top.GetId(), Partitions: 4}, UpdateMask: mask("partitions")})
	requireViolation(t, err, "topic.partitions")
	_, err = c.UpdateTopic(ctx, &v1.UpdateTopicRequest{Topic: &v1.Topic{Id: top.GetId(), RegionId: second.GetId()}, UpdateMask: mask("region_id")})
	requireViolation(t, err, "update_mask")
	_, err = c.UpdateTopic(ctx, &v1.UpdateTopicRequest{Topic: &v1.Topic{Id: top.GetId(), Description: "x", Etag: top.GetEtag()}})
	requireCode(t, err, connect.CodeAborted)
	// An empty mask sets every mutable field; zero partitions keep the count.
	up, err = c.UpdateTopic(ctx, &v1.UpdateTopicRequest{Topic: &v1.Topic{Id: top.GetId(), Description: "all"}})
	require.NoError(t, err)
	require.Equal(t, "all", up.GetTopic().GetDescription())
	require.Equal(t, uint32(16), up.GetTopic().GetPartitions())
	require.Equal(t, 7*24*time.Hour, up.GetTopic().GetRetention().AsDuration())

	list, err := c.ListTopics(ctx, &v1.ListTopicsRequest{TenantId: tn.GetId(), PageSize: 1})
	require.NoError(t, err)
	require.Len(t, list.GetTopics(), 1)
	// The token belongs to this tenant's list only.
	other := b.tenant(t)
	_, err = b.op.topics.ListTopics(ctx, &v1.ListTopicsRequest{TenantId: other.GetId(), PageToken: list.GetNextPageToken()})
	requireViolation(t, err, "page_token")
	list, err = c.ListTopics(ctx, &v1.ListTopicsRequest{TenantId: tn.GetId(), PageToken: list.GetNextPageToken()})
	require.NoError(t, err)
	require.Len(t, list.GetTopics(), 1)
	require.Empty(t, list.GetNextPageToken())

	// A topic that a pipeline reads needs force.
	b.pipeline(t, tn.GetId(), top.GetId())
	_, err = c.DeleteTopic(ctx, &v1.DeleteTopicRequest{Id: top.GetId()})
	requireCode(t, err, connect.CodeFailedPrecondition)
	_, err = c.DeleteTopic(ctx, &v1.DeleteTopicRequest{Id: top.GetId(), Force: true})
	require.NoError(t, err)
	_, err = c.GetTopic(ctx, &v1.GetTopicRequest{Id: top.GetId()})
	requireCode(t, err, connect.CodeNotFound)
}

func TestTopicValidation(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	tn := b.tenant(t)
	b.region(t)
	for name, tc := range map[string]struct {
		req  *v1.CreateTopicRequest
		path string
	}{
		"bad slug":        {&v1.CreateTopicRequest{TenantId: tn.GetId(), Topic: &v1.Topic{Name: "-x"}}, "topic.name"},
		"bad tenant id":   {&v1.CreateTopicRequest{TenantId: "acme", Topic: &v1.Topic{Name: "x"}}, "tenant_id"},
		"partitions":      {&v1.CreateTopicRequest{TenantId: tn.GetId(), Topic: &v1.Topic{Name: "x", Partitions: 5000}}, "topic.partitions"},
		"short retention": {&v1.CreateTopicRequest{TenantId: tn.GetId(), Topic: &v1.Topic{Name: "x", Retention: durationpb.New(time.Minute)}}, "topic.retention"},
	} {
		_, err := b.op.topics.CreateTopic(ctx, tc.req)
		require.Error(t, err, name)
		requireViolation(t, err, tc.path)
	}
	_, err := b.op.topics.CreateTopic(ctx, &v1.CreateTopicRequest{TenantId: ids.New(ids.Tenant), Topic: &v1.Topic{Name: "x"}})
	requireCode(t, err, connect.CodeNotFound)
}
