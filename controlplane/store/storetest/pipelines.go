package storetest

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/switchyard-dev/switchyard/controlplane/store"
	"github.com/switchyard-dev/switchyard/internal/ids"
	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
)

// hookOf returns the webhook destination named name.
func hookOf(t *testing.T, p *v1.Pipeline, name string) *v1.WebhookDestination {
	t.Helper()
	for _, d := range p.Destinations {
		if d.Name == name {
			require.NotNil(t, d.GetWebhook(), "destination %q is not a webhook", name)
			return d.GetWebhook()
		}
	}
	require.Failf(t, "no destination", "pipeline has no destination %q", name)
	return nil
}

// secretsByDest maps destination names to their secret values, in the order
// WebhookSecrets returned them.
func secretsByDest(t *testing.T, s store.Store, pipelineID string) map[string][]string {
	t.Helper()
	secrets, err := s.WebhookSecrets(ctx(t), pipelineID)
	require.NoError(t, err)
	out := map[string][]string{}
	for _, sec := range secrets {
		require.Equal(t, pipelineID, sec.PipelineID)
		out[sec.Destination] = append(out[sec.Destination], sec.Secret)
	}
	return out
}

func fullPipeline(tenantID, topicID, secret string) *v1.Pipeline {
	hook := webhook("hook", "https://example.com/hook")
	hook.GetWebhook().SigningSecret = secret
	hook.GetWebhook().Headers = map[string]string{"X-Api-Key": "receiver-key"}
	hook.GetWebhook().Timeout = durationpb.New(3 * time.Second)
	hook.MaxInFlight = 32
	mirror := kafkaDest("mirror", "audit.orders")
	mirror.RateLimit = &v1.RateLimit{PerSecond: 50, Burst: 100}
	return &v1.Pipeline{
		TenantId:    tenantID,
		TopicId:     topicID,
		Name:        "ship-orders",
		Description: "big orders to shipping",
		Filter:      &v1.Filter{EventTypes: []string{"order.*"}, Expression: "data.total > 100"},
		Transform:   &v1.Transform{Expression: `{"id": event.id}`},
		Destinations: []*v1.Destination{
			hook,
			mirror,
		},
		RetryPolicy: &v1.RetryPolicy{
			MaxAttempts:             5,
			MaxAge:                  durationpb.New(time.Hour),
			InitialBackoff:          durationpb.New(time.Second),
			MaxBackoff:              durationpb.New(time.Minute),
			Multiplier:              1.5,
			NonRetryableStatusCodes: []uint32{410, 422},
		},
		DeadLetterPolicy: &v1.DeadLetterPolicy{Retention: durationpb.New(48 * time.Hour)},
		Ordering:         v1.OrderingMode_ORDERING_MODE_KEY,
		Paused:           true,
		ConsumerGroup:    "chosen-by-caller",
		DeadLetterTopic:  "chosen-by-caller",
		Etag:             "42",
	}
}

