package storetest

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/switchyard-dev/switchyard/controlplane/store"
	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
)

func testOperationLifecycle(t *testing.T, s store.Store) {
	op, err := s.CreateOperation(ctx(t), &v1.Operation{
		TenantId: "ten_a", PipelineId: "pip_a",
		Kind: v1.OperationKind_OPERATION_KIND_REDRIVE, State: v1.OperationState_OPERATION_STATE_RUNNING,
	})
	require.NoError(t, err)
	require.Regexp(t, `^op_[0-9a-z]{26}$`, op.GetId())
	require.NotNil(t, op.GetCreateTime())
	require.Nil(t, op.GetEndTime())

	require.NoError(t, s.SetOperationProgress(ctx(t), op.GetId(), 0, 300))
	got, err := s.GetOperation(ctx(t), op.GetId())
	require.NoError(t, err)
	require.Equal(t, uint64(300), got.GetDone())
	require.Equal(t, v1.OperationState_OPERATION_STATE_RUNNING, got.GetState())
	require.Equal(t, "ten_a", got.GetTenantId())
	require.Equal(t, "pip_a", got.GetPipelineId())
	require.Equal(t, v1.OperationKind_OPERATION_KIND_REDRIVE, got.GetKind())

	_, err = s.EndOperation(ctx(t), op.GetId(), v1.OperationState_OPERATION_STATE_RUNNING, 0, 0, "")
	require.Error(t, err)

	ended, err := s.EndOperation(ctx(t), op.GetId(), v1.OperationState_OPERATION_STATE_FAILED, 500, 400, "broker gone")
	require.NoError(t, err)
	require.Equal(t, v1.OperationState_OPERATION_STATE_FAILED, ended.GetState())
	require.Equal(t, uint64(500), ended.GetTotal())
	require.Equal(t, uint64(400), ended.GetDone())
	require.Equal(t, "broker gone", ended.GetError())
	require.NotNil(t, ended.GetEndTime())

	// Ended: neither progress nor a second end changes it.
	require.NoError(t, s.SetOperationProgress(ctx(t), op.GetId(), 9, 9))
	again, err := s.EndOperation(ctx(t), op.GetId(), v1.OperationState_OPERATION_STATE_CANCELLED, 1, 1, "")
	require.NoError(t, err)
	require.Equal(t, v1.OperationState_OPERATION_STATE_FAILED, again.GetState())
	require.Equal(t, uint64(400), again.GetDone())

	_, err = s.GetOperation(ctx(t), "op_00000000000000000000000000")
	require.True(t, errors.Is(err, store.ErrNotFound), "%v", err)
	_, err = s.EndOperation(ctx(t), "op_00000000000000000000000000", v1.OperationState_OPERATION_STATE_CANCELLED, 0, 0, "")
	require.True(t, errors.Is(err, store.ErrNotFound), "%v", err)
}
