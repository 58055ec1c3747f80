package controlplane

import (
	"context"
	"errors"
	"strconv"

	"buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"buf.build/go/protovalidate"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/switchyard-dev/switchyard/controlplane/store"
)

// object is what every stored resource message has.
type object interface {
	proto.Message
	GetId() string
	GetEtag() string
}

// resource describes one kind of object to the shared get, update and
// delete plumbing.
type resource[T object] struct {
	// kind names the kind in messages ("topic").
	kind string
	// field is the name of the object's field in create and update requests
	// ("topic"), the root of violation paths.
	field string
	// tenantOf returns the owning tenant; nil for global kinds (regions),
	// which every authenticated caller may read.
	tenantOf func(T) string
	// mutable lists the top-level fields an update may change.
	mutable []string

	get    func(context.Context, string) (T, error)
	update func(context.Context, store.Actor, T, int64) (T, error)
	delete func(context.Context, store.Actor, store.DeleteParams) error
}

// fetch reads the object id and checks that the caller may see it. An object
// of another tenant yields the same NotFound as a missing one.
func (r *resource[T]) fetch(ctx context.Context, s *Server, id string) (T, error) {
	var zero T
	obj, err := r.get(ctx, id)
	if err != nil {
		return zero, s.storeError(ctx, err, r.kind, id)
	}
	if r.tenantOf != nil && !principalFrom(ctx).canSeeTenant(r.tenantOf(obj)) {
		return zero, errNotFound(r.kind, id)
	}
	return obj, nil
}

// updateObject runs an update: it reads the current object (checking
// ownership), checks the etag when in carries one, merges the fields named by
// mask (all mutable fields when empty) from in, validates the merged object
// with protovalidate, lets prepare apply defaults and the checks protovalidate
// cannot make, and stores the result expecting the version read. A change
// made by someone else between the read and the write yields Aborted.
func updateObject[T object](
	ctx context.Context,
	s *Server,
	r *resource[T],
	req proto.Message,
	in T,
	mask *fieldmaskpb.FieldMask,
	prepare func(current, merged T) error,
) (T, error) {
	var zero T
	current, err := r.fetch(ctx, s, in.GetId())
	if err != nil {
		return zero, err
	}
	if in.GetEtag() != "" && in.GetEtag() != current.GetEtag() {
		return zero, errConflict()
	}
	paths, err := checkMask(in.ProtoReflect().Descriptor(), mask.GetPaths(), r.mutable)
	if err != nil {
		return zero, invalidArgument(maskViolation(req, err))
	}
	merged := proto.Clone(current).(T)
	applyMask(merged, in, paths)
	if err := s.validateObject(ctx, req, r.field, merged); err != nil {
		return zero, err
	}
	if prepare != nil {
		if err := prepare(current, merged); err != nil {
			return zero, err
		}
	}
	version, err := strconv.ParseInt(current.GetEtag(), 10, 64)
	if err != nil {
		return zero, s.internalError(ctx, "stored etag is not a version", err)
	}
	updated, err := r.update(ctx, principalFrom(ctx).actor(), merged, version)
	if err != nil {
		return zero, s.storeError(ctx, err, r.kind, in.GetId())
	}
	return updated, nil
}

// deleteObject deletes the object id after checking that the caller may see
// it and, when etag is set, that it is the current one.
func deleteObject[T object](ctx context.Context, s *Server, r *resource[T], id, etag string, force bool) error {
	current, err := r.fetch(ctx, s, id)
	if err != nil {
		return err
	}
	var version int64
	if etag != "" {
		if etag != current.GetEtag() {
			return errConflict()
		}
		if version, err = strconv.ParseInt(etag, 10, 64); err != nil {
			return s.internalError(ctx, "stored etag is not a version", err)
		}
	}
	err = r.delete(ctx, principalFrom(ctx).actor(), store.DeleteParams{ID: id, Version: version, Force: force})
	return s.storeError(ctx, err, r.kind, id)
}

// validateObject checks obj, which the request req carries in its field
// named field, against its protovalidate rules. Violations are reported with
// paths from the request, as the validation interceptor reports them.
func (s *Server) validateObject(ctx context.Context, req proto.Message, field string, obj proto.Message) error {
	err := protovalidate.Validate(obj)
	if err == nil {
		return nil
	}
	ve := new(protovalidate.ValidationError)
	if !errors.As(err, &ve) {
		return s.internalError(ctx, "validating "+field, err)
	}
	prefix := fieldPath(req.ProtoReflect().Descriptor(), field)
	violations := make([]*validate.Violation, 0, len(ve.Violations))
	for _, v := range ve.Violations {
		pv := proto.Clone(v.Proto).(*validate.Violation)
		pv.SetField(prefixPath(prefix, pv.GetField()))
		violations = append(violations, pv)
	}
	return invalidArgument(violations...)
}

// violations collects field violations of one request.
type violations []*validate.Violation

// add appends a violation of the field at path.
func (vs *violations) add(path *validate.FieldPath, ruleID, message string) {
	*vs = append(*vs, violation(path, ruleID, message))
}

// err returns the InvalidArgument error of the violations, or nil.
func (vs violations) err() error {
	if len(vs) == 0 {
		return nil
	}
	return invalidArgument(vs...)
}