func testPipelineCRUD(t *testing.T, s store.Store) {
	tn := mkTenant(t, s, "acme")
	top := mkTopic(t, s, tn.Id, "orders")
	top2 := mkTopic(t, s, tn.Id, "payments")
	secret := newSecret(t)
	in := fullPipeline(tn.Id, top.Id, secret)

	created, err := s.CreatePipeline(ctx(t), operator, in, []store.WebhookSecret{{Destination: "hook", Secret: secret}})
	require.NoError(t, err)
	require.NoError(t, ids.Check(ids.Pipeline, created.Id))
	require.Equal(t, "sy."+tn.Id+"."+created.Id, created.ConsumerGroup)
	require.Equal(t, "sy."+tn.Id+"."+created.Id+".dlq", created.DeadLetterTopic)
	require.Equal(t, "1", created.Etag)
	require.True(t, created.Paused)
	hook := hookOf(t, created, "hook")
	require.Empty(t, hook.SigningSecret)
	require.Len(t, hook.SigningSecrets, 1)
	info := hook.SigningSecrets[0]
	require.NoError(t, ids.Check(ids.Secret, info.Id))
	require.Equal(t, secret[len(secret)-4:], info.Hint)
	require.Nil(t, info.ExpireTime)
	require.NotNil(t, info.CreateTime)

	want := proto.CloneOf(in)
	want.Id = created.Id
	want.ConsumerGroup = created.ConsumerGroup
	want.DeadLetterTopic = created.DeadLetterTopic
	want.Etag = "1"
	want.CreateTime, want.UpdateTime = created.CreateTime, created.UpdateTime
	want.RetryPolicy.Jitter = v1.Jitter_JITTER_FULL // unspecified is stored as FULL
	want.Destinations[0].GetWebhook().SigningSecret = ""
	want.Destinations[0].GetWebhook().SigningSecrets = []*v1.SigningSecretInfo{info}
	requireProto(t, want, created)

	got, err := s.GetPipeline(ctx(t), created.Id)
	require.NoError(t, err)
	requireProto(t, created, got)

	// Update: mutable fields change; name, topic and paused do not.
	upd := proto.CloneOf(created)
	upd.Name = "renamed"
	upd.TopicId = top2.Id
	upd.Paused = false
	upd.Description = "every order"
	upd.Filter = nil
	upd.Transform = nil
	upd.RetryPolicy = nil
	upd.DeadLetterPolicy = nil
	upd.Ordering = v1.OrderingMode_ORDERING_MODE_UNSPECIFIED
	upd.Destinations = upd.Destinations[:1]
	updated, err := s.UpdatePipeline(ctx(t), adminKey, upd, 1, nil)
	require.NoError(t, err)
	require.Equal(t, "ship-orders", updated.Name)
	require.Equal(t, top.Id, updated.TopicId)
	require.True(t, updated.Paused)
	require.Equal(t, "every order", updated.Description)
	require.Nil(t, updated.Filter)
	require.Nil(t, updated.Transform)
	require.Nil(t, updated.RetryPolicy)
	require.Nil(t, updated.DeadLetterPolicy)
	require.Equal(t, v1.OrderingMode_ORDERING_MODE_NONE, updated.Ordering, "unspecified is stored as NONE")
	require.Len(t, updated.Destinations, 1)
	requireProto(t, info, hookOf(t, updated, "hook").SigningSecrets[0])
	require.Equal(t, "2", updated.Etag)
	require.Equal(t, created.CreateTime.AsTime(), updated.CreateTime.AsTime())
	got, err = s.GetPipeline(ctx(t), created.Id)
	require.NoError(t, err)
	requireProto(t, updated, got)

	// Lists, by tenant and by topic.
	other, _ := mkPipeline(t, s, tn.Id, top2.Id, "other")
	list, err := s.ListPipelines(ctx(t), store.ListParams{TenantID: tn.Id, Limit: 10})
	require.NoError(t, err)
	require.Len(t, list, 2)
	requireProto(t, updated, list[0])
	requireProto(t, other, list[1])
	list, err = s.ListPipelines(ctx(t), store.ListParams{TenantID: tn.Id, TopicID: top2.Id, Limit: 10})
	require.NoError(t, err)
	require.Len(t, list, 1)
	requireProto(t, other, list[0])

	// Delete.
	err = s.DeletePipeline(ctx(t), operator, store.DeleteParams{ID: created.Id, Version: 1})
	require.ErrorIs(t, err, store.ErrConflict)
	require.NoError(t, s.DeletePipeline(ctx(t), operator, store.DeleteParams{ID: created.Id, Version: 2}))
	_, err = s.GetPipeline(ctx(t), created.Id)
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = s.WebhookSecrets(ctx(t), created.Id)
	require.ErrorIs(t, err, store.ErrNotFound)
	err = s.DeletePipeline(ctx(t), operator, store.DeleteParams{ID: created.Id})
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = s.UpdatePipeline(ctx(t), operator, upd, 2, nil)
	require.ErrorIs(t, err, store.ErrNotFound)

	// A webhook destination without a secret, or a secret for no webhook
	// destination, is refused and stores nothing.
	_, err = s.CreatePipeline(ctx(t), operator, fullPipeline(tn.Id, top.Id, ""), nil)
	require.Error(t, err)
	_, err = s.CreatePipeline(ctx(t), operator, fullPipeline(tn.Id, top.Id, ""),
		[]store.WebhookSecret{{Destination: "hook", Secret: newSecret(t)}, {Destination: "mirror", Secret: newSecret(t)}})
	require.Error(t, err)
	list, err = s.ListPipelines(ctx(t), store.ListParams{TenantID: tn.Id, Limit: 10})
	require.NoError(t, err)
	require.Len(t, list, 1)

	// A missing topic or tenant.
	_, err = s.CreatePipeline(ctx(t), operator, &v1.Pipeline{TenantId: tn.Id, TopicId: ids.New(ids.Topic), Name: "x",
		Destinations: []*v1.Destination{kafkaDest("k", "t")}}, nil)
	require.ErrorIs(t, err, store.ErrNotFound)
}

