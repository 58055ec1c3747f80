package sdkit

import (
	"testing"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-dev/switchyard/internal/testenv/kafkatest"
	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
	"github.com/switchyard-dev/switchyard/sdk/switchyard"
)

// TestAdminErrors checks that the control plane's refusals match the SDK's
// sentinels and carry their details.
func TestAdminErrors(t *testing.T) {
	t.Parallel()
	s := NewStack(t, kafkatest.NewFake(t))
	ctx := ctxT(t)
	tenants := s.Admin.Tenants()
	ten, err := tenants.Create(ctx, &v1.Tenant{Name: "acme", DisplayName: "Acme"})
	require.NoError(t, err)

	_, err = tenants.Get(ctx, "ten_00000000000000000000000000")
	require.ErrorIs(t, err, switchyard.ErrNotFound)
	require.Equal(t, connect.CodeNotFound, connect.CodeOf(err))

	_, err = tenants.Create(ctx, &v1.Tenant{Name: "acme"})
	require.ErrorIs(t, err, switchyard.ErrAlreadyExists)
	require.NotErrorIs(t, err, switchyard.ErrNotFound)

	_, err = tenants.Create(ctx, &v1.Tenant{Name: "Not A Slug"})
	require.ErrorIs(t, err, switchyard.ErrInvalidArgument)
	var serr *switchyard.Error
	require.ErrorAs(t, err, &serr)
	require.Contains(t, serr.FieldViolations(), switchyard.FieldViolation{
		Field: "tenant.name", Rule: "string.pattern", Message: "does not match regex pattern `^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$`",
	})

	// A stale etag.
	stale := ten.GetEtag()
	updated, err := tenants.Update(ctx, ten.GetId(), func(t *v1.Tenant) error { t.DisplayName = "Acme Inc."; return nil })
	require.NoError(t, err)
	require.Equal(t, "Acme Inc.", updated.GetDisplayName())
	require.NotEqual(t, stale, updated.GetEtag())
	err = tenants.Delete(ctx, ten.GetId(), switchyard.IfMatch(stale))
	require.ErrorIs(t, err, switchyard.ErrConflict)

	// A producer key may not use the control plane; a bad token is refused.
	_, secret, err := s.Admin.APIKeys().Create(ctx, ten.GetId(), &v1.ApiKey{Name: "p", Role: v1.ApiKeyRole_API_KEY_ROLE_PRODUCER})
	require.NoError(t, err)
	asProducer, err := switchyard.NewClient(s.ControlPlaneURL, switchyard.WithToken(secret))
	require.NoError(t, err)
	defer asProducer.Close()
	_, err = asProducer.Tenants().Get(ctx, ten.GetId())
	require.ErrorIs(t, err, switchyard.ErrPermissionDenied)
	anon, err := switchyard.NewClient(s.ControlPlaneURL, switchyard.WithGRPC())
	require.NoError(t, err)
	defer anon.Close()
	_, err = anon.Tenants().Get(ctx, ten.GetId())
	require.ErrorIs(t, err, switchyard.ErrUnauthenticated)
}

// TestUpdateRetriesOnConflict changes a pipeline behind the back of an
// Update between its read and its write: the write meets a stale etag and
// Update starts over, keeping both changes.
func TestUpdateRetriesOnConflict(t *testing.T) {
	t.Parallel()
	s := NewStack(t, kafkatest.NewFake(t))
	f := newTenant(t, s, 1, nil)
	ctx := ctxT(t)
	pipes := s.Admin.Pipelines()
	p, err := pipes.Create(ctx, f.tenant.GetId(), &v1.Pipeline{
		Name: "to-kafka", TopicId: f.topic.GetId(),
		Destinations: []*v1.Destination{{Name: "out", Kind: &v1.Destination_Kafka{Kafka: &v1.KafkaDestination{Topic: "out"}}}},
	})
	require.NoError(t, err)

	calls := 0
	out, err := pipes.Update(ctx, p.GetId(), func(pl *v1.Pipeline) error {
		calls++
		if calls == 1 {
			_, err := pipes.Update(ctx, p.GetId(), func(other *v1.Pipeline) error { other.Description = "changed meanwhile"; return nil })
			require.NoError(t, err)
		}
		pl.Description += "; and mine"
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, 2, calls, "the first write met a stale etag")
	require.Equal(t, "changed meanwhile; and mine", out.GetDescription())

	paused, err := pipes.Pause(ctx, p.GetId())
	require.NoError(t, err)
	require.True(t, paused.GetPaused())
}

// TestList pages through more objects than a page holds.
func TestList(t *testing.T) {
	t.Parallel()
	s := NewStack(t, kafkatest.NewFake(t))
	ctx := ctxT(t)
	const n = 230
	want := map[string]bool{}
	for range n {
		ten, err := s.Admin.Tenants().Create(ctx, &v1.Tenant{Name: uniqueName("list")})
		require.NoError(t, err)
		want[ten.GetId()] = true
	}
	got := map[string]bool{}
	for ten, err := range s.Admin.Tenants().List(ctx) {
		require.NoError(t, err)
		require.False(t, got[ten.GetId()], "tenant %s twice", ten.GetId())
		got[ten.GetId()] = true
	}
	require.Equal(t, want, got)

	regions := 0
	for r, err := range s.Admin.Regions().List(ctx) {
		require.NoError(t, err)
		require.Equal(t, RegionName, r.GetName())
		regions++
	}
	require.Equal(t, 1, regions)

	// An error ends the iteration with the error.
	anon, err := switchyard.NewClient(s.ControlPlaneURL)
	require.NoError(t, err)
	defer anon.Close()
	for _, err := range anon.Tenants().List(ctx) {
		require.ErrorIs(t, err, switchyard.ErrUnauthenticated)
	}
}
