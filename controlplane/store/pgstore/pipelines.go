package pgstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/switchyard-dev/switchyard/controlplane/store"
	"github.com/switchyard-dev/switchyard/internal/ids"
	"github.com/switchyard-dev/switchyard/internal/kafkaname"
	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
)

const pipelineColumns = `id, tenant_id, topic_id, name, paused, spec, version, create_time, update_time`

// querier is what pipeline reads need: the pool or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func scanPipeline(row pgx.Row) (*v1.Pipeline, error) {
	var (
		id, tenantID, topicID, name string
		paused                      bool
		spec                        []byte
		version                     int64
		created, upd                time.Time
	)
	if err := row.Scan(&id, &tenantID, &topicID, &name, &paused, &spec, &version, &created, &upd); err != nil {
		return nil, err
	}
	p := &v1.Pipeline{}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(spec, p); err != nil {
		return nil, fmt.Errorf("decode pipeline %s spec: %w", id, err)
	}
	p.Id, p.TenantId, p.TopicId, p.Name, p.Paused = id, tenantID, topicID, name, paused
	p.ConsumerGroup = kafkaname.ConsumerGroup(tenantID, id)
	p.DeadLetterTopic = kafkaname.DeadLetterTopic(tenantID, id)
	p.Etag = etag(version)
	p.CreateTime = ts(&created)
	p.UpdateTime = ts(&upd)
	return p, nil
}

// pipelineSpec returns the JSON of p's configuration: the fields kept in
// the spec column, without secrets, with enum defaults filled in.
func pipelineSpec(p *v1.Pipeline) ([]byte, error) {
	spec := &v1.Pipeline{
		Description:      p.GetDescription(),
		Filter:           p.GetFilter(),
		Transform:        p.GetTransform(),
		RetryPolicy:      p.GetRetryPolicy(),
		DeadLetterPolicy: p.GetDeadLetterPolicy(),
		Ordering:         p.GetOrdering(),
	}
	if spec.Ordering == v1.OrderingMode_ORDERING_MODE_UNSPECIFIED {
		spec.Ordering = v1.OrderingMode_ORDERING_MODE_NONE
	}
	if rp := spec.RetryPolicy; rp != nil && rp.GetJitter() == v1.Jitter_JITTER_UNSPECIFIED {
		rp = proto.CloneOf(rp)
		rp.Jitter = v1.Jitter_JITTER_FULL
		spec.RetryPolicy = rp
	}
	for _, d := range p.GetDestinations() {
		d = proto.CloneOf(d)
		if wh := d.GetWebhook(); wh != nil {
			wh.SigningSecret = ""
			wh.SigningSecrets = nil
		}
		spec.Destinations = append(spec.Destinations, d)
	}
	b, err := protojson.Marshal(spec)
	if err != nil {
		return nil, fmt.Errorf("encode pipeline spec: %w", err)
	}
	return b, nil
}

// webhookNames returns the names of p's webhook destinations.
func webhookNames(p *v1.Pipeline) []string {
	names := []string{}
	for _, d := range p.GetDestinations() {
		if d.GetWebhook() != nil {
			names = append(names, d.GetName())
		}
	}
	return names
}

// checkSecrets verifies that each secret names a distinct webhook
// destination of p and carries a value.
func checkSecrets(p *v1.Pipeline, secrets []store.WebhookSecret) error {
	hooks := map[string]bool{}
	for _, n := range webhookNames(p) {
		hooks[n] = true
	}
	seen := map[string]bool{}
	for _, s := range secrets {
		if !hooks[s.Destination] {
			return fmt.Errorf("signing secret for %q: the pipeline has no webhook destination of that name", s.Destination)
		}
		if seen[s.Destination] {
			return fmt.Errorf("signing secret for %q given twice", s.Destination)
		}
		if s.Secret == "" {
			return fmt.Errorf("signing secret for %q is empty", s.Destination)
		}
		seen[s.Destination] = true
	}
	return nil
}

