package controlplane

import (
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/switchyard-dev/switchyard/internal/ids"
	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
)

// pipelineFixture is a tenant with a topic and an admin client.
type pipelineFixture struct {
	tenant *v1.Tenant
	topic  *v1.Topic
	admin  *clients
}

func newPipelineFixture(t *testing.T, b *testBundle) *pipelineFixture {
	t.Helper()
	tn := b.tenant(t)
	r := b.region(t)
	_, token := b.key(t, tn.GetId(), v1.ApiKeyRole_API_KEY_ROLE_ADMIN)
	return &pipelineFixture{tenant: tn, topic: b.topic(t, tn.GetId(), r.GetId()), admin: b.clients(token)}
}

func TestPipelineCRUD(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	f := newPipelineFixture(t, b)
	c := f.admin.pipelines

	in := webhookPipeline(f.topic.GetId())
	in.Filter = &v1.Filter{EventTypes: []string{"order.*"}, Expression: `event.type == "order.created"`}
	in.Transform = &v1.Transform{Expression: `{"id": event.id}`}
	in.Destinations = append(in.Destinations, &v1.Destination{
		Name: "mirror", Kind: &v1.Destination_Kafka{Kafka: &v1.KafkaDestination{Topic: "mirror.orders"}}})
	res, err := c.CreatePipeline(ctx, &v1.CreatePipelineRequest{TenantId: f.tenant.GetId(), Pipeline: in})
	require.NoError(t, err)
	p := res.GetPipeline()
	require.NoError(t, ids.Check(ids.Pipeline, p.GetId()))
	require.Equal(t, f.tenant.GetId(), p.GetTenantId())

	// Defaults are explicit.
	require.Equal(t, v1.OrderingMode_ORDERING_MODE_NONE, p.GetOrdering())
	rp := p.GetRetryPolicy()
	require.Equal(t, uint32(10), rp.GetMaxAttempts())
	require.Equal(t, 24*time.Hour, rp.GetMaxAge().AsDuration())
	require.Equal(t, 5*time.Second, rp.GetInitialBackoff().AsDuration())
	require.Equal(t, 2*time.Hour, rp.GetMaxBackoff().AsDuration())
	require.Equal(t, 2.0, rp.GetMultiplier())
	require.Equal(t, v1.Jitter_JITTER_FULL, rp.GetJitter())
	require.Equal(t, []uint32{410}, rp.GetNonRetryableStatusCodes())
	require.Equal(t, 14*24*time.Hour, p.GetDeadLetterPolicy().GetRetention().AsDuration())
	require.Equal(t, uint32(16), p.GetDestinations()[0].GetMaxInFlight())
	require.Equal(t, 10*time.Second, p.GetDestinations()[0].GetWebhook().GetTimeout().AsDuration())

	// The generated secret is shown in the create response only.
	secret := p.GetDestinations()[0].GetWebhook().GetSigningSecret()
	require.True(t, strings.HasPrefix(secret, "whsec_"), secret)
	require.Len(t, secret, len("whsec_")+44)
	require.Len(t, p.GetDestinations()[0].GetWebhook().GetSigningSecrets(), 1)
	require.Empty(t, p.GetDestinations()[1].GetWebhook().GetSigningSecret())

	got, err := c.GetPipeline(ctx, &v1.GetPipelineRequest{Id: p.GetId()})
	require.NoError(t, err)
	require.Empty(t, got.GetPipeline().GetDestinations()[0].GetWebhook().GetSigningSecret())
	require.Len(t, got.GetPipeline().GetDestinations()[0].GetWebhook().GetSigningSecrets(), 1)
	require.NotContains(t, got.GetPipeline().String(), secret)
	list, err := c.ListPipelines(ctx, &v1.ListPipelinesRequest{TenantId: f.tenant.GetId(), TopicId: f.topic.GetId()})
	require.NoError(t, err)
	require.Len(t, list.GetPipelines(), 1)
	require.NotContains(t, list.String(), secret)
	stored, err := b.store.WebhookSecrets(ctx, p.GetId())
	require.NoError(t, err)
	require.Len(t, stored, 1)
	require.Equal(t, secret, stored[0].Secret)

	// A given secret is kept.
	given := "whsec_" + strings.Repeat("A", 43) + "="
	in2 := webhookPipeline(f.topic.GetId())
	in2.Destinations[0].GetWebhook().SigningSecret = given
	res2, err := c.CreatePipeline(ctx, &v1.CreatePipelineRequest{TenantId: f.tenant.GetId(), Pipeline: in2})
	require.NoError(t, err)
	require.Equal(t, given, res2.GetPipeline().GetDestinations()[0].GetWebhook().GetSigningSecret())

	_, err = c.CreatePipeline(ctx, &v1.CreatePipelineRequest{TenantId: f.tenant.GetId(), Pipeline: &v1.Pipeline{
		Name: in.GetName(), TopicId: f.topic.GetId(), Destinations: in2.Destinations}})
	requireCode(t, err, connect.CodeAlreadyExists)

	// Update: the existing webhook keeps its secret; a new one gets a
	// secret shown in this response.
	cur := got.GetPipeline()
	dests := append([]*v1.Destination{}, cur.GetDestinations()...)
	dests = append(dests, &v1.Destination{Name: "second", Kind: &v1.Destination_Webhook{Webhook: &v1.WebhookDestination{Url: "https://example.org/x"}}})
	up, err := c.UpdatePipeline(ctx, &v1.UpdatePipelineRequest{
		Pipeline:   &v1.Pipeline{Id: p.GetId(), Destinations: dests, Description: "ignored", Etag: cur.GetEtag()},
		UpdateMask: mask("destinations", "retry_policy.max_attempts")})
	require.NoError(t, err)
	require.Empty(t, up.GetPipeline().GetDescription())
	require.Equal(t, uint32(10), up.GetPipeline().GetRetryPolicy().GetMaxAttempts(), "cleared, then defaulted")
	require.Len(t, up.GetPipeline().GetDestinations(), 3)
	require.Empty(t, up.GetPipeline().GetDestinations()[0].GetWebhook().GetSigningSecret())
	require.True(t, strings.HasPrefix(up.GetPipeline().GetDestinations()[2].GetWebhook().GetSigningSecret(), "whsec_"))
	stored, err = b.store.WebhookSecrets(ctx, p.GetId())
	require.NoError(t, err)
	require.Len(t, stored, 2)
	for _, s := range stored {
		if s.Destination == "hook" {
			require.Equal(t, secret, s.Secret)
		}
	}

	// A stale etag is refused.
	_, err = c.UpdatePipeline(ctx, &v1.UpdatePipelineRequest{
		Pipeline: &v1.Pipeline{Id: p.GetId(), Description: "x", Etag: cur.GetEtag()}, UpdateMask: mask("description")})
	requireCode(t, err, connect.CodeAborted)
	_, err = c.UpdatePipeline(ctx, &v1.UpdatePipelineRequest{
		Pipeline: &v1.Pipeline{Id: p.GetId(), TopicId: ids.New(ids.Topic)}, UpdateMask: mask("topic_id")})
	requireViolation(t, err, "update_mask")

	// Pause and resume.
	paused, err := c.PausePipeline(ctx, &v1.PausePipelineRequest{Id: p.GetId()})
	require.NoError(t, err)
	require.True(t, paused.GetPipeline().GetPaused())
	resumed, err := c.ResumePipeline(ctx, &v1.ResumePipelineRequest{Id: p.GetId()})
	require.NoError(t, err)
	require.False(t, resumed.GetPipeline().GetPaused())

	// Rotation shows the new secret once; both secrets sign meanwhile.
	rot, err := c.RotateWebhookSecret(ctx, &v1.RotateWebhookSecretRequest{PipelineId: p.GetId(), Destination: "hook"})
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(rot.GetSigningSecret(), "whsec_"))
	require.NotEqual(t, secret, rot.GetSigningSecret())
	require.NotContains(t, rot.GetPipeline().String(), rot.GetSigningSecret())
	require.Len(t, webhookOf(rot.GetPipeline(), "hook").GetSigningSecrets(), 2)
	_, err = c.RotateWebhookSecret(ctx, &v1.RotateWebhookSecretRequest{PipelineId: p.GetId(), Destination: "mirror"})
	requireViolation(t, err, "destination")
	_, err = c.RotateWebhookSecret(ctx, &v1.RotateWebhookSecretRequest{PipelineId: p.GetId(), Destination: "hook", Overlap: durationpb.New(-time.Second)})
	requireViolation(t, err, "overlap")

	_, err = c.DeletePipeline(ctx, &v1.DeletePipelineRequest{Id: p.GetId(), Etag: cur.GetEtag()})
	requireCode(t, err, connect.CodeAborted)
	_, err = c.DeletePipeline(ctx, &v1.DeletePipelineRequest{Id: p.GetId()})
	require.NoError(t, err)
	_, err = c.GetPipeline(ctx, &v1.GetPipelineRequest{Id: p.GetId()})
	requireCode(t, err, connect.CodeNotFound)
}

