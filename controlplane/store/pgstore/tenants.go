package pgstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchyard-dev/switchyard/controlplane/store"
	"github.com/switchyard-dev/switchyard/internal/ids"
	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
)

const tenantColumns = `id, name, display_name, quota_events_per_second, quota_burst,
	quota_max_event_bytes, retention_days, retention_drop_payloads,
	coalesce(default_region_id, ''), version, create_time, update_time`

func scanTenant(row pgx.Row) (*v1.Tenant, error) {
	var (
		t                    v1.Tenant
		eps, burst, maxBytes *int64
		days                 *int64
		drop                 *bool
		version              int64
		created, upd         time.Time
	)
	if err := row.Scan(&t.Id, &t.Name, &t.DisplayName, &eps, &burst, &maxBytes, &days, &drop,
		&t.DefaultRegionId, &version, &created, &upd); err != nil {
		return nil, err
	}
	if eps != nil {
		t.Quotas = &v1.TenantQuotas{
			EventsPerSecond: uint32(*eps),
			Burst:           uint32(*burst),
			MaxEventBytes:   uint32(*maxBytes),
		}
	}
	if days != nil {
		t.Retention = &v1.RetentionPolicy{Days: uint32(*days), DropPayloads: *drop}
	}
	t.Etag = etag(version)
	t.CreateTime = ts(&created)
	t.UpdateTime = ts(&upd)
	return &t, nil
}

// tenantArgs returns the nullable quota and retention columns of t.
func tenantArgs(t *v1.Tenant) (eps, burst, maxBytes, days *int64, drop *bool) {
	if q := t.GetQuotas(); q != nil {
		a, b, c := int64(q.GetEventsPerSecond()), int64(q.GetBurst()), int64(q.GetMaxEventBytes())
		eps, burst, maxBytes = &a, &b, &c
	}
	if r := t.GetRetention(); r != nil {
		d, p := int64(r.GetDays()), r.GetDropPayloads()
		days, drop = &d, &p
	}
	return
}

func tenantErrors(op string, t *v1.Tenant) constraintErrors {
	return constraintErrors{
		"tenants_name_key": func() error {
			return fmt.Errorf("%s: tenant named %q: %w", op, t.GetName(), store.ErrAlreadyExists)
		},
		"tenants_default_region_id_fkey": func() error {
			return fmt.Errorf("%s: default region %s: %w", op, t.GetDefaultRegionId(), store.ErrNotFound)
		},
	}
}