// insertSecret stores one webhook secret of a pipeline.
func insertSecret(ctx context.Context, tx pgx.Tx, pipelineID string, s store.WebhookSecret) error {
	id := s.ID
	if id == "" {
		id = ids.New(ids.Secret)
	}
	var created, expires *time.Time
	if !s.CreateTime.IsZero() {
		created = &s.CreateTime
	}
	if !s.ExpireTime.IsZero() {
		expires = &s.ExpireTime
	}
	_, err := tx.Exec(ctx, `INSERT INTO webhook_secrets (id, pipeline_id, destination, secret, create_time, expire_time)
		VALUES ($1, $2, $3, $4, coalesce($5, now()), $6)`, id, pipelineID, s.Destination, s.Secret, created, expires)
	if err != nil {
		return translate(err, "store signing secret of "+s.Destination, constraintErrors{
			"webhook_secrets_pkey": func() error {
				return fmt.Errorf("signing secret %s: %w", id, store.ErrAlreadyExists)
			},
		})
	}
	return nil
}

// requireSecrets fails unless every webhook destination of p has an
// unexpired secret.
func requireSecrets(ctx context.Context, tx pgx.Tx, p *v1.Pipeline) error {
	rows, err := tx.Query(ctx, `SELECT d FROM unnest($2::text[]) AS d
		WHERE NOT EXISTS (SELECT 1 FROM webhook_secrets s WHERE s.pipeline_id = $1 AND s.destination = d
			AND (s.expire_time IS NULL OR s.expire_time > now()))`, p.GetId(), webhookNames(p))
	if err != nil {
		return fmt.Errorf("check signing secrets: %w", err)
	}
	missing, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("check signing secrets: %w", err)
	}
	if len(missing) > 0 {
		return fmt.Errorf("webhook destination %q of pipeline %s has no signing secret", missing[0], p.GetId())
	}
	return nil
}

// loadSecrets returns the unexpired secrets of the given pipelines, newest
// first per destination.
func loadSecrets(ctx context.Context, q querier, pipelineIDs []string) ([]store.WebhookSecret, error) {
	rows, err := q.Query(ctx, `SELECT id, pipeline_id, destination, secret, create_time, expire_time
		FROM webhook_secrets
		WHERE pipeline_id = ANY($1) AND (expire_time IS NULL OR expire_time > now())
		ORDER BY pipeline_id, destination, create_time DESC, id DESC`, pipelineIDs)
	if err != nil {
		return nil, fmt.Errorf("read signing secrets: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.WebhookSecret, error) {
		var s store.WebhookSecret
		var expires *time.Time
		if err := r.Scan(&s.ID, &s.PipelineID, &s.Destination, &s.Secret, &s.CreateTime, &expires); err != nil {
			return s, err
		}
		if expires != nil {
			s.ExpireTime = *expires
		}
		return s, nil
	})
	if err != nil {
		return nil, fmt.Errorf("read signing secrets: %w", err)
	}
	return out, nil
}

// attachSecrets fills signing_secrets of the pipelines' webhook
// destinations from their stored secrets.
func attachSecrets(ctx context.Context, q querier, ps ...*v1.Pipeline) error {
	if len(ps) == 0 {
		return nil
	}
	idx := make([]string, len(ps))
	for i, p := range ps {
		idx[i] = p.Id
	}
	secrets, err := loadSecrets(ctx, q, idx)
	if err != nil {
		return err
	}
	type key struct{ pipeline, dest string }
	hooks := map[key]*v1.WebhookDestination{}
	for _, p := range ps {
		for _, d := range p.Destinations {
			if wh := d.GetWebhook(); wh != nil {
				hooks[key{p.Id, d.Name}] = wh
			}
		}
	}
	for _, s := range secrets {
		wh := hooks[key{s.PipelineID, s.Destination}]
		if wh == nil {
			continue
		}
		info := &v1.SigningSecretInfo{Id: s.ID, Hint: hint(s.Secret), CreateTime: ts(&s.CreateTime)}
		if !s.ExpireTime.IsZero() {
			info.ExpireTime = ts(&s.ExpireTime)
		}
		wh.SigningSecrets = append(wh.SigningSecrets, info)
	}
	return nil
}

