package controlplane

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/switchyard-dev/switchyard/controlplane/store"
)

// Messages of errors whose text is fixed, so callers and tests can rely on it.
const (
	msgConflict = "etag mismatch: the object changed; read it again"
	msgInternal = "internal error"
)

// storeError translates an error from the store into a Connect error. It is
// the one place where store sentinels become RPC codes. kind and id name the
// object the call was about, for the NotFound message. Unexpected errors are
// logged in full and reported with a generic message, so nothing of the
// database leaks to callers.
func (s *Server) storeError(ctx context.Context, err error, kind, id string) error {
	if err == nil {
		return nil
	}
	if ce := new(connect.Error); errors.As(err, &ce) {
		return ce
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		return errNotFound(kind, id)
	case errors.Is(err, store.ErrAlreadyExists):
		return connect.NewError(connect.CodeAlreadyExists, fmt.Errorf("a %s with this name already exists", kind))
	case errors.Is(err, store.ErrConflict):
		return errConflict()
	case errors.Is(err, store.ErrFailedPrecondition):
		reason := "the change is not allowed in the current state"
		if pe := new(store.PreconditionError); errors.As(err, &pe) {
			reason = pe.Reason
		}
		return connect.NewError(connect.CodeFailedPrecondition, errors.New(reason))
	case errors.Is(err, context.Canceled):
		return connect.NewError(connect.CodeCanceled, errors.New("request canceled"))
	case errors.Is(err, context.DeadlineExceeded):
		return connect.NewError(connect.CodeDeadlineExceeded, errors.New("deadline exceeded"))
	}
	s.log.ErrorContext(ctx, "store call failed", slog.String("kind", kind), slog.String("id", id), slog.Any("error", err))
	return connect.NewError(connect.CodeInternal, errors.New(msgInternal))
}

// internalError logs err and returns a generic Internal error.
func (s *Server) internalError(ctx context.Context, what string, err error) error {
	s.log.ErrorContext(ctx, what, slog.Any("error", err))
	return connect.NewError(connect.CodeInternal, errors.New(msgInternal))
}

// errNotFound is the NotFound error of one object. The same message is used
// for a missing object and for one of another tenant, so identifiers cannot
// be probed.
func errNotFound(kind, id string) *connect.Error {
	return connect.NewError(connect.CodeNotFound, fmt.Errorf("%s %q not found", kind, id))
}

// errConflict is the Aborted error of a stale etag.
func errConflict() *connect.Error {
	return connect.NewError(connect.CodeAborted, errors.New(msgConflict))
}

// errPermission is the PermissionDenied error of a caller that may not make
// a call.
func errPermission(format string, args ...any) *connect.Error {
	return connect.NewError(connect.CodePermissionDenied, fmt.Errorf(format, args...))
}

// invalidArgument returns an InvalidArgument error carrying the violations as
// a buf.validate.Violations detail, the same detail the validation
// interceptor attaches, so clients parse one format.
func invalidArgument(violations ...*validate.Violation) *connect.Error {
	msg := "invalid request"
	if len(violations) == 1 {
		msg = violations[0].GetMessage()
		if f := fieldPathString(violations[0].GetField()); f != "" {
			msg = f + ": " + msg
		}
	} else if len(violations) > 1 {
		msg = fmt.Sprintf("%d invalid fields", len(violations))
	}
	ce := connect.NewError(connect.CodeInvalidArgument, errors.New(msg))
	detail, err := connect.NewErrorDetail(validate.Violations_builder{Violations: violations}.Build())
	if err == nil {
		ce.AddDetail(detail)
	}
	return ce
}

// violation builds one violation of the field at path with a rule id and a
// message for humans.
func violation(path *validate.FieldPath, ruleID, message string) *validate.Violation {
	return validate.Violation_builder{
		Field:   path,
		RuleId:  proto.String(ruleID),
		Message: proto.String(message),
	}.Build()
}

// fieldPath builds a buf.validate.FieldPath from the descriptor of root by
// walking steps: a string names a field of the current message, an int
// subscripts the repeated field named just before it. Paths are constants of
// this package, so a step that does not exist is a programming error and
// panics (tests cover every path).
func fieldPath(root protoreflect.MessageDescriptor, steps ...any) *validate.FieldPath {
	var elems []*validate.FieldPathElement
	md := root
	var last protoreflect.FieldDescriptor
	for _, step := range steps {
		switch st := step.(type) {
		case string:
			if md == nil {
				panic(fmt.Sprintf("controlplane: field path step %q below a scalar", st))
			}
			fd := md.Fields().ByName(protoreflect.Name(st))
			if fd == nil {
				panic(fmt.Sprintf("controlplane: %s has no field %q", md.FullName(), st))
			}
			elems = append(elems, validate.FieldPathElement_builder{
				FieldNumber: proto.Int32(int32(fd.Number())),
				FieldName:   proto.String(string(fd.Name())),
				FieldType:   descriptorpb.FieldDescriptorProto_Type(fd.Kind()).Enum(),
			}.Build())
			last = fd
			md = fd.Message()
		case int:
			if last == nil || !last.IsList() {
				panic(fmt.Sprintf("controlplane: index %d not after a repeated field", st))
			}
			elems[len(elems)-1].SetIndex(uint64(st))
		default:
			panic(fmt.Sprintf("controlplane: bad field path step %T", step))
		}
	}
	return validate.FieldPath_builder{Elements: elems}.Build()
}

// prefixPath returns path with the elements of prefix in front of it.
func prefixPath(prefix, path *validate.FieldPath) *validate.FieldPath {
	elems := append(append([]*validate.FieldPathElement{}, prefix.GetElements()...), path.GetElements()...)
	return validate.FieldPath_builder{Elements: elems}.Build()
}

// fieldPathString renders a path as dotted text, e.g. "pipeline.destinations[0].name".
func fieldPathString(path *validate.FieldPath) string {
	var b []byte
	for i, e := range path.GetElements() {
		if i > 0 {
			b = append(b, '.')
		}
		b = append(b, e.GetFieldName()...)
		if e.HasIndex() {
			b = fmt.Appendf(b, "[%d]", e.GetIndex())
		}
	}
	return string(b)
}