func testPipelineDuplicateName(t *testing.T, s store.Store) {
	a := mkTenant(t, s, "a")
	b := mkTenant(t, s, "b")
	topA := mkTopic(t, s, a.Id, "orders")
	topA2 := mkTopic(t, s, a.Id, "refunds")
	topB := mkTopic(t, s, b.Id, "orders")
	mkPipeline(t, s, a.Id, topA.Id, "ship")
	_, err := s.CreatePipeline(ctx(t), operator, &v1.Pipeline{TenantId: a.Id, TopicId: topA2.Id, Name: "ship",
		Destinations: []*v1.Destination{kafkaDest("k", "t")}}, nil)
	require.ErrorIs(t, err, store.ErrAlreadyExists)
	require.Contains(t, err.Error(), `"ship"`)
	mkPipeline(t, s, b.Id, topB.Id, "ship")
}

func testPipelineTopicOfOtherTenant(t *testing.T, s store.Store) {
	a := mkTenant(t, s, "a")
	b := mkTenant(t, s, "b")
	topB := mkTopic(t, s, b.Id, "orders")
	_, err := s.CreatePipeline(ctx(t), operator, &v1.Pipeline{TenantId: a.Id, TopicId: topB.Id, Name: "steal",
		Destinations: []*v1.Destination{kafkaDest("k", "t")}}, nil)
	require.ErrorIs(t, err, store.ErrNotFound)
	list, err := s.ListPipelines(ctx(t), store.ListParams{TenantID: a.Id, Limit: 10})
	require.NoError(t, err)
	require.Empty(t, list)
}

func testPipelineStaleVersion(t *testing.T, s store.Store) {
	tn := mkTenant(t, s, "acme")
	top := mkTopic(t, s, tn.Id, "orders")
	p, _ := mkPipeline(t, s, tn.Id, top.Id, "ship")
	p.Description = "one"
	_, err := s.UpdatePipeline(ctx(t), operator, p, 1, nil)
	require.NoError(t, err)
	p.Description = "two"
	_, err = s.UpdatePipeline(ctx(t), operator, p, 1, nil)
	require.ErrorIs(t, err, store.ErrConflict)
	_, err = s.UpdatePipeline(ctx(t), operator, p, 3, nil)
	require.ErrorIs(t, err, store.ErrConflict)
	got, err := s.GetPipeline(ctx(t), p.Id)
	require.NoError(t, err)
	require.Equal(t, "one", got.Description)
	require.Equal(t, "2", got.Etag)
}