// hint is the last four characters of a secret.
func hint(secret string) string {
	if len(secret) <= 4 {
		return secret
	}
	return secret[len(secret)-4:]
}

func pipelineErrors(op string, p *v1.Pipeline) constraintErrors {
	return constraintErrors{
		"pipelines_tenant_id_name_key": func() error {
			return fmt.Errorf("%s: pipeline named %q in tenant %s: %w", op, p.GetName(), p.GetTenantId(), store.ErrAlreadyExists)
		},
		"pipelines_tenant_id_fkey": func() error {
			return fmt.Errorf("%s: tenant %s: %w", op, p.GetTenantId(), store.ErrNotFound)
		},
		"pipelines_topic_id_fkey": func() error {
			return fmt.Errorf("%s: topic %s in tenant %s: %w", op, p.GetTopicId(), p.GetTenantId(), store.ErrNotFound)
		},
	}
}

// CreatePipeline implements store.Store. The pipeline's tenant is
// p.TenantId, and its topic must belong to that tenant.
func (s *Store) CreatePipeline(ctx context.Context, actor store.Actor, p *v1.Pipeline, secrets []store.WebhookSecret) (*v1.Pipeline, error) {
	if err := checkSecrets(p, secrets); err != nil {
		return nil, fmt.Errorf("create pipeline: %w", err)
	}
	spec, err := pipelineSpec(p)
	if err != nil {
		return nil, fmt.Errorf("create pipeline: %w", err)
	}
	id, err := objectID(ids.Pipeline, p.GetId())
	if err != nil {
		return nil, fmt.Errorf("create: %w", err)
	}
	var out *v1.Pipeline
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		out, err = scanPipeline(tx.QueryRow(ctx, `INSERT INTO pipelines (id, tenant_id, topic_id, name, paused, spec)
			VALUES ($1, $2, $3, $4, $5, $6) RETURNING `+pipelineColumns,
			id, p.GetTenantId(), p.GetTopicId(), p.GetName(), p.GetPaused(), spec))
		if err != nil {
			return translate(err, "create pipeline", pipelineErrors("create pipeline", p))
		}
		for _, sec := range secrets {
			if err := insertSecret(ctx, tx, id, sec); err != nil {
				return fmt.Errorf("create pipeline: %w", err)
			}
		}
		if err := requireSecrets(ctx, tx, out); err != nil {
			return fmt.Errorf("create pipeline: %w", err)
		}
		if err := attachSecrets(ctx, tx, out); err != nil {
			return err
		}
		return record(ctx, tx, change{actor: actor, tenantID: out.TenantId, action: "pipeline.create",
			resourceType: "pipeline", resourceID: id,
			detail: map[string]any{"name": out.Name, "topic_id": out.TopicId}})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// GetPipeline implements store.Store.
func (s *Store) GetPipeline(ctx context.Context, id string) (*v1.Pipeline, error) {
	p, err := scanPipeline(s.pool.QueryRow(ctx, "SELECT "+pipelineColumns+" FROM pipelines WHERE id = $1", id))
	if err != nil {
		return nil, noRows(err, "pipeline", id)
	}
	if err := attachSecrets(ctx, s.pool, p); err != nil {
		return nil, err
	}
	return p, nil
}

// ListPipelines implements store.Store.
func (s *Store) ListPipelines(ctx context.Context, p store.ListParams) ([]*v1.Pipeline, error) {
	if err := checkList("pipelines", p, true); err != nil {
		return nil, err
	}
	out, err := collect(ctx, s.pool, "pipelines", "SELECT "+pipelineColumns+` FROM pipelines
		WHERE tenant_id = $1 AND ($2 = '' OR topic_id = $2) AND id > $3
		ORDER BY id LIMIT $4`, scanPipeline, p.TenantID, p.TopicID, p.AfterID, p.Limit)
	if err != nil {
		return nil, err
	}
	if err := attachSecrets(ctx, s.pool, out...); err != nil {
		return nil, err
	}
	return out, nil
}

// UpdatePipeline implements store.Store. Mutable fields: description,
// filter, transform, destinations, retry_policy, dead_letter_policy,
// ordering. Every webhook destination must end with a signing secret.
func (s *Store) UpdatePipeline(ctx context.Context, actor store.Actor, p *v1.Pipeline, expectVersion int64, newSecrets []store.WebhookSecret) (*v1.Pipeline, error) {
	if err := checkSecrets(p, newSecrets); err != nil {
		return nil, fmt.Errorf("update pipeline %s: %w", p.GetId(), err)
	}
	spec, err := pipelineSpec(p)
	if err != nil {
		return nil, fmt.Errorf("update pipeline %s: %w", p.GetId(), err)
	}
	var out *v1.Pipeline
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		out, err = scanPipeline(tx.QueryRow(ctx, `UPDATE pipelines SET spec = $3, version = version + 1, update_time = now()
			WHERE id = $1 AND version = $2 RETURNING `+pipelineColumns, p.GetId(), expectVersion, spec))
		if errors.Is(err, pgx.ErrNoRows) {
			return missingOrStale(ctx, tx, "pipelines", "pipeline", p.GetId(), expectVersion)
		}
		if err != nil {
			return translate(err, "update pipeline", pipelineErrors("update pipeline", p))
		}
		if _, err := tx.Exec(ctx, `DELETE FROM webhook_secrets WHERE pipeline_id = $1 AND NOT destination = ANY($2)`,
			out.Id, webhookNames(out)); err != nil {
			return fmt.Errorf("update pipeline %s: drop secrets of removed destinations: %w", out.Id, err)
		}
		for _, sec := range newSecrets {
			if _, err := tx.Exec(ctx, `DELETE FROM webhook_secrets WHERE pipeline_id = $1 AND destination = $2`,
				out.Id, sec.Destination); err != nil {
				return fmt.Errorf("update pipeline %s: replace secret of %q: %w", out.Id, sec.Destination, err)
			}
			if err := insertSecret(ctx, tx, out.Id, sec); err != nil {
				return fmt.Errorf("update pipeline %s: %w", out.Id, err)
			}
		}
		if err := requireSecrets(ctx, tx, out); err != nil {
			return fmt.Errorf("update pipeline: %w", err)
		}
		if err := attachSecrets(ctx, tx, out); err != nil {
			return err
		}
		replaced := make([]string, 0, len(newSecrets))
		for _, sec := range newSecrets {
			replaced = append(replaced, sec.Destination)
		}
		return record(ctx, tx, change{actor: actor, tenantID: out.TenantId, action: "pipeline.update",
			resourceType: "pipeline", resourceID: out.Id,
			detail: map[string]any{"name": out.Name, "new_secrets": replaced}})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DeletePipeline implements store.Store. The pipeline's secrets go with it.
func (s *Store) DeletePipeline(ctx context.Context, actor store.Actor, p store.DeleteParams) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		if err := lockForDelete(ctx, tx, "pipelines", "pipeline", p.ID, p.Version); err != nil {
			return err
		}
		var name, tenantID string
		if err := tx.QueryRow(ctx, "DELETE FROM pipelines WHERE id = $1 RETURNING name, tenant_id", p.ID).
			Scan(&name, &tenantID); err != nil {
			return translate(err, "delete pipeline "+p.ID, nil)
		}
		return record(ctx, tx, change{actor: actor, tenantID: tenantID, action: "pipeline.delete",
			resourceType: "pipeline", resourceID: p.ID, detail: map[string]any{"name": name}})
	})
}

