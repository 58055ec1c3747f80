package pgstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchyard-dev/switchyard/controlplane/store"
	"github.com/switchyard-dev/switchyard/internal/ids"
	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
)

const apiKeyColumns = `id, tenant_id, name, description, role, topic_ids, prefix, expire_time,
	revoke_time, version, create_time, update_time`

func scanAPIKey(row pgx.Row, extra ...any) (*v1.ApiKey, error) {
	var (
		k                v1.ApiKey
		role             int16
		expires, revoked *time.Time
		version          int64
		created, upd     time.Time
	)
	dest := append([]any{&k.Id, &k.TenantId, &k.Name, &k.Description, &role, &k.TopicIds, &k.Prefix,
		&expires, &revoked, &version, &created, &upd}, extra...)
	if err := row.Scan(dest...); err != nil {
		return nil, err
	}
	if len(k.TopicIds) == 0 {
		k.TopicIds = nil
	}
	k.Role = v1.ApiKeyRole(role)
	k.ExpireTime = ts(expires)
	k.RevokeTime = ts(revoked)
	k.Etag = etag(version)
	k.CreateTime = ts(&created)
	k.UpdateTime = ts(&upd)
	return &k, nil
}

func topicIDs(k *v1.ApiKey) []string {
	if t := k.GetTopicIds(); t != nil {
		return t
	}
	return []string{}
}

// checkKeyTopics verifies that every topic a key names belongs to its
// tenant.
func checkKeyTopics(ctx context.Context, tx pgx.Tx, tenantID string, topics []string) error {
	if len(topics) == 0 {
		return nil
	}
	rows, err := tx.Query(ctx, `SELECT t FROM unnest($2::text[]) AS t
		WHERE NOT EXISTS (SELECT 1 FROM topics WHERE id = t AND tenant_id = $1)`, tenantID, topics)
	if err != nil {
		return fmt.Errorf("check key topics: %w", err)
	}
	missing, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("check key topics: %w", err)
	}
	if len(missing) > 0 {
		return fmt.Errorf("topic %s in tenant %s: %w", missing[0], tenantID, store.ErrNotFound)
	}
	return nil
}

func apiKeyErrors(op string, k *v1.ApiKey, tenantID string) constraintErrors {
	return constraintErrors{
		"api_keys_tenant_id_name_key": func() error {
			return fmt.Errorf("%s: API key named %q in tenant %s: %w", op, k.GetName(), tenantID, store.ErrAlreadyExists)
		},
		"api_keys_tenant_id_fkey": func() error {
			return fmt.Errorf("%s: tenant %s: %w", op, tenantID, store.ErrNotFound)
		},
	}
}

