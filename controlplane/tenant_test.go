package controlplane

import (
	"testing"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-dev/switchyard/internal/ids"
	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
)

func TestTenantCRUD(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	c := b.op.tenants

	created, err := c.CreateTenant(ctx, &v1.CreateTenantRequest{Tenant: &v1.Tenant{Name: "acme", DisplayName: "Acme"}})
	require.NoError(t, err)
	tn := created.GetTenant()
	require.NoError(t, ids.Check(ids.Tenant, tn.GetId()))
	require.Equal(t, "Acme", tn.GetDisplayName())
	require.Equal(t, &v1.TenantQuotas{EventsPerSecond: 1000, Burst: 1000, MaxEventBytes: 256 << 10}, tn.GetQuotas())
	require.Equal(t, uint32(30), tn.GetRetention().GetDays())
	require.NotEmpty(t, tn.GetEtag())

	_, err = c.CreateTenant(ctx, &v1.CreateTenantRequest{Tenant: &v1.Tenant{Name: "acme"}})
	requireCode(t, err, connect.CodeAlreadyExists)

	got, err := c.GetTenant(ctx, &v1.GetTenantRequest{Id: tn.GetId()})
	require.NoError(t, err)
	require.Equal(t, tn.GetName(), got.GetTenant().GetName())

	// Burst follows a given rate when unset.
	custom, err := c.CreateTenant(ctx, &v1.CreateTenantRequest{Tenant: &v1.Tenant{Name: "custom", Quotas: &v1.TenantQuotas{EventsPerSecond: 50}}})
	require.NoError(t, err)
	require.Equal(t, uint32(50), custom.GetTenant().GetQuotas().GetBurst())

	updated, err := c.UpdateTenant(ctx, &v1.UpdateTenantRequest{
		Tenant:     &v1.Tenant{Id: tn.GetId(), DisplayName: "Acme Inc", Quotas: &v1.TenantQuotas{EventsPerSecond: 5}, Etag: tn.GetEtag()},
		UpdateMask: mask("display_name"),
	})
	require.NoError(t, err)
	require.Equal(t, "Acme Inc", updated.GetTenant().GetDisplayName())
	require.Equal(t, uint32(1000), updated.GetTenant().GetQuotas().GetEventsPerSecond(), "unmasked fields keep their value")
	require.NotEqual(t, tn.GetEtag(), updated.GetTenant().GetEtag())

	// The old etag is stale now.
	_, err = c.UpdateTenant(ctx, &v1.UpdateTenantRequest{
		Tenant: &v1.Tenant{Id: tn.GetId(), DisplayName: "x", Etag: tn.GetEtag()}, UpdateMask: mask("display_name")})
	requireCode(t, err, connect.CodeAborted)
	_, err = c.DeleteTenant(ctx, &v1.DeleteTenantRequest{Id: tn.GetId(), Etag: tn.GetEtag()})
	requireCode(t, err, connect.CodeAborted)

	// Paging through the list.
	first, err := c.ListTenants(ctx, &v1.ListTenantsRequest{PageSize: 1})
	require.NoError(t, err)
	require.Len(t, first.GetTenants(), 1)
	require.NotEmpty(t, first.GetNextPageToken())
	second, err := c.ListTenants(ctx, &v1.ListTenantsRequest{PageSize: 1, PageToken: first.GetNextPageToken()})
	require.NoError(t, err)
	require.Len(t, second.GetTenants(), 1)
	require.Empty(t, second.GetNextPageToken())
	require.Less(t, first.GetTenants()[0].GetId(), second.GetTenants()[0].GetId())
	_, err = c.ListTenants(ctx, &v1.ListTenantsRequest{PageToken: "garbage"})
	requireViolation(t, err, "page_token")
	_, err = c.ListTenants(ctx, &v1.ListTenantsRequest{PageSize: 1001})
	requireViolation(t, err, "page_size")

	_, err = c.DeleteTenant(ctx, &v1.DeleteTenantRequest{Id: tn.GetId(), Etag: updated.GetTenant().GetEtag()})
	require.NoError(t, err)
	_, err = c.GetTenant(ctx, &v1.GetTenantRequest{Id: tn.GetId()})
	requireCode(t, err, connect.CodeNotFound)
	_, err = c.DeleteTenant(ctx, &v1.DeleteTenantRequest{Id: tn.GetId()})
	requireCode(t, err, connect.CodeNotFound)
}