func testPipelineConcurrentUpdate(t *testing.T, s store.Store) {
	tn := mkTenant(t, s, "acme")
	top := mkTopic(t, s, tn.Id, "orders")
	p, _ := mkPipeline(t, s, tn.Id, top.Id, "ship")

	const writers = 8
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		errs  = make([]error, writers)
		outs  = make([]*v1.Pipeline, writers)
	)
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine := proto.CloneOf(p)
			mine.Description = "writer " + string(rune('a'+i))
			<-start
			outs[i], errs[i] = s.UpdatePipeline(ctx(t), operator, mine, 1, nil)
		}()
	}
	close(start)
	wg.Wait()

	winner := -1
	for i, err := range errs {
		if err == nil {
			require.Equal(t, -1, winner, "two writers won: %d and %d", winner, i)
			winner = i
			continue
		}
		require.ErrorIs(t, err, store.ErrConflict, "writer %d", i)
	}
	require.NotEqual(t, -1, winner, "no writer won")
	require.Equal(t, "2", outs[winner].Etag)
	got, err := s.GetPipeline(ctx(t), p.Id)
	require.NoError(t, err)
	require.Equal(t, "writer "+string(rune('a'+winner)), got.Description)
	require.Equal(t, "2", got.Etag)
}

func testPipelinePause(t *testing.T, s store.Store) {
	tn := mkTenant(t, s, "acme")
	top := mkTopic(t, s, tn.Id, "orders")
	p, _ := mkPipeline(t, s, tn.Id, top.Id, "ship")
	require.False(t, p.Paused)

	paused, err := s.SetPipelinePaused(ctx(t), adminKey, p.Id, true)
	require.NoError(t, err)
	require.True(t, paused.Paused)
	require.Equal(t, "2", paused.Etag)
	require.Len(t, hookOf(t, paused, "hook").SigningSecrets, 1)
	cv, err := s.ConfigVersion(ctx(t))
	require.NoError(t, err)

	again, err := s.SetPipelinePaused(ctx(t), adminKey, p.Id, true)
	require.NoError(t, err)
	requireProto(t, paused, again)
	cv2, err := s.ConfigVersion(ctx(t))
	require.NoError(t, err)
	require.Equal(t, cv, cv2, "an idempotent pause changes nothing")

	resumed, err := s.SetPipelinePaused(ctx(t), adminKey, p.Id, false)
	require.NoError(t, err)
	require.False(t, resumed.Paused)
	require.Equal(t, "3", resumed.Etag)
	got, err := s.GetPipeline(ctx(t), p.Id)
	require.NoError(t, err)
	requireProto(t, resumed, got)

	audit, err := s.ListAudit(ctx(t), store.AuditFilter{ResourceID: p.Id, Limit: 10})
	require.NoError(t, err)
	require.Len(t, audit, 3)
	require.Equal(t, "pipeline.resume", audit[0].Action)
	require.Equal(t, "pipeline.pause", audit[1].Action)
	require.Equal(t, adminKey, audit[1].Actor)
	require.Equal(t, "pipeline.create", audit[2].Action)

	_, err = s.SetPipelinePaused(ctx(t), adminKey, ids.New(ids.Pipeline), true)
	require.ErrorIs(t, err, store.ErrNotFound)
}

func testPipelineSecretsNeverReturned(t *testing.T, s store.Store) {
	tn := mkTenant(t, s, "acme")
	top := mkTopic(t, s, tn.Id, "orders")
	secret := newSecret(t)
	in := fullPipeline(tn.Id, top.Id, secret)
	noSecret := func(p *v1.Pipeline) {
		t.Helper()
		js, err := protojson.Marshal(p)
		require.NoError(t, err)
		require.NotContains(t, string(js), secret)
		require.Empty(t, hookOf(t, p, "hook").SigningSecret)
	}
	p, err := s.CreatePipeline(ctx(t), operator, in, []store.WebhookSecret{{Destination: "hook", Secret: secret}})
	require.NoError(t, err)
	noSecret(p)
	got, err := s.GetPipeline(ctx(t), p.Id)
	require.NoError(t, err)
	noSecret(got)
	list, err := s.ListPipelines(ctx(t), store.ListParams{TenantID: tn.Id, Limit: 10})
	require.NoError(t, err)
	noSecret(list[0])

	// A secret in the destination itself is not stored: only newSecrets are.
	smuggled := newSecret(t)
	upd := proto.CloneOf(p)
	hookOf(t, upd, "hook").SigningSecret = smuggled
	updated, err := s.UpdatePipeline(ctx(t), operator, upd, 1, nil)
	require.NoError(t, err)
	noSecret(updated)
	require.Equal(t, map[string][]string{"hook": {secret}}, secretsByDest(t, s, p.Id))
	resumed, err := s.SetPipelinePaused(ctx(t), operator, p.Id, false) // created paused
	require.NoError(t, err)
	require.False(t, resumed.Paused)
	noSecret(resumed)

	audit, err := s.ListAudit(ctx(t), store.AuditFilter{ResourceID: p.Id, Limit: 10})
	require.NoError(t, err)
	require.Len(t, audit, 3)
	for _, e := range audit {
		require.NotContains(t, string(e.Detail), secret)
		require.NotContains(t, string(e.Detail), smuggled)
	}
}

