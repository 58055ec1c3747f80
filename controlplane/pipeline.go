package controlplane

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/switchyard-dev/switchyard/controlplane/store"
	"github.com/switchyard-dev/switchyard/internal/celenv"
	"github.com/switchyard-dev/switchyard/internal/ids"
	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
)

// Pipeline defaults.
const (
	defaultMaxAttempts        = 10
	defaultMaxAge             = 24 * time.Hour
	defaultInitialBackoff     = 5 * time.Second
	defaultMaxBackoff         = 2 * time.Hour
	defaultMultiplier         = 2
	defaultNonRetryableStatus = 410
	defaultDeadLetterRetain   = 14 * 24 * time.Hour
	defaultWebhookTimeout     = 10 * time.Second
	defaultMaxInFlight        = 16
	defaultRotationOverlap    = 24 * time.Hour
	// signingSecretBytes is the number of random bytes of a generated
	// webhook signing secret.
	signingSecretBytes = 32
)

// pipelineService implements switchyardv1connect.PipelineServiceHandler.
type pipelineService struct{ *Server }

// pipelines describes pipelines to the shared plumbing. update stores the
// merged pipeline with newSecrets, which the caller fills while preparing.
func (s *Server) pipelines(newSecrets *[]store.WebhookSecret) *resource[*v1.Pipeline] {
	return &resource[*v1.Pipeline]{
		kind:     "pipeline",
		field:    "pipeline",
		tenantOf: (*v1.Pipeline).GetTenantId,
		mutable:  []string{"description", "filter", "transform", "destinations", "retry_policy", "dead_letter_policy", "ordering"},
		get:      s.store.GetPipeline,
		update: func(ctx context.Context, a store.Actor, p *v1.Pipeline, version int64) (*v1.Pipeline, error) {
			var secrets []store.WebhookSecret
			if newSecrets != nil {
				secrets = *newSecrets
			}
			return s.store.UpdatePipeline(ctx, a, p, version, secrets)
		},
		delete: s.store.DeletePipeline,
	}
}

// CreatePipeline creates a pipeline on a topic of the same tenant. Webhook
// destinations without a signing secret get a generated one; the response
// shows each secret, once.
func (s *pipelineService) CreatePipeline(ctx context.Context, req *v1.CreatePipelineRequest) (*v1.CreatePipelineResponse, error) {
	if err := s.requireTenant(ctx, req.GetTenantId()); err != nil {
		return nil, err
	}
	p := proto.Clone(req.GetPipeline()).(*v1.Pipeline)
	p.Id, p.ConsumerGroup, p.DeadLetterTopic, p.CreateTime, p.UpdateTime, p.Etag = "", "", "", nil, nil, ""
	p.TenantId = req.GetTenantId()
	var vs violations
	topic, err := s.store.GetTopic(ctx, p.GetTopicId())
	switch {
	case errors.Is(err, store.ErrNotFound) || (err == nil && topic.GetTenantId() != p.GetTenantId()):
		vs.add(fieldPath(req.ProtoReflect().Descriptor(), "pipeline", "topic_id"),
			"pipeline.topic_id.exists", fmt.Sprintf("topic %q not found in tenant %s", p.GetTopicId(), p.GetTenantId()))
	case err != nil:
		return nil, s.storeError(ctx, err, "topic", p.GetTopicId())
	}
	applyPipelineDefaults(p)
	vs = append(vs, s.checkPipeline(req, p)...)
	if err := vs.err(); err != nil {
		return nil, err
	}
	secrets, err := takeSecrets(nil, p)
	if err != nil {
		return nil, s.internalError(ctx, "generating signing secrets", err)
	}
	created, err := s.store.CreatePipeline(ctx, principalFrom(ctx).actor(), p, secrets)
	if err != nil {
		return nil, s.storeError(ctx, err, "pipeline", "")
	}
	showSecrets(created, secrets)
	return &v1.CreatePipelineResponse{Pipeline: created}, nil
}