// CreateTenant implements store.Store.
func (s *Store) CreateTenant(ctx context.Context, actor store.Actor, t *v1.Tenant) (*v1.Tenant, error) {
	id, err := objectID(ids.Tenant, t.GetId())
	if err != nil {
		return nil, fmt.Errorf("create: %w", err)
	}
	eps, burst, maxBytes, days, drop := tenantArgs(t)
	var out *v1.Tenant
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		out, err = scanTenant(tx.QueryRow(ctx, `INSERT INTO tenants
			(id, name, display_name, quota_events_per_second, quota_burst, quota_max_event_bytes,
			 retention_days, retention_drop_payloads, default_region_id)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
			RETURNING `+tenantColumns,
			id, t.GetName(), t.GetDisplayName(), eps, burst, maxBytes, days, drop, nullString(t.GetDefaultRegionId())))
		if err != nil {
			return translate(err, "create tenant", tenantErrors("create tenant", t))
		}
		return record(ctx, tx, change{actor: actor, tenantID: id, action: "tenant.create",
			resourceType: "tenant", resourceID: id, detail: map[string]any{"name": out.Name}})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// GetTenant implements store.Store.
func (s *Store) GetTenant(ctx context.Context, id string) (*v1.Tenant, error) {
	t, err := scanTenant(s.pool.QueryRow(ctx, "SELECT "+tenantColumns+" FROM tenants WHERE id = $1", id))
	if err != nil {
		return nil, noRows(err, "tenant", id)
	}
	return t, nil
}

// ListTenants implements store.Store.
func (s *Store) ListTenants(ctx context.Context, p store.ListParams) ([]*v1.Tenant, error) {
	if err := checkList("tenants", p, false); err != nil {
		return nil, err
	}
	return collect(ctx, s.pool, "tenants", "SELECT "+tenantColumns+" FROM tenants WHERE id > $1 ORDER BY id LIMIT $2", scanTenant, p.AfterID, p.Limit)
}

// UpdateTenant implements store.Store. Mutable fields: display_name, quotas,
// retention, default_region_id. With retention.drop_payloads set it purges
// the payloads the ledger holds for the tenant (events.data) in the same
// transaction, after locking the tenant's row, so the ledger's writer (which
// reads the setting under a share lock) stores none afterwards; the audit
// row counts them (payloads_purged).
func (s *Store) UpdateTenant(ctx context.Context, actor store.Actor, t *v1.Tenant, expectVersion int64) (*v1.Tenant, error) {
	eps, burst, maxBytes, days, drop := tenantArgs(t)
	var out *v1.Tenant
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		out, err = scanTenant(tx.QueryRow(ctx, `UPDATE tenants SET
			display_name = $3, quota_events_per_second = $4, quota_burst = $5,
			quota_max_event_bytes = $6, retention_days = $7, retention_drop_payloads = $8,
			default_region_id = $9, version = version + 1, update_time = now()
			WHERE id = $1 AND version = $2
			RETURNING `+tenantColumns,
			t.GetId(), expectVersion, t.GetDisplayName(), eps, burst, maxBytes, days, drop,
			nullString(t.GetDefaultRegionId())))
		if errors.Is(err, pgx.ErrNoRows) {
			return missingOrStale(ctx, tx, "tenants", "tenant", t.GetId(), expectVersion)
		}
		if err != nil {
			return translate(err, "update tenant", tenantErrors("update tenant", t))
		}
		detail := map[string]any{"name": out.Name}
		if out.GetRetention().GetDropPayloads() {
			tag, err := tx.Exec(ctx, `UPDATE events SET data = NULL WHERE tenant_id = $1 AND data IS NOT NULL`, out.Id)
			if err != nil {
				return fmt.Errorf("update tenant: purging payloads: %w", err)
			}
			if n := tag.RowsAffected(); n > 0 {
				detail["payloads_purged"] = n
			}
		}
		return record(ctx, tx, change{actor: actor, tenantID: out.Id, action: "tenant.update",
			resourceType: "tenant", resourceID: out.Id, detail: detail})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DeleteTenant implements store.Store. Without Force it refuses while the
// tenant has topics, pipelines or API keys; with Force it deletes them too.
func (s *Store) DeleteTenant(ctx context.Context, actor store.Actor, p store.DeleteParams) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		if err := lockForDelete(ctx, tx, "tenants", "tenant", p.ID, p.Version); err != nil {
			return err
		}
		var name string
		var topics, pipelines, keys int64
		if err := tx.QueryRow(ctx, `SELECT name,
			(SELECT count(*) FROM topics WHERE tenant_id = $1),
			(SELECT count(*) FROM pipelines WHERE tenant_id = $1),
			(SELECT count(*) FROM api_keys WHERE tenant_id = $1)
			FROM tenants WHERE id = $1`, p.ID).Scan(&name, &topics, &pipelines, &keys); err != nil {
			return fmt.Errorf("count tenant %s dependents: %w", p.ID, err)
		}
		if !p.Force && topics+pipelines+keys > 0 {
			var parts []string
			if topics > 0 {
				parts = append(parts, plural(topics, "topic"))
			}
			if pipelines > 0 {
				parts = append(parts, plural(pipelines, "pipeline"))
			}
			if keys > 0 {
				parts = append(parts, plural(keys, "API key"))
			}
			return fmt.Errorf("delete tenant %s: %w", p.ID,
				store.Precondition("tenant has %s; delete them first or set force", strings.Join(parts, ", ")))
		}
		for _, q := range []string{
			"DELETE FROM pipelines WHERE tenant_id = $1",
			"DELETE FROM topics WHERE tenant_id = $1",
			"DELETE FROM api_keys WHERE tenant_id = $1",
			"DELETE FROM tenants WHERE id = $1",
		} {
			if _, err := tx.Exec(ctx, q, p.ID); err != nil {
				return translate(err, "delete tenant "+p.ID, nil)
			}
		}
		detail := map[string]any{"name": name, "force": p.Force}
		if p.Force {
			detail["deleted_topics"], detail["deleted_pipelines"], detail["deleted_api_keys"] = topics, pipelines, keys
		}
		return record(ctx, tx, change{actor: actor, tenantID: p.ID, action: "tenant.delete",
			resourceType: "tenant", resourceID: p.ID, detail: detail})
	})
}
