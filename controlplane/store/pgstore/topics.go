package pgstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/switchyard-dev/switchyard/controlplane/store"
	"github.com/switchyard-dev/switchyard/internal/ids"
	"github.com/switchyard-dev/switchyard/internal/kafkaname"
	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
)

// defaultPartitions is the partition count of a topic created with none.
const defaultPartitions = 8

const topicColumns = `id, tenant_id, name, description, coalesce(region_id, ''), partitions,
	retention_ns, version, create_time, update_time`

func scanTopic(row pgx.Row) (*v1.Topic, error) {
	var (
		t            v1.Topic
		partitions   int32
		retention    *int64
		version      int64
		created, upd time.Time
	)
	if err := row.Scan(&t.Id, &t.TenantId, &t.Name, &t.Description, &t.RegionId, &partitions,
		&retention, &version, &created, &upd); err != nil {
		return nil, err
	}
	t.Partitions = uint32(partitions)
	if retention != nil {
		t.Retention = durationpb.New(time.Duration(*retention))
	}
	t.KafkaTopic = kafkaname.TenantTopic(t.TenantId, t.Id)
	t.Etag = etag(version)
	t.CreateTime = ts(&created)
	t.UpdateTime = ts(&upd)
	return &t, nil
}

func retentionNanos(t *v1.Topic) *int64 {
	if t.GetRetention() == nil {
		return nil
	}
	n := t.GetRetention().AsDuration().Nanoseconds()
	return &n
}

func topicErrors(op string, t *v1.Topic) constraintErrors {
	return constraintErrors{
		"topics_tenant_id_name_key": func() error {
			return fmt.Errorf("%s: topic named %q in tenant %s: %w", op, t.GetName(), t.GetTenantId(), store.ErrAlreadyExists)
		},
		"topics_tenant_id_fkey": func() error {
			return fmt.Errorf("%s: tenant %s: %w", op, t.GetTenantId(), store.ErrNotFound)
		},
		"topics_region_id_fkey": func() error {
			return fmt.Errorf("%s: region %s: %w", op, t.GetRegionId(), store.ErrNotFound)
		},
	}
}

