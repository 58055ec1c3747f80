package controlplane

import (
	"testing"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/require"

	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
)

// TestMetricsCountEveryCall checks that calls are counted by procedure and
// code, refusals included, and timed.
func TestMetricsCountEveryCall(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	_, err := b.op.tenants.CreateTenant(ctx, &v1.CreateTenantRequest{Tenant: &v1.Tenant{Name: uniqueName("m")}})
	require.NoError(t, err)
	_, err = b.op.tenants.CreateTenant(ctx, &v1.CreateTenantRequest{Tenant: &v1.Tenant{Name: "Not A Slug"}})
	require.Equal(t, connect.CodeInvalidArgument, connect.CodeOf(err))
	_, err = b.clients("garbage").tenants.ListTenants(ctx, &v1.ListTenantsRequest{})
	require.Equal(t, connect.CodeUnauthenticated, connect.CodeOf(err))

	counts := map[string]float64{}
	var observed uint64
	families, err := b.metrics.Gather()
	require.NoError(t, err)
	for _, f := range families {
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			switch f.GetName() {
			case "switchyard_controlplane_requests_total":
				counts[labels["procedure"]+" "+labels["code"]] += m.GetCounter().GetValue()
			case "switchyard_controlplane_request_seconds":
				observed += m.GetHistogram().GetSampleCount()
			}
		}
	}
	const create = "/switchyard.v1.TenantService/CreateTenant"
	require.Equal(t, 1.0, counts[create+" ok"])
	require.Equal(t, 1.0, counts[create+" invalid_argument"])
	require.Equal(t, 1.0, counts["/switchyard.v1.TenantService/ListTenants unauthenticated"])
	require.EqualValues(t, 3, observed)
}