func testPipelineSecretRotation(t *testing.T, s store.Store) {
	tn := mkTenant(t, s, "acme")
	top := mkTopic(t, s, tn.Id, "orders")
	s1 := newSecret(t)
	in := fullPipeline(tn.Id, top.Id, "")
	p, err := s.CreatePipeline(ctx(t), operator, in, []store.WebhookSecret{{Destination: "hook", Secret: s1}})
	require.NoError(t, err)
	first := hookOf(t, p, "hook").SigningSecrets[0]

	secrets, err := s.WebhookSecrets(ctx(t), p.Id)
	require.NoError(t, err)
	require.Len(t, secrets, 1)
	require.Equal(t, first.Id, secrets[0].ID)
	require.Equal(t, "hook", secrets[0].Destination)
	require.Equal(t, s1, secrets[0].Secret)
	require.True(t, secrets[0].ExpireTime.IsZero())

	// Rotate with a one-hour overlap: both secrets sign, newest first.
	s2 := newSecret(t)
	ct := time.Now().Truncate(time.Microsecond)
	rotated, err := s.RotateWebhookSecret(ctx(t), adminKey,
		store.WebhookSecret{PipelineID: p.Id, Destination: "hook", Secret: s2, CreateTime: ct}, time.Hour)
	require.NoError(t, err)
	require.Equal(t, "2", rotated.Etag)
	infos := hookOf(t, rotated, "hook").SigningSecrets
	require.Len(t, infos, 2)
	require.Equal(t, s2[len(s2)-4:], infos[0].Hint)
	require.True(t, ct.Equal(infos[0].CreateTime.AsTime()))
	require.Nil(t, infos[0].ExpireTime)
	require.Equal(t, first.Id, infos[1].Id)
	require.Equal(t, s1[len(s1)-4:], infos[1].Hint)
	require.True(t, ct.Add(time.Hour).Equal(infos[1].ExpireTime.AsTime()), "old secret expires at %v", infos[1].ExpireTime.AsTime())
	require.Empty(t, hookOf(t, rotated, "hook").SigningSecret)

	secrets, err = s.WebhookSecrets(ctx(t), p.Id)
	require.NoError(t, err)
	require.Len(t, secrets, 2)
	require.Equal(t, s2, secrets[0].Secret)
	require.Equal(t, infos[0].Id, secrets[0].ID)
	require.True(t, secrets[0].ExpireTime.IsZero())
	require.Equal(t, s1, secrets[1].Secret)
	require.True(t, ct.Add(time.Hour).Equal(secrets[1].ExpireTime))
	got, err := s.GetPipeline(ctx(t), p.Id)
	require.NoError(t, err)
	requireProto(t, rotated, got)

	// Rotate with no overlap: only the new secret is left.
	s3 := newSecret(t)
	rotated, err = s.RotateWebhookSecret(ctx(t), adminKey,
		store.WebhookSecret{PipelineID: p.Id, Destination: "hook", Secret: s3}, 0)
	require.NoError(t, err)
	require.Equal(t, "3", rotated.Etag)
	infos = hookOf(t, rotated, "hook").SigningSecrets
	require.Len(t, infos, 1)
	require.Equal(t, s3[len(s3)-4:], infos[0].Hint)
	require.Equal(t, map[string][]string{"hook": {s3}}, secretsByDest(t, s, p.Id))

	// Unknown or non-webhook destinations, and missing pipelines.
	_, err = s.RotateWebhookSecret(ctx(t), adminKey,
		store.WebhookSecret{PipelineID: p.Id, Destination: "nope", Secret: newSecret(t)}, 0)
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = s.RotateWebhookSecret(ctx(t), adminKey,
		store.WebhookSecret{PipelineID: p.Id, Destination: "mirror", Secret: newSecret(t)}, 0)
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = s.RotateWebhookSecret(ctx(t), adminKey,
		store.WebhookSecret{PipelineID: ids.New(ids.Pipeline), Destination: "hook", Secret: newSecret(t)}, 0)
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = s.WebhookSecrets(ctx(t), ids.New(ids.Pipeline))
	require.ErrorIs(t, err, store.ErrNotFound)

	audit, err := s.ListAudit(ctx(t), store.AuditFilter{ResourceID: p.Id, Limit: 1})
	require.NoError(t, err)
	require.Len(t, audit, 1)
	require.Equal(t, "pipeline.rotate_secret", audit[0].Action)
	require.Equal(t, adminKey, audit[0].Actor)
	require.NotContains(t, string(audit[0].Detail), s3)
}