// CreateTopic implements store.Store. The topic's tenant is t.TenantId. An
// empty region means the tenant's default region, else the only region if
// there is exactly one, else none; zero partitions means
// defaultPartitions.
func (s *Store) CreateTopic(ctx context.Context, actor store.Actor, t *v1.Topic) (*v1.Topic, error) {
	id, err := objectID(ids.Topic, t.GetId())
	if err != nil {
		return nil, fmt.Errorf("create: %w", err)
	}
	partitions := int32(t.GetPartitions())
	if partitions == 0 {
		partitions = defaultPartitions
	}
	var out *v1.Topic
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		out, err = scanTopic(tx.QueryRow(ctx, `INSERT INTO topics
			(id, tenant_id, name, description, region_id, partitions, retention_ns)
			VALUES ($1, $2, $3, $4,
				coalesce($5,
					(SELECT default_region_id FROM tenants WHERE id = $2),
					(SELECT min(id) FROM regions HAVING count(*) = 1)),
				$6, $7)
			RETURNING `+topicColumns,
			id, t.GetTenantId(), t.GetName(), t.GetDescription(), nullString(t.GetRegionId()),
			partitions, retentionNanos(t)))
		if err != nil {
			return translate(err, "create topic", topicErrors("create topic", t))
		}
		return record(ctx, tx, change{actor: actor, tenantID: out.TenantId, action: "topic.create",
			resourceType: "topic", resourceID: id, detail: map[string]any{"name": out.Name}})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// GetTopic implements store.Store.
func (s *Store) GetTopic(ctx context.Context, id string) (*v1.Topic, error) {
	t, err := scanTopic(s.pool.QueryRow(ctx, "SELECT "+topicColumns+" FROM topics WHERE id = $1", id))
	if err != nil {
		return nil, noRows(err, "topic", id)
	}
	return t, nil
}

// GetTopicByName implements store.Store.
func (s *Store) GetTopicByName(ctx context.Context, tenantID, name string) (*v1.Topic, error) {
	t, err := scanTopic(s.pool.QueryRow(ctx, "SELECT "+topicColumns+" FROM topics WHERE tenant_id = $1 AND name = $2",
		tenantID, name))
	if err != nil {
		return nil, noRows(err, "topic", fmt.Sprintf("%q in tenant %s", name, tenantID))
	}
	return t, nil
}

// ListTopics implements store.Store.
func (s *Store) ListTopics(ctx context.Context, p store.ListParams) ([]*v1.Topic, error) {
	if err := checkList("topics", p, true); err != nil {
		return nil, err
	}
	return collect(ctx, s.pool, "topics", "SELECT "+topicColumns+` FROM topics
		WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3`, scanTopic, p.TenantID, p.AfterID, p.Limit)
}

// UpdateTopic implements store.Store. Mutable fields: description,
// partitions (grow only; zero keeps the current count), retention.
func (s *Store) UpdateTopic(ctx context.Context, actor store.Actor, t *v1.Topic, expectVersion int64) (*v1.Topic, error) {
	partitions := int32(t.GetPartitions())
	var out *v1.Topic
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		out, err = scanTopic(tx.QueryRow(ctx, `UPDATE topics SET
			description = $3,
			partitions = CASE WHEN $4::integer = 0 THEN partitions ELSE $4::integer END,
			retention_ns = $5, version = version + 1, update_time = now()
			WHERE id = $1 AND version = $2 AND ($4::integer = 0 OR $4::integer >= partitions)
			RETURNING `+topicColumns,
			t.GetId(), expectVersion, t.GetDescription(), partitions, retentionNanos(t)))
		if errors.Is(err, pgx.ErrNoRows) {
			var current int32
			err := tx.QueryRow(ctx, "SELECT partitions FROM topics WHERE id = $1 AND version = $2",
				t.GetId(), expectVersion).Scan(&current)
			if err == nil {
				return fmt.Errorf("update topic %s: %w", t.GetId(),
					store.Precondition("partitions can grow but never shrink (%d to %d)", current, partitions))
			}
			if !errors.Is(err, pgx.ErrNoRows) {
				return fmt.Errorf("update topic %s: %w", t.GetId(), err)
			}
			return missingOrStale(ctx, tx, "topics", "topic", t.GetId(), expectVersion)
		}
		if err != nil {
			return translate(err, "update topic", topicErrors("update topic", t))
		}
		return record(ctx, tx, change{actor: actor, tenantID: out.TenantId, action: "topic.update",
			resourceType: "topic", resourceID: out.Id, detail: map[string]any{"name": out.Name}})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DeleteTopic implements store.Store. Without Force it refuses while
// pipelines read the topic; with Force it deletes them too.
func (s *Store) DeleteTopic(ctx context.Context, actor store.Actor, p store.DeleteParams) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		if err := lockForDelete(ctx, tx, "topics", "topic", p.ID, p.Version); err != nil {
			return err
		}
		var name, tenantID string
		var pipelines int64
		if err := tx.QueryRow(ctx, `SELECT name, tenant_id,
			(SELECT count(*) FROM pipelines WHERE topic_id = $1)
			FROM topics WHERE id = $1`, p.ID).Scan(&name, &tenantID, &pipelines); err != nil {
			return fmt.Errorf("count topic %s pipelines: %w", p.ID, err)
		}
		if pipelines > 0 && !p.Force {
			return fmt.Errorf("delete topic %s: %w", p.ID,
				store.Precondition("topic has %s; delete them first or set force", plural(pipelines, "pipeline")))
		}
		if _, err := tx.Exec(ctx, "DELETE FROM pipelines WHERE topic_id = $1", p.ID); err != nil {
			return translate(err, "delete topic "+p.ID+" pipelines", nil)
		}
		if _, err := tx.Exec(ctx, "DELETE FROM topics WHERE id = $1", p.ID); err != nil {
			return translate(err, "delete topic "+p.ID, nil)
		}
		detail := map[string]any{"name": name, "force": p.Force}
		if p.Force {
			detail["deleted_pipelines"] = pipelines
		}
		return record(ctx, tx, change{actor: actor, tenantID: tenantID, action: "topic.delete",
			resourceType: "topic", resourceID: p.ID, detail: detail})
	})
}
