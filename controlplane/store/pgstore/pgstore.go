// Package pgstore implements store.Store on PostgreSQL with pgx.
//
// Every mutating method runs in one transaction that changes the object,
// writes an audit row, bumps the single configuration version and sends
// NOTIFY on NotifyChannel with the new version, so data-plane nodes can
// watch for changes. Schema changes are embedded SQL files applied by
// Migrate.
package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/switchyard-dev/switchyard/controlplane/store"
	"github.com/switchyard-dev/switchyard/internal/ids"
)

// NotifyChannel is the Postgres NOTIFY channel on which every committed
// change announces the new configuration version (the payload, in decimal).
const NotifyChannel = "switchyard_config"

// Postgres error codes the store translates.
const (
	codeUniqueViolation     = "23505"
	codeForeignKeyViolation = "23503"
	codeCheckViolation      = "23514"
)

// Store is a store.Store backed by a pgx connection pool.
type Store struct {
	pool *pgxpool.Pool
}

var _ store.Store = (*Store)(nil)

// New returns a Store over pool. The database must have been migrated with
// Migrate.
func New(pool *pgxpool.Pool) *Store {
	return &Store{pool: pool}
}

// change describes one mutation for the audit log.
type change struct {
	actor        store.Actor
	tenantID     string
	action       string
	resourceType string
	resourceID   string
	detail       map[string]any
}

// inTx runs fn in a read-committed transaction.
func (s *Store) inTx(ctx context.Context, fn func(pgx.Tx) error) error {
	return pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{}, fn)
}

// record writes the audit row of c and bumps the configuration version,
// notifying watchers at commit.
func record(ctx context.Context, tx pgx.Tx, c change) error {
	detail := c.detail
	if detail == nil {
		detail = map[string]any{}
	}
	js, err := json.Marshal(detail)
	if err != nil {
		return fmt.Errorf("encode audit detail: %w", err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO audit_log
		(actor_kind, actor_id, tenant_id, action, resource_type, resource_id, detail)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		string(c.actor.Kind), c.actor.ID, nullString(c.tenantID), c.action, c.resourceType, c.resourceID, js); err != nil {
		return fmt.Errorf("write audit row: %w", err)
	}
	var v int64
	if err := tx.QueryRow(ctx, "UPDATE config_version SET version = version + 1 RETURNING version").Scan(&v); err != nil {
		return fmt.Errorf("bump config version: %w", err)
	}
	if _, err := tx.Exec(ctx, "SELECT pg_notify($1, $2)", NotifyChannel, strconv.FormatInt(v, 10)); err != nil {
		return fmt.Errorf("notify config version: %w", err)
	}
	return nil
}

// ConfigVersion implements store.Store.
func (s *Store) ConfigVersion(ctx context.Context) (int64, error) {
	var v int64
	if err := s.pool.QueryRow(ctx, "SELECT version FROM config_version").Scan(&v); err != nil {
		return 0, fmt.Errorf("read config version: %w", err)
	}
	return v, nil
}

// ListAudit implements store.Store.
func (s *Store) ListAudit(ctx context.Context, f store.AuditFilter) ([]store.AuditEntry, error) {
	if f.Limit <= 0 {
		return nil, fmt.Errorf("list audit: limit must be positive, got %d", f.Limit)
	}
	rows, err := s.pool.Query(ctx, `SELECT id, time, actor_kind, actor_id, coalesce(tenant_id, ''),
			action, resource_type, resource_id, detail::text
		FROM audit_log
		WHERE ($1 = '' OR tenant_id = $1) AND ($2 = '' OR resource_id = $2)
		ORDER BY id DESC LIMIT $3`, f.TenantID, f.ResourceID, f.Limit)
	if err != nil {
		return nil, fmt.Errorf("list audit: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.AuditEntry, error) {
		var e store.AuditEntry
		var kind, detail string
		if err := r.Scan(&e.ID, &e.Time, &kind, &e.Actor.ID, &e.TenantID,
			&e.Action, &e.ResourceType, &e.ResourceID, &detail); err != nil {
			return e, err
		}
		e.Actor.Kind = store.ActorKind(kind)
		e.Detail = []byte(detail)
		return e, nil
	})
	if err != nil {
		return nil, fmt.Errorf("list audit: %w", err)
	}
	return out, nil
}

// checkList validates the paging parameters shared by every list.
func checkList(kind string, p store.ListParams, tenantScoped bool) error {
	if p.Limit <= 0 {
		return fmt.Errorf("list %s: limit must be positive, got %d", kind, p.Limit)
	}
	if tenantScoped && p.TenantID == "" {
		return fmt.Errorf("list %s: tenant id is required", kind)
	}
	return nil
}

// missingOrStale explains an UPDATE ... WHERE id AND version that matched no
// row: ErrNotFound when the row is gone, ErrConflict when its version moved.
func missingOrStale(ctx context.Context, tx pgx.Tx, table, kind, id string, expect int64) error {
	var current int64
	err := tx.QueryRow(ctx, "SELECT version FROM "+table+" WHERE id = $1", id).Scan(&current)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%s %s: %w", kind, id, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("read %s %s version: %w", kind, id, err)
	}
	return fmt.Errorf("%s %s is at version %d, not %d: %w", kind, id, current, expect, store.ErrConflict)
}

