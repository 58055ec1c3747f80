package ledger

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/switchyard-dev/switchyard/internal/acklog"
	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
)

// partitionsAhead is how many days after the newest ack of a batch get
// their deliveries partition made in advance.
const partitionsAhead = 2

// Writer writes acks to the ledger tables (events, deliveries)
// idempotently: an ack id already stored is skipped, so writing the same
// acks again changes nothing. It is safe for concurrent use.
//
// An event's payload (acklog.Ack.Data) is stored on its events row by the
// first ack that carries one and never rewritten, unless the tenant drops
// payloads: the writer reads the tenants' drop_payloads in the batch's
// transaction, with a share lock on their rows, so a tenant update that
// turns it on (and purges the tenant's payloads in its own transaction)
// waits for a batch in progress, and later batches see it.
type Writer struct {
	pool *pgxpool.Pool

	mu   sync.Mutex
	days map[string]bool // deliveries partitions known to exist, by day
}

// NewWriter returns a Writer over pool, whose database has the control
// plane's migrations applied.
func NewWriter(pool *pgxpool.Pool) *Writer {
	return &Writer{pool: pool, days: make(map[string]bool)}
}

// stagingColumns are the columns of the temporary table acks are copied
// into, in the order of row.
var stagingColumns = []string{
	"ack_id", "attempt_time", "tenant_id", "topic_id", "event_id", "pipeline_id", "destination",
	"attempt", "outcome", "reason", "http_status", "latency_us", "error", "node_id",
	"next_attempt_time", "origin", "attributes", "ingest_time", "event_time", "data", "target",
}

const createStaging = `CREATE TEMP TABLE IF NOT EXISTS ledger_staging (
    ack_id text, attempt_time timestamptz, tenant_id text, topic_id text, event_id text,
    pipeline_id text, destination text, attempt integer, outcome smallint, reason text,
    http_status integer, latency_us bigint, error text, node_id text,
    next_attempt_time timestamptz, origin text, attributes jsonb, ingest_time timestamptz,
    event_time timestamptz, data bytea, target text
) ON COMMIT DELETE ROWS`

// insertEvents takes, per event, the row with the earliest ingest time, a
// row with a payload first among equals (Write gives the row with the
// payload the earliest ingest time of its event in the batch).
const insertEvents = `INSERT INTO events (topic_id, event_id, tenant_id, attributes, ingest_time, event_time, data)
SELECT DISTINCT ON (topic_id, event_id) topic_id, event_id, tenant_id, attributes, ingest_time, event_time, data
FROM ledger_staging
ORDER BY topic_id, event_id, ingest_time, data IS NULL
ON CONFLICT (topic_id, event_id) DO UPDATE SET
    ingest_time = LEAST(events.ingest_time, EXCLUDED.ingest_time),
    data = COALESCE(events.data, EXCLUDED.data)
WHERE EXCLUDED.ingest_time < events.ingest_time OR (events.data IS NULL AND EXCLUDED.data IS NOT NULL)`

const insertDeliveries = `INSERT INTO deliveries (ack_id, attempt_time, tenant_id, topic_id, event_id,
    pipeline_id, destination, attempt, outcome, reason, http_status, latency_us, error, node_id,
    next_attempt_time, origin, target)
SELECT DISTINCT ON (ack_id) ack_id, attempt_time, tenant_id, topic_id, event_id,
    pipeline_id, destination, attempt, outcome, reason, http_status, latency_us, error, node_id,
    next_attempt_time, origin, target
FROM ledger_staging s
WHERE NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.ack_id = s.ack_id)
ORDER BY ack_id, attempt_time
ON CONFLICT DO NOTHING`

// Staging columns Write changes before copying.
const (
	colTenant = 2
	colIngest = 17
	colData   = 19
)