func TestPipelineValidation(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	f := newPipelineFixture(t, b)
	c := f.admin.pipelines
	withURL := func(url string) *v1.Pipeline {
		p := webhookPipeline(f.topic.GetId())
		p.Destinations[0].GetWebhook().Url = url
		return p
	}
	mod := func(fn func(p *v1.Pipeline)) *v1.Pipeline {
		p := webhookPipeline(f.topic.GetId())
		fn(p)
		return p
	}
	for name, tc := range map[string]struct {
		p    *v1.Pipeline
		path string
	}{
		"bad slug":        {mod(func(p *v1.Pipeline) { p.Name = "No" }), "pipeline.name"},
		"not a url":       {withURL("not a url"), "pipeline.destinations[0].webhook.url"},
		"ftp url":         {withURL("ftp://example.com/x"), "pipeline.destinations[0].webhook.url"},
		"private ip":      {withURL("http://10.0.0.8/hook"), "pipeline.destinations[0].webhook.url"},
		"loopback":        {withURL("http://127.0.0.1:8080/hook"), "pipeline.destinations[0].webhook.url"},
		"bad cel":         {mod(func(p *v1.Pipeline) { p.Filter = &v1.Filter{Expression: "event.type =="} }), "pipeline.filter.expression"},
		"non-bool filter": {mod(func(p *v1.Pipeline) { p.Filter = &v1.Filter{Expression: `"x"`} }), "pipeline.filter.expression"},
		"bad transform":   {mod(func(p *v1.Pipeline) { p.Transform = &v1.Transform{Expression: "nope("} }), "pipeline.transform.expression"},
		"unknown enum":    {mod(func(p *v1.Pipeline) { p.Ordering = v1.OrderingMode(9) }), "pipeline.ordering"},
		"attempts":        {mod(func(p *v1.Pipeline) { p.RetryPolicy = &v1.RetryPolicy{MaxAttempts: 1000} }), "pipeline.retry_policy.max_attempts"},
		"no destinations": {mod(func(p *v1.Pipeline) { p.Destinations = nil }), "pipeline"},
		"unknown topic":   {mod(func(p *v1.Pipeline) { p.TopicId = ids.New(ids.Topic) }), "pipeline.topic_id"},
		"bad secret":      {mod(func(p *v1.Pipeline) { p.Destinations[0].GetWebhook().SigningSecret = "secret" }), "pipeline.destinations[0].webhook.signing_secret"},
	} {
		_, err := c.CreatePipeline(ctx, &v1.CreatePipelineRequest{TenantId: f.tenant.GetId(), Pipeline: tc.p})
		require.Error(t, err, name)
		requireViolation(t, err, tc.path)
	}

	// The CEL message of the compiler reaches the caller.
	_, err := c.CreatePipeline(ctx, &v1.CreatePipelineRequest{TenantId: f.tenant.GetId(),
		Pipeline: mod(func(p *v1.Pipeline) { p.Filter = &v1.Filter{Expression: "nosuchvar > 1"} })})
	require.Contains(t, err.Error(), "nosuchvar")

	// Updates are checked the same way.
	p := b.pipeline(t, f.tenant.GetId(), f.topic.GetId())
	bad := proto.Clone(p).(*v1.Pipeline)
	bad.Destinations[0].GetWebhook().Url = "http://192.168.1.1/x"
	_, err = c.UpdatePipeline(ctx, &v1.UpdatePipelineRequest{Pipeline: bad, UpdateMask: mask("destinations")})
	requireViolation(t, err, "pipeline.destinations[0].webhook.url")
	_, err = c.UpdatePipeline(ctx, &v1.UpdatePipelineRequest{
		Pipeline: &v1.Pipeline{Id: p.GetId(), Filter: &v1.Filter{Expression: "1 +"}}, UpdateMask: mask("filter")})
	requireViolation(t, err, "pipeline.filter.expression")
}
