package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/switchyard-dev/switchyard/controlplane/store"
	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
)

// sortedIDs returns ids in ascending order.
func sortedIDs(ids ...string) []string { return slices.Sorted(slices.Values(ids)) }

func testSnapshotEmpty(t *testing.T, s store.Store) {
	snap, err := s.Snapshot(ctx(t))
	require.NoError(t, err)
	require.Zero(t, snap.Version)
	require.NotNil(t, snap.CreateTime)
	require.WithinDuration(t, time.Now(), snap.CreateTime.AsTime(), time.Hour)
	require.Empty(t, snap.Regions)
	require.Empty(t, snap.Tenants)
	require.Empty(t, snap.Topics)
	require.Empty(t, snap.Pipelines)
	require.Empty(t, snap.ApiKeys)
	require.Empty(t, snap.SigningSecrets)
}

func testSnapshotContents(t *testing.T, s store.Store) {
	eu, us := mkRegion(t, s, "eu"), mkRegion(t, s, "us")
	acme, globex := mkTenant(t, s, "acme"), mkTenant(t, s, "globex")
	orders := mkTopic(t, s, acme.Id, "orders")
	users := mkTopic(t, s, globex.Id, "users")
	p1, s1 := mkPipeline(t, s, acme.Id, orders.Id, "ship")
	p2, _ := mkPipeline(t, s, globex.Id, users.Id, "crm")
	// A pipeline with two webhooks and a Kafka destination.
	p3, err := s.CreatePipeline(ctx(t), operator, &v1.Pipeline{
		TenantId: acme.Id, TopicId: orders.Id, Name: "fanout",
		Destinations: []*v1.Destination{
			webhook("b-hook", "https://example.com/b"),
			kafkaDest("mirror", "audit.orders"),
			webhook("a-hook", "https://example.com/a"),
		},
	}, []store.WebhookSecret{{Destination: "b-hook", Secret: newSecret(t)}, {Destination: "a-hook", Secret: newSecret(t)}})
	require.NoError(t, err)
	// Rotate p1's secret: both sign, newest first.
	s1b := newSecret(t)
	_, err = s.RotateWebhookSecret(ctx(t), operator, store.WebhookSecret{PipelineID: p1.Id, Destination: "hook", Secret: s1b}, time.Hour)
	require.NoError(t, err)
	// p2's secret rotates with no overlap: only the new one is left.
	s2b := newSecret(t)
	_, err = s.RotateWebhookSecret(ctx(t), operator, store.WebhookSecret{PipelineID: p2.Id, Destination: "hook", Secret: s2b}, 0)
	require.NoError(t, err)

	// Keys: active admin, producer limited to a topic with a future expiry,
	// revoked, expired.
	admin := mkAPIKey(t, s, acme.Id, "admin")
	future := timestamppb.New(time.Now().Add(24 * time.Hour).Truncate(time.Microsecond))
	producer, err := s.CreateAPIKey(ctx(t), operator, &v1.ApiKey{TenantId: globex.Id, Name: "producer",
		Role: v1.ApiKeyRole_API_KEY_ROLE_PRODUCER, TopicIds: []string{users.Id}, ExpireTime: future},
		[]byte("hash-of-producer"))
	require.NoError(t, err)
	revoked := mkAPIKey(t, s, acme.Id, "revoked")
	_, err = s.RevokeAPIKey(ctx(t), operator, revoked.Id)
	require.NoError(t, err)
	expired := mkAPIKey(t, s, acme.Id, "expired")
	expired.ExpireTime = timestamppb.New(time.Now().Add(-time.Minute))
	_, err = s.UpdateAPIKey(ctx(t), operator, expired, version(t, expired.Etag))
	require.NoError(t, err)

	snap, err := s.Snapshot(ctx(t))
	require.NoError(t, err)
	cv, err := s.ConfigVersion(ctx(t))
	require.NoError(t, err)
	require.Equal(t, cv, snap.Version)

	require.Len(t, snap.Regions, 2)
	for _, r := range snap.Regions {
		want, err := s.GetRegion(ctx(t), r.Id)
		require.NoError(t, err)
		requireProto(t, want, r)
	}
	require.Equal(t, sortedIDs(eu.Id, us.Id), []string{snap.Regions[0].Id, snap.Regions[1].Id})

	require.Len(t, snap.Tenants, 2)
	require.Equal(t, sortedIDs(acme.Id, globex.Id), []string{snap.Tenants[0].Id, snap.Tenants[1].Id})
	for _, tn := range snap.Tenants {
		want, err := s.GetTenant(ctx(t), tn.Id)
		require.NoError(t, err)
		requireProto(t, want, tn)
	}
	require.Len(t, snap.Topics, 2)
	require.Equal(t, sortedIDs(orders.Id, users.Id), []string{snap.Topics[0].Id, snap.Topics[1].Id})
	for _, tp := range snap.Topics {
		want, err := s.GetTopic(ctx(t), tp.Id)
		require.NoError(t, err)
		requireProto(t, want, tp)
	}
	require.Len(t, snap.Pipelines, 3)
	require.Equal(t, sortedIDs(p1.Id, p2.Id, p3.Id),
		[]string{snap.Pipelines[0].Id, snap.Pipelines[1].Id, snap.Pipelines[2].Id})
	for _, p := range snap.Pipelines {
		want, err := s.GetPipeline(ctx(t), p.Id)
		require.NoError(t, err)
		requireProto(t, want, p)
		for _, d := range p.Destinations {
			require.Empty(t, d.GetWebhook().GetSigningSecret(), "no secret values in pipelines")
		}
	}

	// Only usable keys, with what a node needs to check them.
	require.Len(t, snap.ApiKeys, 2)
	creds := map[string]*v1.ApiKeyCredential{}
	for _, c := range snap.ApiKeys {
		creds[c.Id] = c
	}
	require.Equal(t, sortedIDs(admin.Id, producer.Id), []string{snap.ApiKeys[0].Id, snap.ApiKeys[1].Id})
	requireProto(t, &v1.ApiKeyCredential{Id: admin.Id, TenantId: acme.Id, Role: v1.ApiKeyRole_API_KEY_ROLE_ADMIN,
		SecretHash: []byte("hash-of-admin")}, creds[admin.Id])
	requireProto(t, &v1.ApiKeyCredential{Id: producer.Id, TenantId: globex.Id, Role: v1.ApiKeyRole_API_KEY_ROLE_PRODUCER,
		TopicIds: []string{users.Id}, SecretHash: []byte("hash-of-producer"), ExpireTime: future}, creds[producer.Id])

	// Signing secrets: unexpired values, newest first, per destination.
	got := map[string][]string{}
	for _, ss := range snap.SigningSecrets {
		k := ss.PipelineId + "/" + ss.Destination
		require.NotContains(t, got, k, "one entry per destination")
		got[k] = ss.Secrets
	}
	p3Secrets := secretsByDest(t, s, p3.Id)
	require.Equal(t, map[string][]string{
		p1.Id + "/hook":   {s1b, s1},
		p2.Id + "/hook":   {s2b},
		p3.Id + "/a-hook": p3Secrets["a-hook"],
		p3.Id + "/b-hook": p3Secrets["b-hook"],
	}, got)
	require.Len(t, p3Secrets["a-hook"], 1)
	require.Len(t, p3Secrets["b-hook"], 1)

	// A deleted pipeline takes its secrets out of the next snapshot.
	require.NoError(t, s.DeletePipeline(ctx(t), operator, store.DeleteParams{ID: p1.Id}))
	snap2, err := s.Snapshot(ctx(t))
	require.NoError(t, err)
	require.Greater(t, snap2.Version, snap.Version)
	require.Len(t, snap2.Pipelines, 2)
	for _, ss := range snap2.SigningSecrets {
		require.NotEqual(t, p1.Id, ss.PipelineId)
	}
	require.Len(t, snap2.SigningSecrets, 3)
}

