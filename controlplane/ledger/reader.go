package ledger

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/switchyard-dev/switchyard/controlplane/store"
	"github.com/switchyard-dev/switchyard/internal/acklog"
	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
)

// Reader answers questions about the ledger: an event's history, a
// tenant's events, a pipeline's dead letters. It does not check who asks.
type Reader struct {
	pool *pgxpool.Pool
}

// NewReader returns a Reader over pool.
func NewReader(pool *pgxpool.Pool) *Reader { return &Reader{pool: pool} }

// EventCursor is the position of an event in ListEvents' order (newest
// ingest first).
type EventCursor struct {
	IngestTime time.Time `json:"t"`
	TopicID    string    `json:"p"`
	EventID    string    `json:"e"`
}

// EventQuery selects events. TenantID is required; the rest are optional.
type EventQuery struct {
	TenantID   string
	TopicID    string
	PipelineID string
	// Status keeps events with a destination whose latest status is this.
	Status v1.DeliveryStatus
	// Start (inclusive) and End (exclusive) bound the ingest time.
	Start, End time.Time
	// After starts after this event; nil starts with the newest.
	After *EventCursor
	Limit int
}

// DeadLetterCursor is the position of a dead letter in ListDeadLetters'
// order (newest first).
type DeadLetterCursor struct {
	Time  time.Time `json:"t"`
	AckID string    `json:"a"`
}

// DeadLetterQuery selects a pipeline's dead letters.
type DeadLetterQuery struct {
	PipelineID string
	Reason     string
	Start, End time.Time
	After      *DeadLetterCursor
	Limit      int
}

// GetEvent returns an event, with its payload when the ledger holds one,
// its status per pipeline and destination, and every attempt, oldest first;
// store.ErrNotFound when the ledger does not know it.
func (r *Reader) GetEvent(ctx context.Context, topicID, eventID string) (*v1.EventRecord, []*v1.DeliveryAttempt, error) {
	recs, err := r.events(ctx, `SELECT tenant_id, topic_id, event_id, attributes, ingest_time, event_time, data
		FROM events WHERE topic_id = $1 AND event_id = $2`, topicID, eventID)
	if err != nil {
		return nil, nil, err
	}
	if len(recs) == 0 {
		return nil, nil, fmt.Errorf("event %s: %w", eventID, store.ErrNotFound)
	}
	rows, err := r.pool.Query(ctx, `SELECT pipeline_id, destination, attempt, attempt_time, outcome,
		http_status, latency_us, error, node_id, target
		FROM deliveries WHERE topic_id = $1 AND event_id = $2 AND destination <> ''
		ORDER BY attempt_time, attempt`, topicID, eventID)
	if err != nil {
		return nil, nil, fmt.Errorf("ledger: reading attempts: %w", err)
	}
	attempts, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*v1.DeliveryAttempt, error) {
		var (
			a       v1.DeliveryAttempt
			at      time.Time
			outcome int16
			status  int32
			latency int64
		)
		if err := row.Scan(&a.PipelineId, &a.Destination, &a.Attempt, &at, &outcome, &status, &latency, &a.Error, &a.NodeId, &a.Target); err != nil {
			return nil, err
		}
		a.AttemptTime = timestamppb.New(at)
		a.Status = v1.DeliveryStatus(outcome)
		a.HttpStatus = uint32(status)
		a.Latency = durationpb.New(time.Duration(latency) * time.Microsecond)
		return &a, nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("ledger: reading attempts: %w", err)
	}
	return recs[0], attempts, nil
}

