package controlplane

import (
	"fmt"
	"slices"
	"strings"

	"buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// maskError is a refused update_mask path.
type maskError struct {
	path   string
	reason string
}

func (e *maskError) Error() string {
	return fmt.Sprintf("update_mask path %q: %s", e.path, e.reason)
}

// checkMask verifies the paths of an update mask against the mutable fields
// of md and returns the paths to apply: the given ones, or every mutable
// field when the mask is empty. A path is a mutable top-level field, or a
// dotted path below one through singular message fields.
func checkMask(md protoreflect.MessageDescriptor, paths, mutable []string) ([]string, error) {
	if len(paths) == 0 {
		return mutable, nil
	}
	for _, p := range paths {
		segs := strings.Split(p, ".")
		if !slices.Contains(mutable, segs[0]) {
			if md.Fields().ByName(protoreflect.Name(segs[0])) != nil {
				return nil, &maskError{path: p, reason: "field cannot be changed; mutable fields are " + strings.Join(mutable, ", ")}
			}
			return nil, &maskError{path: p, reason: "no such field"}
		}
		cur := md
		for i, seg := range segs {
			if cur == nil {
				return nil, &maskError{path: p, reason: "no such field"}
			}
			fd := cur.Fields().ByName(protoreflect.Name(seg))
			if fd == nil {
				return nil, &maskError{path: p, reason: "no such field"}
			}
			if i < len(segs)-1 && (fd.Message() == nil || fd.IsList() || fd.IsMap()) {
				return nil, &maskError{path: p, reason: "sub-fields can be named only below a singular message field"}
			}
			cur = fd.Message()
		}
	}
	return paths, nil
}

// applyMask copies the fields at paths (checked by checkMask) from src into
// dst: a field set in src replaces dst's, a field unset in src clears
// dst's. dst and src must be of the same type; src is not changed.
func applyMask(dst, src proto.Message, paths []string) {
	src = proto.Clone(src)
	for _, p := range paths {
		segs := strings.Split(p, ".")
		d := dst.ProtoReflect()
		s := src.ProtoReflect()
		for i, seg := range segs {
			fd := d.Descriptor().Fields().ByName(protoreflect.Name(seg))
			if i == len(segs)-1 {
				if s.Has(fd) {
					d.Set(fd, s.Get(fd))
				} else {
					d.Clear(fd)
				}
				break
			}
			s = s.Get(fd).Message()
			d = d.Mutable(fd).Message()
		}
	}
}

// maskViolation is the violation of a refused update_mask path of the
// request req.
func maskViolation(req proto.Message, err error) *validate.Violation {
	return violation(fieldPath(req.ProtoReflect().Descriptor(), "update_mask"), "update_mask.paths", err.Error())
}