// Write stores acks in one transaction and returns the number of delivery
// rows it added (acks already stored are not counted). Acks without an
// event id (records that could not be decoded) are skipped. Payloads of
// tenants that drop them, or that the tenants table does not know, are not
// stored.
func (w *Writer) Write(ctx context.Context, acks []*acklog.Ack) (int64, error) {
	rows := make([][]any, 0, len(acks))
	var newest time.Time
	days := make(map[string]time.Time)
	type eventKey struct{ topic, event string }
	earliest := make(map[eventKey]time.Time)
	var withData []int          // indexes in rows
	var payloadTenants []string // tenants of those rows
	for _, a := range acks {
		if a.EventID == "" || a.TopicID == "" {
			continue
		}
		r, err := row(a)
		if err != nil {
			return 0, err
		}
		k := eventKey{a.TopicID, a.EventID}
		if in := r[colIngest].(time.Time); earliest[k].IsZero() || in.Before(earliest[k]) {
			earliest[k] = in
		}
		if r[colData] != nil {
			withData = append(withData, len(rows))
			payloadTenants = append(payloadTenants, a.TenantID)
		}
		rows = append(rows, r)
		t := a.Time.UTC()
		days[t.Format(time.DateOnly)] = t
		if t.After(newest) {
			newest = t
		}
	}
	if len(rows) == 0 {
		return 0, nil
	}
	for i := 1; i <= partitionsAhead; i++ {
		t := newest.AddDate(0, 0, i)
		days[t.Format(time.DateOnly)] = t
	}
	if err := w.ensurePartitions(ctx, days); err != nil {
		return 0, err
	}
	// The row with a payload goes first among its event's rows.
	for _, i := range withData {
		r := rows[i]
		r[colIngest] = earliest[eventKey{r[3].(string), r[4].(string)}]
	}
	var added int64
	err := pgx.BeginFunc(ctx, w.pool, func(tx pgx.Tx) error {
		if len(withData) > 0 {
			keep, err := keepingPayloads(ctx, tx, payloadTenants)
			if err != nil {
				return err
			}
			for _, i := range withData {
				if !keep[rows[i][colTenant].(string)] {
					rows[i][colData] = nil
				}
			}
		}
		if _, err := tx.Exec(ctx, createStaging); err != nil {
			return fmt.Errorf("creating the staging table: %w", err)
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"ledger_staging"}, stagingColumns, pgx.CopyFromRows(rows)); err != nil {
			return fmt.Errorf("copying acks: %w", err)
		}
		if _, err := tx.Exec(ctx, insertEvents); err != nil {
			return fmt.Errorf("inserting events: %w", err)
		}
		tag, err := tx.Exec(ctx, insertDeliveries)
		if err != nil {
			return fmt.Errorf("inserting deliveries: %w", err)
		}
		added = tag.RowsAffected()
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("ledger: writing %d acks: %w", len(rows), err)
	}
	return added, nil
}

// keepingPayloads returns which of tenants keep payloads, reading their
// rows with a share lock held until tx ends (see Writer).
func keepingPayloads(ctx context.Context, tx pgx.Tx, tenants []string) (map[string]bool, error) {
	rows, err := tx.Query(ctx, `SELECT id FROM tenants WHERE id = ANY($1)
		AND retention_drop_payloads IS NOT TRUE ORDER BY id FOR SHARE`, tenants)
	if err != nil {
		return nil, fmt.Errorf("reading the tenants' payload policy: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("reading the tenants' payload policy: %w", err)
	}
	keep := make(map[string]bool, len(ids))
	for _, id := range ids {
		keep[id] = true
	}
	return keep, nil
}

// ensurePartitions creates the deliveries partitions of days that are not
// known to exist.
func (w *Writer) ensurePartitions(ctx context.Context, days map[string]time.Time) error {
	for day, t := range days {
		w.mu.Lock()
		known := w.days[day]
		w.mu.Unlock()
		if known {
			continue
		}
		start := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
		name := pgx.Identifier{"deliveries_" + start.Format("20060102")}.Sanitize()
		sql := fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s PARTITION OF deliveries FOR VALUES FROM ('%s') TO ('%s')`,
			name, start.Format(time.RFC3339), start.AddDate(0, 0, 1).Format(time.RFC3339))
		if _, err := w.pool.Exec(ctx, sql); err != nil {
			return fmt.Errorf("ledger: creating the deliveries partition of %s: %w", day, err)
		}
		w.mu.Lock()
		w.days[day] = true
		w.mu.Unlock()
	}
	return nil
}

// forget marks the partition of day as unknown, so that it is created
// again when an ack of that day comes.
func (w *Writer) forget(day string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.days, day)
}

// row returns the staging row of a.
func row(a *acklog.Ack) ([]any, error) {
	attrs := []byte("{}")
	if a.Event != nil {
		var err error
		if attrs, err = json.Marshal(a.Event); err != nil {
			return nil, fmt.Errorf("ledger: encoding attributes: %w", err)
		}
	}
	ingest := a.IngestTime
	if ingest.IsZero() {
		ingest = a.Time
	}
	return []any{
		a.ID, a.Time.UTC(), a.TenantID, a.TopicID, a.EventID, a.PipelineID, a.Destination,
		int32(a.Attempt), int16(Status(a.Outcome)), a.Reason, int32(a.HTTPStatus), a.Latency.Microseconds(),
		a.Error, a.NodeID, optTime(a.NextAttemptTime), a.Origin, json.RawMessage(attrs), ingest.UTC(), optTime(a.EventTime),
		optBytes(a.Data), a.Target,
	}, nil
}

// Status returns the DeliveryStatus an outcome leaves a destination in.
func Status(o acklog.Outcome) v1.DeliveryStatus {
	switch o {
	case acklog.Delivered:
		return v1.DeliveryStatus_DELIVERY_STATUS_DELIVERED
	case acklog.Retrying:
		return v1.DeliveryStatus_DELIVERY_STATUS_RETRYING
	case acklog.DeadLettered:
		return v1.DeliveryStatus_DELIVERY_STATUS_DEAD_LETTERED
	case acklog.Filtered:
		return v1.DeliveryStatus_DELIVERY_STATUS_FILTERED
	}
	return v1.DeliveryStatus_DELIVERY_STATUS_UNSPECIFIED
}

// optBytes is nil for an empty payload.
func optBytes(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

// optTime is nil for the zero time.
func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}