// ListEvents returns up to q.Limit events, newest first, without their
// payloads.
func (r *Reader) ListEvents(ctx context.Context, q EventQuery) ([]*v1.EventRecord, error) {
	var (
		where = []string{"e.tenant_id = $1"}
		args  = []any{q.TenantID}
	)
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if q.TopicID != "" {
		where = append(where, "e.topic_id = "+arg(q.TopicID))
	}
	if !q.Start.IsZero() {
		where = append(where, "e.ingest_time >= "+arg(q.Start))
	}
	if !q.End.IsZero() {
		where = append(where, "e.ingest_time < "+arg(q.End))
	}
	if q.After != nil {
		where = append(where, fmt.Sprintf("(e.ingest_time, e.topic_id, e.event_id) < (%s, %s, %s)",
			arg(q.After.IngestTime), arg(q.After.TopicID), arg(q.After.EventID)))
	}
	if q.PipelineID != "" || q.Status != v1.DeliveryStatus_DELIVERY_STATUS_UNSPECIFIED {
		// The latest row of each pipeline and destination of the event.
		sub := `SELECT DISTINCT ON (d.pipeline_id, d.destination) d.outcome FROM deliveries d
			WHERE d.topic_id = e.topic_id AND d.event_id = e.event_id`
		if q.PipelineID != "" {
			sub += " AND d.pipeline_id = " + arg(q.PipelineID)
		}
		sub += " ORDER BY d.pipeline_id, d.destination, d.attempt_time DESC, d.attempt DESC"
		cond := "EXISTS (SELECT 1 FROM (" + sub + ") latest"
		if q.Status != v1.DeliveryStatus_DELIVERY_STATUS_UNSPECIFIED {
			cond += " WHERE latest.outcome = " + arg(int16(q.Status))
		}
		where = append(where, cond+")")
	}
	sql := `SELECT e.tenant_id, e.topic_id, e.event_id, e.attributes, e.ingest_time, e.event_time, NULL::bytea
		FROM events e WHERE ` + strings.Join(where, " AND ") + `
		ORDER BY e.ingest_time DESC, e.topic_id DESC, e.event_id DESC LIMIT ` + arg(q.Limit)
	return r.events(ctx, sql, args...)
}

// events runs a query of events (tenant, topic, event id, attributes,
// ingest time, event time, payload) and adds their statuses.
func (r *Reader) events(ctx context.Context, sql string, args ...any) ([]*v1.EventRecord, error) {
	rows, err := r.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("ledger: reading events: %w", err)
	}
	recs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*v1.EventRecord, error) {
		var (
			rec       v1.EventRecord
			id        string
			attrs     []byte
			ingest    time.Time
			eventTime *time.Time
			data      []byte
		)
		if err := row.Scan(&rec.TenantId, &rec.TopicId, &id, &attrs, &ingest, &eventTime, &data); err != nil {
			return nil, err
		}
		var a acklog.Attributes
		if err := json.Unmarshal(attrs, &a); err != nil {
			return nil, fmt.Errorf("attributes of %s: %w", id, err)
		}
		rec.Event = &v1.Event{Id: id, Source: a.Source, Type: a.Type, Subject: a.Subject,
			DataContentType: a.DataContentType, DataSchema: a.DataSchema, Extensions: a.Extensions,
			PartitionKey: a.PartitionKey, Data: data}
		if eventTime != nil {
			rec.Event.Time = timestamppb.New(*eventTime)
		}
		rec.IngestTime = timestamppb.New(ingest)
		return &rec, nil
	})
	if err != nil {
		return nil, fmt.Errorf("ledger: reading events: %w", err)
	}
	if len(recs) == 0 {
		return recs, nil
	}
	topics := make([]string, len(recs))
	eventIDs := make([]string, len(recs))
	byKey := make(map[[2]string]*v1.EventRecord, len(recs))
	for i, rec := range recs {
		topics[i], eventIDs[i] = rec.GetTopicId(), rec.GetEvent().GetId()
		byKey[[2]string{topics[i], eventIDs[i]}] = rec
	}
	srows, err := r.pool.Query(ctx, `SELECT DISTINCT ON (d.topic_id, d.event_id, d.pipeline_id, d.destination)
		d.topic_id, d.event_id, d.pipeline_id, d.destination, d.outcome, d.attempt, d.next_attempt_time
		FROM deliveries d JOIN unnest($1::text[], $2::text[]) AS k(topic_id, event_id)
		  ON d.topic_id = k.topic_id AND d.event_id = k.event_id
		ORDER BY d.topic_id, d.event_id, d.pipeline_id, d.destination, d.attempt_time DESC, d.attempt DESC`,
		topics, eventIDs)
	if err != nil {
		return nil, fmt.Errorf("ledger: reading statuses: %w", err)
	}
	defer srows.Close()
	for srows.Next() {
		var (
			topic, id string
			st        v1.DestinationStatus
			outcome   int16
			next      *time.Time
		)
		if err := srows.Scan(&topic, &id, &st.PipelineId, &st.Destination, &outcome, &st.Attempts, &next); err != nil {
			return nil, fmt.Errorf("ledger: reading statuses: %w", err)
		}
		st.Status = v1.DeliveryStatus(outcome)
		if next != nil && st.Status == v1.DeliveryStatus_DELIVERY_STATUS_RETRYING {
			st.NextAttemptTime = timestamppb.New(*next)
		}
		rec := byKey[[2]string{topic, id}]
		rec.Statuses = append(rec.Statuses, &st)
	}
	if err := srows.Err(); err != nil {
		return nil, fmt.Errorf("ledger: reading statuses: %w", err)
	}
	return recs, nil
}