func TestTenantValidation(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	c := b.op.tenants
	tn := b.tenant(t)

	for name, tc := range map[string]struct {
		req  *v1.CreateTenantRequest
		path string
	}{
		"bad slug":           {&v1.CreateTenantRequest{Tenant: &v1.Tenant{Name: "Bad_Slug"}}, "tenant.name"},
		"no name":            {&v1.CreateTenantRequest{Tenant: &v1.Tenant{DisplayName: "x"}}, "tenant"},
		"rate too high":      {&v1.CreateTenantRequest{Tenant: &v1.Tenant{Name: "a", Quotas: &v1.TenantQuotas{EventsPerSecond: 2000000}}}, "tenant.quotas.events_per_second"},
		"bad region id":      {&v1.CreateTenantRequest{Tenant: &v1.Tenant{Name: "a", DefaultRegionId: "eu"}}, "tenant.default_region_id"},
		"missing region":     {&v1.CreateTenantRequest{Tenant: &v1.Tenant{Name: "a", DefaultRegionId: ids.New(ids.Region)}}, "tenant.default_region_id"},
		"retention too long": {&v1.CreateTenantRequest{Tenant: &v1.Tenant{Name: "a", Retention: &v1.RetentionPolicy{Days: 5000}}}, "tenant.retention.days"},
	} {
		_, err := c.CreateTenant(ctx, tc.req)
		require.Error(t, err, name)
		requireViolation(t, err, tc.path)
	}

	for _, path := range []string{"name", "id", "no_such_field", "quotas.nope"} {
		_, err := c.UpdateTenant(ctx, &v1.UpdateTenantRequest{Tenant: &v1.Tenant{Id: tn.GetId()}, UpdateMask: mask(path)})
		requireViolation(t, err, "update_mask")
	}
	// The merged object is validated again.
	_, err := c.UpdateTenant(ctx, &v1.UpdateTenantRequest{
		Tenant: &v1.Tenant{Id: tn.GetId(), DefaultRegionId: ids.New(ids.Region)}, UpdateMask: mask("default_region_id")})
	requireViolation(t, err, "tenant.default_region_id")
	_, err = c.UpdateTenant(ctx, &v1.UpdateTenantRequest{Tenant: &v1.Tenant{Id: "ten_x"}})
	requireCode(t, err, connect.CodeNotFound)
}

func TestTenantAdminQuotas(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	tn := b.tenant(t)
	_, token := b.key(t, tn.GetId(), v1.ApiKeyRole_API_KEY_ROLE_ADMIN)
	admin := b.clients(token).tenants

	_, err := admin.UpdateTenant(ctx, &v1.UpdateTenantRequest{
		Tenant: &v1.Tenant{Id: tn.GetId(), Quotas: &v1.TenantQuotas{EventsPerSecond: 999999}}, UpdateMask: mask("quotas.events_per_second")})
	requireCode(t, err, connect.CodePermissionDenied)

	// Everything else, even with an empty mask that restates the quotas.
	res, err := admin.UpdateTenant(ctx, &v1.UpdateTenantRequest{
		Tenant: &v1.Tenant{Id: tn.GetId(), DisplayName: "Mine", Quotas: tn.GetQuotas()}})
	require.NoError(t, err)
	require.Equal(t, "Mine", res.GetTenant().GetDisplayName())

	res, err = b.op.tenants.UpdateTenant(ctx, &v1.UpdateTenantRequest{
		Tenant: &v1.Tenant{Id: tn.GetId(), Quotas: &v1.TenantQuotas{EventsPerSecond: 7}}, UpdateMask: mask("quotas")})
	require.NoError(t, err)
	require.Equal(t, &v1.TenantQuotas{EventsPerSecond: 7, Burst: 7, MaxEventBytes: 256 << 10}, res.GetTenant().GetQuotas())
}