// SetPipelinePaused implements store.Store.
func (s *Store) SetPipelinePaused(ctx context.Context, actor store.Actor, id string, paused bool) (*v1.Pipeline, error) {
	var out *v1.Pipeline
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		out, err = scanPipeline(tx.QueryRow(ctx, `UPDATE pipelines SET paused = $2, version = version + 1, update_time = now()
			WHERE id = $1 AND paused <> $2 RETURNING `+pipelineColumns, id, paused))
		if errors.Is(err, pgx.ErrNoRows) {
			out, err = scanPipeline(tx.QueryRow(ctx, "SELECT "+pipelineColumns+" FROM pipelines WHERE id = $1", id))
			if err != nil {
				return noRows(err, "pipeline", id)
			}
			return attachSecrets(ctx, tx, out)
		}
		if err != nil {
			return fmt.Errorf("set pipeline %s paused: %w", id, err)
		}
		if err := attachSecrets(ctx, tx, out); err != nil {
			return err
		}
		action := "pipeline.resume"
		if paused {
			action = "pipeline.pause"
		}
		return record(ctx, tx, change{actor: actor, tenantID: out.TenantId, action: action,
			resourceType: "pipeline", resourceID: out.Id, detail: map[string]any{"name": out.Name}})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// RotateWebhookSecret implements store.Store. A zero secret.CreateTime means
// the database's current time; an empty secret.ID gets a fresh one. The
// pipeline's version increases.
func (s *Store) RotateWebhookSecret(ctx context.Context, actor store.Actor, secret store.WebhookSecret, overlap time.Duration) (*v1.Pipeline, error) {
	if secret.Secret == "" {
		return nil, fmt.Errorf("rotate signing secret of %q: empty secret", secret.Destination)
	}
	if overlap < 0 {
		return nil, fmt.Errorf("rotate signing secret of %q: negative overlap %v", secret.Destination, overlap)
	}
	pid := secret.PipelineID
	var out *v1.Pipeline
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		out, err = scanPipeline(tx.QueryRow(ctx, "SELECT "+pipelineColumns+" FROM pipelines WHERE id = $1 FOR UPDATE", pid))
		if err != nil {
			return noRows(err, "pipeline", pid)
		}
		if err := checkSecrets(out, []store.WebhookSecret{secret}); err != nil {
			return fmt.Errorf("rotate signing secret of pipeline %s: %v: %w", pid, err, store.ErrNotFound)
		}
		if secret.CreateTime.IsZero() {
			if err := tx.QueryRow(ctx, "SELECT now()").Scan(&secret.CreateTime); err != nil {
				return fmt.Errorf("read clock: %w", err)
			}
		}
		expire := secret.CreateTime.Add(overlap)
		if _, err := tx.Exec(ctx, `UPDATE webhook_secrets SET expire_time = $3
			WHERE pipeline_id = $1 AND destination = $2 AND (expire_time IS NULL OR expire_time > $3)`,
			pid, secret.Destination, expire); err != nil {
			return fmt.Errorf("rotate signing secret of pipeline %s: expire old secrets: %w", pid, err)
		}
		secret.ExpireTime = time.Time{}
		if err := insertSecret(ctx, tx, pid, secret); err != nil {
			return fmt.Errorf("rotate signing secret of pipeline %s: %w", pid, err)
		}
		out, err = scanPipeline(tx.QueryRow(ctx, `UPDATE pipelines SET version = version + 1, update_time = now()
			WHERE id = $1 RETURNING `+pipelineColumns, pid))
		if err != nil {
			return fmt.Errorf("rotate signing secret of pipeline %s: %w", pid, err)
		}
		if err := attachSecrets(ctx, tx, out); err != nil {
			return err
		}
		return record(ctx, tx, change{actor: actor, tenantID: out.TenantId, action: "pipeline.rotate_secret",
			resourceType: "pipeline", resourceID: pid,
			detail: map[string]any{"name": out.Name, "destination": secret.Destination, "overlap_seconds": overlap.Seconds()}})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// WebhookSecrets implements store.Store.
func (s *Store) WebhookSecrets(ctx context.Context, pipelineID string) ([]store.WebhookSecret, error) {
	var exists bool
	if err := s.pool.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pipelines WHERE id = $1)", pipelineID).Scan(&exists); err != nil {
		return nil, fmt.Errorf("read pipeline %s: %w", pipelineID, err)
	}
	if !exists {
		return nil, notFound("pipeline", pipelineID)
	}
	return loadSecrets(ctx, s.pool, []string{pipelineID})
}