// ListDeadLetters returns up to q.Limit dead letters of a pipeline, newest
// first, with the cursor of each.
func (r *Reader) ListDeadLetters(ctx context.Context, q DeadLetterQuery) ([]*v1.DeadLetter, []DeadLetterCursor, error) {
	where := []string{"d.pipeline_id = $1", "d.outcome = 4"}
	args := []any{q.PipelineID}
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if q.Reason != "" {
		where = append(where, "d.reason = "+arg(q.Reason))
	}
	if !q.Start.IsZero() {
		where = append(where, "d.attempt_time >= "+arg(q.Start))
	}
	if !q.End.IsZero() {
		where = append(where, "d.attempt_time < "+arg(q.End))
	}
	if q.After != nil {
		where = append(where, fmt.Sprintf("(d.attempt_time, d.ack_id) < (%s, %s)", arg(q.After.Time), arg(q.After.AckID)))
	}
	rows, err := r.pool.Query(ctx, `SELECT d.ack_id, d.attempt_time, d.destination, d.reason, d.attempt,
		d.http_status, d.error, e.event_id, e.attributes, e.event_time
		FROM deliveries d JOIN events e ON e.topic_id = d.topic_id AND e.event_id = d.event_id
		WHERE `+strings.Join(where, " AND ")+`
		ORDER BY d.attempt_time DESC, d.ack_id DESC LIMIT `+arg(q.Limit), args...)
	if err != nil {
		return nil, nil, fmt.Errorf("ledger: reading dead letters: %w", err)
	}
	defer rows.Close()
	var (
		out     []*v1.DeadLetter
		cursors []DeadLetterCursor
	)
	for rows.Next() {
		var (
			dl        = v1.DeadLetter{PipelineId: q.PipelineID}
			c         DeadLetterCursor
			attempt   int32
			status    int32
			id        string
			attrs     []byte
			eventTime *time.Time
		)
		if err := rows.Scan(&c.AckID, &c.Time, &dl.Destination, &dl.Reason, &attempt, &status, &dl.LastError,
			&id, &attrs, &eventTime); err != nil {
			return nil, nil, fmt.Errorf("ledger: reading dead letters: %w", err)
		}
		var a acklog.Attributes
		if err := json.Unmarshal(attrs, &a); err != nil {
			return nil, nil, fmt.Errorf("ledger: attributes of %s: %w", id, err)
		}
		dl.Event = &v1.Event{Id: id, Source: a.Source, Type: a.Type, Subject: a.Subject,
			DataContentType: a.DataContentType, DataSchema: a.DataSchema, Extensions: a.Extensions,
			PartitionKey: a.PartitionKey}
		if eventTime != nil {
			dl.Event.Time = timestamppb.New(*eventTime)
		}
		dl.Attempts = uint32(max(attempt, 0))
		dl.LastHttpStatus = uint32(status)
		dl.DeadLetterTime = timestamppb.New(c.Time)
		out = append(out, &dl)
		cursors = append(cursors, c)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("ledger: reading dead letters: %w", err)
	}
	return out, cursors, nil
}
