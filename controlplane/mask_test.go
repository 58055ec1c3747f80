package controlplane

import (
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
)

// mask returns a field mask of paths.
func mask(paths ...string) *fieldmaskpb.FieldMask {
	return &fieldmaskpb.FieldMask{Paths: paths}
}

func TestCheckMask(t *testing.T) {
	t.Parallel()
	md := (&v1.Tenant{}).ProtoReflect().Descriptor()
	mutable := []string{"display_name", "quotas", "retention", "default_region_id"}

	paths, err := checkMask(md, nil, mutable)
	require.NoError(t, err)
	require.Equal(t, mutable, paths)

	for _, good := range [][]string{{"display_name"}, {"quotas.burst", "retention"}} {
		paths, err := checkMask(md, good, mutable)
		require.NoError(t, err, good)
		require.Equal(t, good, paths)
	}
	for _, bad := range []string{"name", "id", "nope", "quotas.nope", "display_name.x", "quotas.burst.x", ""} {
		_, err := checkMask(md, []string{bad}, mutable)
		require.Error(t, err, bad)
	}
}

func TestApplyMask(t *testing.T) {
	t.Parallel()
	current := &v1.Tenant{
		Id: "ten_1", Name: "a", DisplayName: "A",
		Quotas:    &v1.TenantQuotas{EventsPerSecond: 10, Burst: 20, MaxEventBytes: 30},
		Retention: &v1.RetentionPolicy{Days: 5},
	}
	in := &v1.Tenant{Name: "ignored", DisplayName: "B", Quotas: &v1.TenantQuotas{Burst: 99}}

	got := proto.Clone(current).(*v1.Tenant)
	applyMask(got, in, []string{"quotas.burst"})
	require.Equal(t, uint32(99), got.GetQuotas().GetBurst())
	require.Equal(t, uint32(10), got.GetQuotas().GetEventsPerSecond())
	require.Equal(t, "A", got.GetDisplayName())

	got = proto.Clone(current).(*v1.Tenant)
	applyMask(got, in, []string{"display_name", "retention"})
	require.Equal(t, "B", got.GetDisplayName())
	require.Nil(t, got.GetRetention(), "a field unset in the input is cleared")
	require.Equal(t, "a", got.GetName())

	// The input is not shared with the result.
	got = proto.Clone(current).(*v1.Tenant)
	applyMask(got, in, []string{"quotas"})
	got.Quotas.Burst = 1
	require.Equal(t, uint32(99), in.GetQuotas().GetBurst())
}