func testPipelineUpdateSecrets(t *testing.T, s store.Store) {
	tn := mkTenant(t, s, "acme")
	top := mkTopic(t, s, tn.Id, "orders")
	sa, sb := newSecret(t), newSecret(t)
	p, err := s.CreatePipeline(ctx(t), operator, &v1.Pipeline{
		TenantId: tn.Id, TopicId: top.Id, Name: "fan",
		Destinations: []*v1.Destination{webhook("a", "https://a.example"), webhook("b", "https://b.example")},
	}, []store.WebhookSecret{{Destination: "a", Secret: sa}, {Destination: "b", Secret: sb}})
	require.NoError(t, err)
	require.Equal(t, map[string][]string{"a": {sa}, "b": {sb}}, secretsByDest(t, s, p.Id))

	// Drop b, add c with its secret.
	sc := newSecret(t)
	p.Destinations = []*v1.Destination{webhook("a", "https://a.example"), webhook("c", "https://c.example")}
	p, err = s.UpdatePipeline(ctx(t), operator, p, 1, []store.WebhookSecret{{Destination: "c", Secret: sc}})
	require.NoError(t, err)
	require.Equal(t, map[string][]string{"a": {sa}, "c": {sc}}, secretsByDest(t, s, p.Id))
	require.Equal(t, sc[len(sc)-4:], hookOf(t, p, "c").SigningSecrets[0].Hint)

	// Replace a's secret at once.
	sa2 := newSecret(t)
	p, err = s.UpdatePipeline(ctx(t), operator, p, 2, []store.WebhookSecret{{Destination: "a", Secret: sa2}})
	require.NoError(t, err)
	require.Equal(t, map[string][]string{"a": {sa2}, "c": {sc}}, secretsByDest(t, s, p.Id))
	require.Len(t, hookOf(t, p, "a").SigningSecrets, 1)

	// A new webhook destination without a secret is refused; nothing changes.
	bad := proto.CloneOf(p)
	bad.Destinations = append(bad.Destinations, webhook("d", "https://d.example"))
	_, err = s.UpdatePipeline(ctx(t), operator, bad, 3, nil)
	require.Error(t, err)
	got, err := s.GetPipeline(ctx(t), p.Id)
	require.NoError(t, err)
	requireProto(t, p, got)

	// Turning a into a Kafka destination drops its secrets.
	p.Destinations = []*v1.Destination{kafkaDest("a", "mirror"), webhook("c", "https://c.example")}
	p, err = s.UpdatePipeline(ctx(t), operator, p, 3, nil)
	require.NoError(t, err)
	require.Equal(t, map[string][]string{"c": {sc}}, secretsByDest(t, s, p.Id))
	require.Equal(t, "4", p.Etag)
	require.True(t, strings.HasPrefix(p.Destinations[0].GetKafka().GetTopic(), "mirror"))
}
