package pgstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchyard-dev/switchyard/internal/ids"
	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
)

const operationColumns = `id, tenant_id, kind, state, pipeline_id, total, done, error, create_time, end_time`

func scanOperation(row pgx.Row) (*v1.Operation, error) {
	var (
		op          v1.Operation
		kind, state int16
		total, done int64
		created     time.Time
		ended       *time.Time
	)
	if err := row.Scan(&op.Id, &op.TenantId, &kind, &state, &op.PipelineId, &total, &done, &op.Error,
		&created, &ended); err != nil {
		return nil, err
	}
	op.Kind = v1.OperationKind(kind)
	op.State = v1.OperationState(state)
	op.Total, op.Done = uint64(total), uint64(done)
	op.CreateTime = ts(&created)
	op.EndTime = ts(ended)
	return &op, nil
}

// CreateOperation implements store.Store.
func (s *Store) CreateOperation(ctx context.Context, op *v1.Operation) (*v1.Operation, error) {
	if op.GetTenantId() == "" || op.GetPipelineId() == "" {
		return nil, errors.New("create operation: tenant and pipeline ids are required")
	}
	id, err := objectID(ids.Operation, op.GetId())
	if err != nil {
		return nil, fmt.Errorf("create operation: %w", err)
	}
	out, err := scanOperation(s.pool.QueryRow(ctx, `INSERT INTO operations
			(id, tenant_id, kind, state, pipeline_id, total, done, error, create_time)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now())
		RETURNING `+operationColumns,
		id, op.GetTenantId(), int16(op.GetKind()), int16(op.GetState()), op.GetPipelineId(),
		int64(op.GetTotal()), int64(op.GetDone()), op.GetError()))
	if err != nil {
		return nil, fmt.Errorf("create operation: %w", err)
	}
	return out, nil
}

// GetOperation implements store.Store.
func (s *Store) GetOperation(ctx context.Context, id string) (*v1.Operation, error) {
	op, err := scanOperation(s.pool.QueryRow(ctx, "SELECT "+operationColumns+" FROM operations WHERE id = $1", id))
	if err != nil {
		return nil, noRows(err, "operation", id)
	}
	return op, nil
}

// SetOperationProgress implements store.Store.
func (s *Store) SetOperationProgress(ctx context.Context, id string, total, done uint64) error {
	_, err := s.pool.Exec(ctx, `UPDATE operations SET total = $2, done = $3 WHERE id = $1 AND state = $4`,
		id, int64(total), int64(done), int16(v1.OperationState_OPERATION_STATE_RUNNING))
	if err != nil {
		return fmt.Errorf("progress of operation %s: %w", id, err)
	}
	return nil
}

// EndOperation implements store.Store.
func (s *Store) EndOperation(ctx context.Context, id string, state v1.OperationState, total, done uint64, errMsg string) (*v1.Operation, error) {
	if state == v1.OperationState_OPERATION_STATE_RUNNING || state == v1.OperationState_OPERATION_STATE_UNSPECIFIED {
		return nil, fmt.Errorf("end operation %s: %v is not a final state", id, state)
	}
	op, err := scanOperation(s.pool.QueryRow(ctx, `UPDATE operations
		SET state = $2, total = $3, done = $4, error = $5, end_time = now()
		WHERE id = $1 AND state = $6 RETURNING `+operationColumns,
		id, int16(state), int64(total), int64(done), errMsg, int16(v1.OperationState_OPERATION_STATE_RUNNING)))
	if errors.Is(err, pgx.ErrNoRows) {
		return s.GetOperation(ctx, id)
	}
	if err != nil {
		return nil, fmt.Errorf("end operation %s: %w", id, err)
	}
	return op, nil
}