// testSnapshotConsistent takes snapshots while tenants are created; each
// creation bumps the version by one, so a consistent snapshot has exactly
// version-v0 tenants.
func testSnapshotConsistent(t *testing.T, s store.Store) {
	v0, err := s.ConfigVersion(ctx(t))
	require.NoError(t, err)
	const writers, perWriter = 3, 15
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				if _, err := s.CreateTenant(ctx(t), operator, &v1.Tenant{Name: fmt.Sprintf("t-%d-%d", w, i)}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	snaps := 0
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		snap, err := s.Snapshot(ctx(t))
		require.NoError(t, err)
		require.Equal(t, snap.Version-v0, int64(len(snap.Tenants)), "snapshot %d at version %d", snaps, snap.Version)
		snaps++
	}
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	snap, err := s.Snapshot(ctx(t))
	require.NoError(t, err)
	require.Len(t, snap.Tenants, writers*perWriter)
	require.Equal(t, v0+writers*perWriter, snap.Version)
}

func testWaitConfigVersion(t *testing.T, s store.Store) {
	mkRegion(t, s, "eu")
	v, err := s.ConfigVersion(ctx(t))
	require.NoError(t, err)

	// Already newer: returns at once.
	got, err := s.WaitConfigVersion(ctx(t), v-1)
	require.NoError(t, err)
	require.Equal(t, v, got)

	// Blocks until a change, then returns the new version.
	type result struct {
		v   int64
		err error
	}
	res := make(chan result, 1)
	waitCtx, cancel := context.WithTimeout(ctx(t), 30*time.Second)
	defer cancel()
	go func() {
		v, err := s.WaitConfigVersion(waitCtx, v)
		res <- result{v, err}
	}()
	select {
	case r := <-res:
		t.Fatalf("returned before any change: %d, %v", r.v, r.err)
	case <-time.After(100 * time.Millisecond):
	}
	mkTenant(t, s, "acme")
	r := <-res
	require.NoError(t, r.err)
	require.Equal(t, v+1, r.v)

	// Nodes do not wake waiters; the context ends the wait.
	cctx, ccancel := context.WithCancel(ctx(t))
	go func() {
		v, err := s.WaitConfigVersion(cctx, v+1)
		res <- result{v, err}
	}()
	_, err = s.RegisterNode(ctx(t), &v1.Node{RegionId: mustRegion(t, s), Hostname: "node-a"})
	require.NoError(t, err)
	select {
	case r := <-res:
		t.Fatalf("returned without a configuration change: %d, %v", r.v, r.err)
	case <-time.After(100 * time.Millisecond):
	}
	ccancel()
	r = <-res
	require.True(t, errors.Is(r.err, context.Canceled), "got %v", r.err)

	// Many waiters, one change: all wake; the store stays usable after.
	const n = 3
	results := make(chan result, n)
	wctx, wcancel := context.WithTimeout(ctx(t), 30*time.Second)
	defer wcancel()
	for range n {
		go func() {
			v, err := s.WaitConfigVersion(wctx, v+1)
			results <- result{v, err}
		}()
	}
	time.Sleep(50 * time.Millisecond)
	mkTenant(t, s, "globex")
	for range n {
		r := <-results
		require.NoError(t, r.err)
		require.Equal(t, v+2, r.v)
	}
	_, err = s.Snapshot(ctx(t))
	require.NoError(t, err)
}

// mustRegion returns the id of some region of s.
func mustRegion(t *testing.T, s store.Store) string {
	t.Helper()
	rs, err := s.ListRegions(ctx(t), store.ListParams{Limit: 1})
	require.NoError(t, err)
	require.NotEmpty(t, rs)
	return rs[0].Id
}
