package controlplane

import (
	"testing"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-dev/switchyard/internal/ids"
	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
)

func TestRegionCRUD(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	c := b.op.regions

	res, err := c.CreateRegion(ctx, &v1.CreateRegionRequest{Region: &v1.Region{Name: "eu-west-1", KafkaBrokers: []string{"broker-1:9092"}}})
	require.NoError(t, err)
	r := res.GetRegion()
	require.NoError(t, ids.Check(ids.Region, r.GetId()))
	require.Equal(t, v1.RegionStatus_REGION_STATUS_ACTIVE, r.GetStatus())

	_, err = c.CreateRegion(ctx, &v1.CreateRegionRequest{Region: &v1.Region{Name: "eu-west-1", KafkaBrokers: []string{"b:9092"}}})
	requireCode(t, err, connect.CodeAlreadyExists)

	other := b.region(t)
	up, err := c.UpdateRegion(ctx, &v1.UpdateRegionRequest{
		Region:     &v1.Region{Id: r.GetId(), Status: v1.RegionStatus_REGION_STATUS_DRAINING, FailoverRegionId: other.GetId()},
		UpdateMask: mask("status", "failover_region_id")})
	require.NoError(t, err)
	require.Equal(t, v1.RegionStatus_REGION_STATUS_DRAINING, up.GetRegion().GetStatus())
	require.Equal(t, other.GetId(), up.GetRegion().GetFailoverRegionId())
	require.Equal(t, []string{"broker-1:9092"}, up.GetRegion().GetKafkaBrokers())

	// Tenant admins read regions.
	tn := b.tenant(t)
	_, token := b.key(t, tn.GetId(), v1.ApiKeyRole_API_KEY_ROLE_ADMIN)
	list, err := b.clients(token).regions.ListRegions(ctx, &v1.ListRegionsRequest{})
	require.NoError(t, err)
	require.Len(t, list.GetRegions(), 2)

	_, err = c.DeleteRegion(ctx, &v1.DeleteRegionRequest{Id: r.GetId(), Etag: r.GetEtag()})
	requireCode(t, err, connect.CodeAborted)
	_, err = c.DeleteRegion(ctx, &v1.DeleteRegionRequest{Id: r.GetId()})
	require.NoError(t, err)
	_, err = c.GetRegion(ctx, &v1.GetRegionRequest{Id: r.GetId()})
	requireCode(t, err, connect.CodeNotFound)
}

func TestRegionValidation(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	c := b.op.regions
	r := b.region(t)

	for name, tc := range map[string]struct {
		region *v1.Region
		path   string
	}{
		"unknown enum":     {&v1.Region{Name: "a", KafkaBrokers: []string{"b:1"}, Status: v1.RegionStatus(42)}, "region.status"},
		"bad broker":       {&v1.Region{Name: "a", KafkaBrokers: []string{"no port"}}, "region.kafka_brokers[0]"},
		"no brokers":       {&v1.Region{Name: "a"}, "region"},
		"missing failover": {&v1.Region{Name: "a", KafkaBrokers: []string{"b:1"}, FailoverRegionId: ids.New(ids.Region)}, "region.failover_region_id"},
	} {
		_, err := c.CreateRegion(ctx, &v1.CreateRegionRequest{Region: tc.region})
		require.Error(t, err, name)
		requireViolation(t, err, tc.path)
	}
	// A region cannot fail over to itself (a rule on the merged object).
	_, err := c.UpdateRegion(ctx, &v1.UpdateRegionRequest{
		Region: &v1.Region{Id: r.GetId(), FailoverRegionId: r.GetId()}, UpdateMask: mask("failover_region_id")})
	requireViolation(t, err, "region")
	_, err = c.UpdateRegion(ctx, &v1.UpdateRegionRequest{Region: &v1.Region{Id: r.GetId()}, UpdateMask: mask("name")})
	requireViolation(t, err, "update_mask")
}