// lockForDelete locks the row to delete and checks its version (when
// expect is non-zero).
func lockForDelete(ctx context.Context, tx pgx.Tx, table, kind, id string, expect int64) error {
	var current int64
	err := tx.QueryRow(ctx, "SELECT version FROM "+table+" WHERE id = $1 FOR UPDATE", id).Scan(&current)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%s %s: %w", kind, id, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("lock %s %s: %w", kind, id, err)
	}
	if expect != 0 && current != expect {
		return fmt.Errorf("%s %s is at version %d, not %d: %w", kind, id, current, expect, store.ErrConflict)
	}
	return nil
}

// notFound wraps ErrNotFound for a missing kind and id.
func notFound(kind, id string) error {
	return fmt.Errorf("%s %s: %w", kind, id, store.ErrNotFound)
}

// noRows turns pgx.ErrNoRows into ErrNotFound and wraps other errors.
func noRows(err error, kind, id string) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return notFound(kind, id)
	}
	return fmt.Errorf("read %s %s: %w", kind, id, err)
}

// pgError returns the Postgres error in err, if any.
func pgError(err error) (*pgconn.PgError, bool) {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe, true
	}
	return nil, false
}

// constraintErrors maps constraint names to the error a violation means.
type constraintErrors map[string]func() error

// translate maps a Postgres constraint violation in err to a store error
// using m; other errors are wrapped with op.
func translate(err error, op string, m constraintErrors) error {
	if err == nil {
		return nil
	}
	if pe, ok := pgError(err); ok {
		if f, ok := m[pe.ConstraintName]; ok {
			return f()
		}
		switch pe.Code {
		case codeUniqueViolation:
			return fmt.Errorf("%s: %s: %w", op, pe.Detail, store.ErrAlreadyExists)
		case codeForeignKeyViolation:
			return fmt.Errorf("%s: %w", op, store.Precondition("%s", pe.Detail))
		case codeCheckViolation:
			return fmt.Errorf("%s: %w", op, store.Precondition("constraint %s violated", pe.ConstraintName))
		}
	}
	return fmt.Errorf("%s: %w", op, err)
}

// etag renders a version as an API etag.
func etag(v int64) string { return strconv.FormatInt(v, 10) }

// ts converts a time to a Timestamp; nil for NULL.
func ts(t *time.Time) *timestamppb.Timestamp {
	if t == nil {
		return nil
	}
	return timestamppb.New(*t)
}

// optTime converts an optional Timestamp to a nullable time.
func optTime(t *timestamppb.Timestamp) *time.Time {
	if t == nil {
		return nil
	}
	v := t.AsTime()
	return &v
}

// nullString maps "" to NULL.
func nullString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// plural renders "1 topic" or "3 topics".
func plural(n int64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.FormatInt(n, 10) + " " + noun + "s"
}

// objectID returns the caller's id when one is given (it must be a
// well-formed id of the kind), or a new one. Callers pass an id when something
// derived from it must exist before the row does, e.g. an API key's token.
func objectID(prefix, given string) (string, error) {
	if given == "" {
		return ids.New(prefix), nil
	}
	if err := ids.Check(prefix, given); err != nil {
		return "", err
	}
	return given, nil
}

// collect runs a query and scans every row with scan; what names the rows in
// errors.
func collect[T any](ctx context.Context, q querier, what, sql string, scan func(pgx.Row) (T, error), args ...any) ([]T, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", what, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (T, error) { return scan(r) })
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", what, err)
	}
	return out, nil
}