// GetPipeline returns a pipeline of the caller's tenant, without secrets.
func (s *pipelineService) GetPipeline(ctx context.Context, req *v1.GetPipelineRequest) (*v1.GetPipelineResponse, error) {
	p, err := s.pipelines(nil).fetch(ctx, s.Server, req.GetId())
	if err != nil {
		return nil, err
	}
	return &v1.GetPipelineResponse{Pipeline: hideSecrets(p)}, nil
}

// ListPipelines lists a tenant's pipelines, optionally of one topic.
func (s *pipelineService) ListPipelines(ctx context.Context, req *v1.ListPipelinesRequest) (*v1.ListPipelinesResponse, error) {
	if err := s.requireTenant(ctx, req.GetTenantId()); err != nil {
		return nil, err
	}
	q := listQuery{kind: ids.Pipeline, tenantID: req.GetTenantId(), topicID: req.GetTopicId()}
	items, next, err := listPage(ctx, s.Server, req, q, s.store.ListPipelines)
	if err != nil {
		return nil, err
	}
	for _, p := range items {
		hideSecrets(p)
	}
	return &v1.ListPipelinesResponse{Pipelines: items, NextPageToken: next}, nil
}

// UpdatePipeline changes a pipeline. A webhook destination keeps its
// secrets when it keeps its name and no signing_secret is given; a new
// webhook destination without one gets a generated secret, which the
// response shows, once.
func (s *pipelineService) UpdatePipeline(ctx context.Context, req *v1.UpdatePipelineRequest) (*v1.UpdatePipelineResponse, error) {
	var secrets []store.WebhookSecret
	p, err := updateObject(ctx, s.Server, s.pipelines(&secrets), req, req.GetPipeline(), req.GetUpdateMask(),
		func(current, merged *v1.Pipeline) error {
			applyPipelineDefaults(merged)
			if err := violations(s.checkPipeline(req, merged)).err(); err != nil {
				return err
			}
			var err error
			secrets, err = takeSecrets(current, merged)
			if err != nil {
				return s.internalError(ctx, "generating signing secrets", err)
			}
			return nil
		})
	if err != nil {
		return nil, err
	}
	showSecrets(hideSecrets(p), secrets)
	return &v1.UpdatePipelineResponse{Pipeline: p}, nil
}

// DeletePipeline deletes a pipeline.
func (s *pipelineService) DeletePipeline(ctx context.Context, req *v1.DeletePipelineRequest) (*v1.DeletePipelineResponse, error) {
	if err := deleteObject(ctx, s.Server, s.pipelines(nil), req.GetId(), req.GetEtag(), false); err != nil {
		return nil, err
	}
	return &v1.DeletePipelineResponse{}, nil
}

// PausePipeline stops a pipeline's delivery.
func (s *pipelineService) PausePipeline(ctx context.Context, req *v1.PausePipelineRequest) (*v1.PausePipelineResponse, error) {
	p, err := s.setPaused(ctx, req.GetId(), true)
	if err != nil {
		return nil, err
	}
	return &v1.PausePipelineResponse{Pipeline: p}, nil
}

// ResumePipeline restarts a pipeline's delivery.
func (s *pipelineService) ResumePipeline(ctx context.Context, req *v1.ResumePipelineRequest) (*v1.ResumePipelineResponse, error) {
	p, err := s.setPaused(ctx, req.GetId(), false)
	if err != nil {
		return nil, err
	}
	return &v1.ResumePipelineResponse{Pipeline: p}, nil
}

// setPaused sets the paused flag of a pipeline of the caller's tenant.
func (s *pipelineService) setPaused(ctx context.Context, id string, paused bool) (*v1.Pipeline, error) {
	if _, err := s.pipelines(nil).fetch(ctx, s.Server, id); err != nil {
		return nil, err
	}
	p, err := s.store.SetPipelinePaused(ctx, principalFrom(ctx).actor(), id, paused)
	if err != nil {
		return nil, s.storeError(ctx, err, "pipeline", id)
	}
	return hideSecrets(p), nil
}

