package switchyard_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"connectrpc.com/connect"
	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/switchyard-dev/switchyard/sdk/switchyard"
)

// TestErrorMatching checks that each code a server answers matches its
// sentinel, and only it, through wrapping.
func TestErrorMatching(t *testing.T) {
	t.Parallel()
	codes := map[connect.Code]error{
		connect.CodeNotFound:           switchyard.ErrNotFound,
		connect.CodeAlreadyExists:      switchyard.ErrAlreadyExists,
		connect.CodeAborted:            switchyard.ErrConflict,
		connect.CodePermissionDenied:   switchyard.ErrPermissionDenied,
		connect.CodeUnauthenticated:    switchyard.ErrUnauthenticated,
		connect.CodeInvalidArgument:    switchyard.ErrInvalidArgument,
		connect.CodeFailedPrecondition: switchyard.ErrFailedPrecondition,
	}
	for code, sentinel := range codes {
		t.Run(code.String(), func(t *testing.T) {
			t.Parallel()
			s := newIngest()
			s.refuse = code
			_, err := newClient(t, s.serve(t)).Publish(ctxT(t), "orders", events(t, 1, "t")...)
			require.ErrorIs(t, err, sentinel)
			for other, os := range codes {
				if other != code {
					require.False(t, errors.Is(err, os), "%v matches %v", err, os)
				}
			}
			wrapped := fmt.Errorf("creating: %w", err)
			require.ErrorIs(t, wrapped, sentinel)
			require.Equal(t, code, connect.CodeOf(wrapped))
		})
	}
}

func TestErrorDetails(t *testing.T) {
	t.Parallel()
	cerr := connect.NewError(connect.CodeInvalidArgument, errors.New("validation error"))
	viols := &validate.Violations{Violations: []*validate.Violation{{
		Field: &validate.FieldPath{Elements: []*validate.FieldPathElement{
			{FieldName: proto.String("events"), Subscript: &validate.FieldPathElement_Index{Index: 0}},
			{FieldName: proto.String("extensions"), Subscript: &validate.FieldPathElement_StringKey{StringKey: "Bad-Name"}},
		}},
		RuleId:  proto.String("string.pattern"),
		Message: proto.String("does not match"),
	}, {RuleId: proto.String("api_key.topic_ids.producer_only"), Message: proto.String("topic_ids applies to producer keys only")}}}
	d, err := connect.NewErrorDetail(viols)
	require.NoError(t, err)
	cerr.AddDetail(d)
	var serr *switchyard.Error
	require.ErrorAs(t, wrap(cerr), &serr)
	require.Equal(t, []switchyard.FieldViolation{
		{Field: `events[0].extensions["Bad-Name"]`, Rule: "string.pattern", Message: "does not match"},
		{Field: "", Rule: "api_key.topic_ids.producer_only", Message: "topic_ids applies to producer keys only"},
	}, serr.FieldViolations())
	_, ok := serr.RetryDelay()
	require.False(t, ok)

	rl := connect.NewError(connect.CodeResourceExhausted, errors.New("slow down"))
	d, err = connect.NewErrorDetail(&errdetails.RetryInfo{RetryDelay: durationpb.New(1500 * time.Millisecond)})
	require.NoError(t, err)
	rl.AddDetail(d)
	require.ErrorAs(t, wrap(rl), &serr)
	delay, ok := serr.RetryDelay()
	require.True(t, ok)
	require.Equal(t, 1500*time.Millisecond, delay)
	require.ErrorIs(t, serr, switchyard.ErrResourceExhausted)
	require.Nil(t, serr.FieldViolations())
}

// wrap turns cerr into the SDK's error.
func wrap(cerr *connect.Error) error {
	return switchyard.WrapErrorForTest(cerr)
}