// CreateAPIKey implements store.Store. The key's tenant is k.TenantId; its
// prefix is k.Prefix; its topic_ids must be topics of that tenant.
func (s *Store) CreateAPIKey(ctx context.Context, actor store.Actor, k *v1.ApiKey, secretHash []byte) (*v1.ApiKey, error) {
	if len(secretHash) == 0 {
		return nil, errors.New("create API key: empty secret hash")
	}
	id, err := objectID(ids.APIKey, k.GetId())
	if err != nil {
		return nil, fmt.Errorf("create: %w", err)
	}
	var out *v1.ApiKey
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		if err := checkKeyTopics(ctx, tx, k.GetTenantId(), k.GetTopicIds()); err != nil {
			return fmt.Errorf("create API key: %w", err)
		}
		var err error
		out, err = scanAPIKey(tx.QueryRow(ctx, `INSERT INTO api_keys
			(id, tenant_id, name, description, role, topic_ids, prefix, secret_hash, expire_time)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
			RETURNING `+apiKeyColumns,
			id, k.GetTenantId(), k.GetName(), k.GetDescription(), int16(k.GetRole()), topicIDs(k), k.GetPrefix(),
			secretHash, optTime(k.GetExpireTime())))
		if err != nil {
			return translate(err, "create API key", apiKeyErrors("create API key", k, k.GetTenantId()))
		}
		return record(ctx, tx, change{actor: actor, tenantID: out.TenantId, action: "api_key.create",
			resourceType: "api_key", resourceID: id,
			detail: map[string]any{"name": out.Name, "role": out.Role.String(), "prefix": out.Prefix}})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// GetAPIKey implements store.Store.
func (s *Store) GetAPIKey(ctx context.Context, id string) (*v1.ApiKey, error) {
	k, err := scanAPIKey(s.pool.QueryRow(ctx, "SELECT "+apiKeyColumns+" FROM api_keys WHERE id = $1", id))
	if err != nil {
		return nil, noRows(err, "API key", id)
	}
	return k, nil
}

// GetAPIKeyRecord implements store.Store.
func (s *Store) GetAPIKeyRecord(ctx context.Context, id string) (*store.APIKeyRecord, error) {
	var hash []byte
	k, err := scanAPIKey(s.pool.QueryRow(ctx, "SELECT "+apiKeyColumns+", secret_hash FROM api_keys WHERE id = $1", id), &hash)
	if err != nil {
		return nil, noRows(err, "API key", id)
	}
	return &store.APIKeyRecord{Key: k, SecretHash: hash}, nil
}

// ListAPIKeys implements store.Store.
func (s *Store) ListAPIKeys(ctx context.Context, p store.ListParams) ([]*v1.ApiKey, error) {
	if err := checkList("API keys", p, true); err != nil {
		return nil, err
	}
	return collect(ctx, s.pool, "API keys", "SELECT "+apiKeyColumns+` FROM api_keys
		WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3`, func(r pgx.Row) (*v1.ApiKey, error) { return scanAPIKey(r) }, p.TenantID, p.AfterID, p.Limit)
}

// UpdateAPIKey implements store.Store. Mutable fields: name, description,
// topic_ids, expire_time.
func (s *Store) UpdateAPIKey(ctx context.Context, actor store.Actor, k *v1.ApiKey, expectVersion int64) (*v1.ApiKey, error) {
	var out *v1.ApiKey
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var tenantID string
		err := tx.QueryRow(ctx, "SELECT tenant_id FROM api_keys WHERE id = $1", k.GetId()).Scan(&tenantID)
		if err != nil {
			return noRows(err, "API key", k.GetId())
		}
		if err := checkKeyTopics(ctx, tx, tenantID, k.GetTopicIds()); err != nil {
			return fmt.Errorf("update API key %s: %w", k.GetId(), err)
		}
		out, err = scanAPIKey(tx.QueryRow(ctx, `UPDATE api_keys SET
			name = $3, description = $4, topic_ids = $5, expire_time = $6,
			version = version + 1, update_time = now()
			WHERE id = $1 AND version = $2
			RETURNING `+apiKeyColumns,
			k.GetId(), expectVersion, k.GetName(), k.GetDescription(), topicIDs(k), optTime(k.GetExpireTime())))
		if errors.Is(err, pgx.ErrNoRows) {
			return missingOrStale(ctx, tx, "api_keys", "API key", k.GetId(), expectVersion)
		}
		if err != nil {
			return translate(err, "update API key", apiKeyErrors("update API key", k, tenantID))
		}
		return record(ctx, tx, change{actor: actor, tenantID: out.TenantId, action: "api_key.update",
			resourceType: "api_key", resourceID: out.Id, detail: map[string]any{"name": out.Name}})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// RevokeAPIKey implements store.Store. Revoking a revoked key changes
// nothing and returns it as it is.
func (s *Store) RevokeAPIKey(ctx context.Context, actor store.Actor, id string) (*v1.ApiKey, error) {
	var out *v1.ApiKey
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		out, err = scanAPIKey(tx.QueryRow(ctx, `UPDATE api_keys SET revoke_time = now(),
			version = version + 1, update_time = now()
			WHERE id = $1 AND revoke_time IS NULL RETURNING `+apiKeyColumns, id))
		if errors.Is(err, pgx.ErrNoRows) {
			out, err = scanAPIKey(tx.QueryRow(ctx, "SELECT "+apiKeyColumns+" FROM api_keys WHERE id = $1", id))
			if err != nil {
				return noRows(err, "API key", id)
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("revoke API key %s: %w", id, err)
		}
		return record(ctx, tx, change{actor: actor, tenantID: out.TenantId, action: "api_key.revoke",
			resourceType: "api_key", resourceID: out.Id, detail: map[string]any{"name": out.Name}})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DeleteAPIKey implements store.Store.
func (s *Store) DeleteAPIKey(ctx context.Context, actor store.Actor, p store.DeleteParams) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		if err := lockForDelete(ctx, tx, "api_keys", "API key", p.ID, p.Version); err != nil {
			return err
		}
		var name, tenantID string
		if err := tx.QueryRow(ctx, "DELETE FROM api_keys WHERE id = $1 RETURNING name, tenant_id", p.ID).
			Scan(&name, &tenantID); err != nil {
			return translate(err, "delete API key "+p.ID, nil)
		}
		return record(ctx, tx, change{actor: actor, tenantID: tenantID, action: "api_key.delete",
			resourceType: "api_key", resourceID: p.ID, detail: map[string]any{"name": name}})
	})
}