// RotateWebhookSecret gives a webhook destination a new signing secret,
// shown once in the response.
func (s *pipelineService) RotateWebhookSecret(ctx context.Context, req *v1.RotateWebhookSecretRequest) (*v1.RotateWebhookSecretResponse, error) {
	current, err := s.pipelines(nil).fetch(ctx, s.Server, req.GetPipelineId())
	if err != nil {
		return nil, err
	}
	if webhookOf(current, req.GetDestination()) == nil {
		var vs violations
		vs.add(fieldPath(req.ProtoReflect().Descriptor(), "destination"), "destination.webhook_exists",
			fmt.Sprintf("the pipeline has no webhook destination named %q", req.GetDestination()))
		return nil, vs.err()
	}
	secret := req.GetSigningSecret()
	if secret == "" {
		if secret, err = newSigningSecret(); err != nil {
			return nil, s.internalError(ctx, "generating a signing secret", err)
		}
	}
	overlap := defaultRotationOverlap
	if req.GetOverlap() != nil {
		overlap = req.GetOverlap().AsDuration()
	}
	ws := store.WebhookSecret{
		ID:          ids.New(ids.Secret),
		PipelineID:  current.GetId(),
		Destination: req.GetDestination(),
		Secret:      secret,
		CreateTime:  time.Now().UTC(),
	}
	p, err := s.store.RotateWebhookSecret(ctx, principalFrom(ctx).actor(), ws, overlap)
	if err != nil {
		return nil, s.storeError(ctx, err, "pipeline", current.GetId())
	}
	return &v1.RotateWebhookSecretResponse{SigningSecret: secret, Pipeline: hideSecrets(p)}, nil
}

// applyPipelineDefaults makes ordering, retry, dead-letter and per
// destination settings explicit.
func applyPipelineDefaults(p *v1.Pipeline) {
	if p.Ordering == v1.OrderingMode_ORDERING_MODE_UNSPECIFIED {
		p.Ordering = v1.OrderingMode_ORDERING_MODE_NONE
	}
	if p.RetryPolicy == nil {
		p.RetryPolicy = &v1.RetryPolicy{}
	}
	rp := p.RetryPolicy
	if rp.MaxAttempts == 0 {
		rp.MaxAttempts = defaultMaxAttempts
	}
	if rp.MaxAge == nil {
		rp.MaxAge = durationpb.New(defaultMaxAge)
	}
	if rp.InitialBackoff == nil {
		rp.InitialBackoff = durationpb.New(min(defaultInitialBackoff, maxBackoffOf(rp)))
	}
	if rp.MaxBackoff == nil {
		rp.MaxBackoff = durationpb.New(max(defaultMaxBackoff, rp.InitialBackoff.AsDuration()))
	}
	if rp.Multiplier == 0 {
		rp.Multiplier = defaultMultiplier
	}
	if rp.Jitter == v1.Jitter_JITTER_UNSPECIFIED {
		rp.Jitter = v1.Jitter_JITTER_FULL
	}
	if len(rp.NonRetryableStatusCodes) == 0 {
		rp.NonRetryableStatusCodes = []uint32{defaultNonRetryableStatus}
	}
	if p.DeadLetterPolicy == nil {
		p.DeadLetterPolicy = &v1.DeadLetterPolicy{}
	}
	if p.DeadLetterPolicy.Retention == nil {
		p.DeadLetterPolicy.Retention = durationpb.New(defaultDeadLetterRetain)
	}
	for _, d := range p.Destinations {
		if d.MaxInFlight == 0 {
			d.MaxInFlight = defaultMaxInFlight
		}
		if wh := d.GetWebhook(); wh != nil && wh.Timeout == nil {
			wh.Timeout = durationpb.New(defaultWebhookTimeout)
		}
	}
}

