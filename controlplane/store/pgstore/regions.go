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

const regionColumns = `id, name, display_name, kafka_brokers, status,
	coalesce(failover_region_id, ''), version, create_time, update_time`

func scanRegion(row pgx.Row) (*v1.Region, error) {
	var (
		r            v1.Region
		status       int16
		version      int64
		created, upd time.Time
	)
	if err := row.Scan(&r.Id, &r.Name, &r.DisplayName, &r.KafkaBrokers, &status,
		&r.FailoverRegionId, &version, &created, &upd); err != nil {
		return nil, err
	}
	r.Status = v1.RegionStatus(status)
	r.Etag = etag(version)
	r.CreateTime = ts(&created)
	r.UpdateTime = ts(&upd)
	return &r, nil
}

// regionStatus stores UNSPECIFIED as ACTIVE.
func regionStatus(r *v1.Region) int16 {
	if r.GetStatus() == v1.RegionStatus_REGION_STATUS_UNSPECIFIED {
		return int16(v1.RegionStatus_REGION_STATUS_ACTIVE)
	}
	return int16(r.GetStatus())
}

func brokers(r *v1.Region) []string {
	if b := r.GetKafkaBrokers(); b != nil {
		return b
	}
	return []string{}
}

func regionErrors(op string, r *v1.Region) constraintErrors {
	return constraintErrors{
		"regions_name_key": func() error {
			return fmt.Errorf("%s: region named %q: %w", op, r.GetName(), store.ErrAlreadyExists)
		},
		"regions_failover_region_id_fkey": func() error {
			return fmt.Errorf("%s: failover region %s: %w", op, r.GetFailoverRegionId(), store.ErrNotFound)
		},
		"regions_failover_not_self": func() error {
			return fmt.Errorf("%s: %w", op, store.Precondition("a region cannot fail over to itself"))
		},
	}
}

// CreateRegion implements store.Store. An unspecified status is stored as
// ACTIVE.
func (s *Store) CreateRegion(ctx context.Context, actor store.Actor, r *v1.Region) (*v1.Region, error) {
	id, err := objectID(ids.Region, r.GetId())
	if err != nil {
		return nil, fmt.Errorf("create: %w", err)
	}
	var out *v1.Region
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		out, err = scanRegion(tx.QueryRow(ctx, `INSERT INTO regions
			(id, name, display_name, kafka_brokers, status, failover_region_id)
			VALUES ($1, $2, $3, $4, $5, $6)
			RETURNING `+regionColumns,
			id, r.GetName(), r.GetDisplayName(), brokers(r), regionStatus(r), nullString(r.GetFailoverRegionId())))
		if err != nil {
			return translate(err, "create region", regionErrors("create region", r))
		}
		return record(ctx, tx, change{actor: actor, action: "region.create",
			resourceType: "region", resourceID: id, detail: map[string]any{"name": out.Name}})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// GetRegion implements store.Store.
func (s *Store) GetRegion(ctx context.Context, id string) (*v1.Region, error) {
	r, err := scanRegion(s.pool.QueryRow(ctx, "SELECT "+regionColumns+" FROM regions WHERE id = $1", id))
	if err != nil {
		return nil, noRows(err, "region", id)
	}
	return r, nil
}

// ListRegions implements store.Store.
func (s *Store) ListRegions(ctx context.Context, p store.ListParams) ([]*v1.Region, error) {
	if err := checkList("regions", p, false); err != nil {
		return nil, err
	}
	return collect(ctx, s.pool, "regions", "SELECT "+regionColumns+" FROM regions WHERE id > $1 ORDER BY id LIMIT $2", scanRegion, p.AfterID, p.Limit)
}

// UpdateRegion implements store.Store. Mutable fields: display_name,
// kafka_brokers, status, failover_region_id.
func (s *Store) UpdateRegion(ctx context.Context, actor store.Actor, r *v1.Region, expectVersion int64) (*v1.Region, error) {
	var out *v1.Region
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		out, err = scanRegion(tx.QueryRow(ctx, `UPDATE regions SET
			display_name = $3, kafka_brokers = $4, status = $5, failover_region_id = $6,
			version = version + 1, update_time = now()
			WHERE id = $1 AND version = $2
			RETURNING `+regionColumns,
			r.GetId(), expectVersion, r.GetDisplayName(), brokers(r), regionStatus(r), nullString(r.GetFailoverRegionId())))
		if errors.Is(err, pgx.ErrNoRows) {
			return missingOrStale(ctx, tx, "regions", "region", r.GetId(), expectVersion)
		}
		if err != nil {
			return translate(err, "update region", regionErrors("update region", r))
		}
		return record(ctx, tx, change{actor: actor, action: "region.update",
			resourceType: "region", resourceID: out.Id,
			detail: map[string]any{"name": out.Name, "status": out.Status.String()}})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DeleteRegion implements store.Store. It refuses while a topic lives in the
// region, a tenant has it as default region or another region fails over to
// it; Force does not apply.
func (s *Store) DeleteRegion(ctx context.Context, actor store.Actor, p store.DeleteParams) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		if err := lockForDelete(ctx, tx, "regions", "region", p.ID, p.Version); err != nil {
			return err
		}
		var name string
		var topics, tenants, regions int64
		if err := tx.QueryRow(ctx, `SELECT name,
			(SELECT count(*) FROM topics WHERE region_id = $1),
			(SELECT count(*) FROM tenants WHERE default_region_id = $1),
			(SELECT count(*) FROM regions WHERE failover_region_id = $1 AND id <> $1)
			FROM regions WHERE id = $1`, p.ID).Scan(&name, &topics, &tenants, &regions); err != nil {
			return fmt.Errorf("count region %s users: %w", p.ID, err)
		}
		var parts []string
		if topics > 0 {
			parts = append(parts, plural(topics, "topic")+" live in it")
		}
		if tenants > 0 {
			parts = append(parts, plural(tenants, "tenant")+" use it as default region")
		}
		if regions > 0 {
			parts = append(parts, plural(regions, "region")+" fail over to it")
		}
		if len(parts) > 0 {
			return fmt.Errorf("delete region %s: %w", p.ID,
				store.Precondition("region is in use: %s", strings.Join(parts, "; ")))
		}
		if _, err := tx.Exec(ctx, "DELETE FROM regions WHERE id = $1", p.ID); err != nil {
			return translate(err, "delete region "+p.ID, nil)
		}
		return record(ctx, tx, change{actor: actor, action: "region.delete",
			resourceType: "region", resourceID: p.ID, detail: map[string]any{"name": name}})
	})
}