// maxBackoffOf returns the retry policy's max backoff, or the default.
func maxBackoffOf(rp *v1.RetryPolicy) time.Duration {
	if rp.MaxBackoff != nil {
		return rp.MaxBackoff.AsDuration()
	}
	return defaultMaxBackoff
}

// checkPipeline makes the checks protovalidate cannot: filter and transform
// expressions must compile, webhook URLs must be allowed by the policy.
func (s *Server) checkPipeline(req proto.Message, p *v1.Pipeline) violations {
	md := req.ProtoReflect().Descriptor()
	var vs violations
	if expr := p.GetFilter().GetExpression(); expr != "" {
		if _, err := s.cel.CompileFilter(expr); err != nil {
			vs.add(fieldPath(md, "pipeline", "filter", "expression"), "filter.expression.compiles", compileMessage(err))
		}
	}
	if p.GetTransform() != nil {
		if _, err := s.cel.CompileTransform(p.GetTransform().GetExpression()); err != nil {
			vs.add(fieldPath(md, "pipeline", "transform", "expression"), "transform.expression.compiles", compileMessage(err))
		}
	}
	for i, d := range p.GetDestinations() {
		if wh := d.GetWebhook(); wh != nil {
			if err := s.webhooks.CheckURL(wh.GetUrl()); err != nil {
				vs.add(fieldPath(md, "pipeline", "destinations", i, "webhook", "url"), "webhook.url.allowed", err.Error())
			}
		}
	}
	return vs
}

// compileMessage is the message of an expression that does not compile.
func compileMessage(err error) string {
	if ce := new(celenv.CompileError); errors.As(err, &ce) {
		return ce.Message
	}
	return err.Error()
}

// takeSecrets returns the signing secrets to store for p's webhook
// destinations and clears the secrets from p: a given signing_secret, or a
// generated one for a destination that is new (not a webhook of that name
// in current, which is nil on create). Output-only secret infos are dropped.
func takeSecrets(current, p *v1.Pipeline) ([]store.WebhookSecret, error) {
	var out []store.WebhookSecret
	now := time.Now().UTC()
	for _, d := range p.GetDestinations() {
		wh := d.GetWebhook()
		if wh == nil {
			continue
		}
		secret := wh.GetSigningSecret()
		if secret == "" && (current == nil || webhookOf(current, d.GetName()) == nil) {
			var err error
			if secret, err = newSigningSecret(); err != nil {
				return nil, err
			}
		}
		wh.SigningSecret, wh.SigningSecrets = "", nil
		if secret != "" {
			out = append(out, store.WebhookSecret{
				ID:          ids.New(ids.Secret),
				PipelineID:  current.GetId(),
				Destination: d.GetName(),
				Secret:      secret,
				CreateTime:  now,
			})
		}
	}
	return out, nil
}

// showSecrets puts the values of secrets into p's webhook destinations.
func showSecrets(p *v1.Pipeline, secrets []store.WebhookSecret) {
	for _, sec := range secrets {
		if wh := webhookOf(p, sec.Destination); wh != nil {
			wh.SigningSecret = sec.Secret
		}
	}
}

// hideSecrets clears every signing secret value of p and returns p.
func hideSecrets(p *v1.Pipeline) *v1.Pipeline {
	for _, d := range p.GetDestinations() {
		if wh := d.GetWebhook(); wh != nil {
			wh.SigningSecret = ""
		}
	}
	return p
}

// webhookOf returns the webhook destination of p named name, or nil.
func webhookOf(p *v1.Pipeline, name string) *v1.WebhookDestination {
	for _, d := range p.GetDestinations() {
		if d.GetName() == name {
			return d.GetWebhook()
		}
	}
	return nil
}

// newSigningSecret returns a new Standard Webhooks secret: "whsec_" and the
// standard base64 of 32 random bytes.
func newSigningSecret() (string, error) {
	var b [signingSecretBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("reading random bytes: %w", err)
	}
	return "whsec_" + base64.StdEncoding.EncodeToString(b[:]), nil
}
