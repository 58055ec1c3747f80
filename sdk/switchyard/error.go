package switchyard

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"connectrpc.com/connect"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
)

// Sentinel errors, matched with [errors.Is] by every [*Error] of the
// corresponding status code.
var (
	// ErrNotFound: no such object, or it belongs to another tenant
	// (code not_found).
	ErrNotFound = errors.New("switchyard: not found")
	// ErrAlreadyExists: the name is taken in its scope (code
	// already_exists).
	ErrAlreadyExists = errors.New("switchyard: already exists")
	// ErrConflict: the etag sent is not the current one; read the object
	// again (code aborted).
	ErrConflict = errors.New("switchyard: conflict")
	// ErrPermissionDenied: the caller may not do this (code
	// permission_denied).
	ErrPermissionDenied = errors.New("switchyard: permission denied")
	// ErrUnauthenticated: no credential, or an unknown, revoked or expired
	// one (code unauthenticated).
	ErrUnauthenticated = errors.New("switchyard: unauthenticated")
	// ErrInvalidArgument: the request breaks a rule; see
	// [Error.FieldViolations] (code invalid_argument).
	ErrInvalidArgument = errors.New("switchyard: invalid argument")
	// ErrResourceExhausted: a quota or rate limit refused the request
	// (code resource_exhausted).
	ErrResourceExhausted = errors.New("switchyard: resource exhausted")
	// ErrFailedPrecondition: the change is not allowed in the current
	// state (code failed_precondition).
	ErrFailedPrecondition = errors.New("switchyard: failed precondition")
	// ErrUnavailable: the service could not be reached or could not do the
	// work now; it is safe to try again (code unavailable).
	ErrUnavailable = errors.New("switchyard: unavailable")
)

// sentinels maps status codes to their sentinel.
var sentinels = map[connect.Code]error{
	connect.CodeNotFound:           ErrNotFound,
	connect.CodeAlreadyExists:      ErrAlreadyExists,
	connect.CodeAborted:            ErrConflict,
	connect.CodePermissionDenied:   ErrPermissionDenied,
	connect.CodeUnauthenticated:    ErrUnauthenticated,
	connect.CodeInvalidArgument:    ErrInvalidArgument,
	connect.CodeResourceExhausted:  ErrResourceExhausted,
	connect.CodeFailedPrecondition: ErrFailedPrecondition,
	connect.CodeUnavailable:        ErrUnavailable,
}

// Error is an error answered by Switchyard: a whole call refused, or one
// event of a batch not accepted. It wraps the [*connect.Error], so
// [connect.CodeOf] works on it, and matches the sentinel of its code with
// [errors.Is].
type Error struct {
	cerr *connect.Error
}

// newError wraps a Connect error.
func newError(cerr *connect.Error) *Error { return &Error{cerr: cerr} }

// wrapError returns err as an *Error when it is a Connect error, and err
// otherwise.
func wrapError(err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	var cerr *connect.Error
	if errors.As(err, &cerr) {
		return newError(cerr)
	}
	return err
}

// eventError is the *Error of a per-event error status of a publish result.
// code is the snake-case name of a status code, as in the API.
func eventError(code, message string) *Error {
	var c connect.Code
	if err := c.UnmarshalText([]byte(code)); err != nil {
		c = connect.CodeUnknown
	}
	return newError(connect.NewError(c, errors.New(message)))
}

// Error implements error.
func (e *Error) Error() string { return "switchyard: " + e.cerr.Error() }

// Unwrap returns the underlying *connect.Error.
func (e *Error) Unwrap() error { return e.cerr }

// Is reports whether target is the sentinel of e's code.
func (e *Error) Is(target error) bool {
	s, ok := sentinels[e.cerr.Code()]
	return ok && s == target
}

// Code returns the status code.
func (e *Error) Code() connect.Code { return e.cerr.Code() }

// Message returns the server's message, without the code.
func (e *Error) Message() string { return e.cerr.Message() }

// RetryDelay returns the wait the server asked for with a google.rpc.RetryInfo
// detail (a rate limit does), and whether there was one.
func (e *Error) RetryDelay() (time.Duration, bool) {
	for _, d := range e.cerr.Details() {
		if d.Type() != "google.rpc.RetryInfo" {
			continue
		}
		v, err := d.Value()
		if err != nil {
			continue
		}
		if ri, ok := v.(*errdetails.RetryInfo); ok && ri.GetRetryDelay() != nil {
			return max(ri.GetRetryDelay().AsDuration(), 0), true
		}
	}
	return 0, false
}

// hasQuotaFailure reports whether e carries a google.rpc.QuotaFailure
// detail: a request no wait would admit.
func (e *Error) hasQuotaFailure() bool {
	for _, d := range e.cerr.Details() {
		if d.Type() == "google.rpc.QuotaFailure" {
			return true
		}
	}
	return false
}

// FieldViolation is one broken validation rule of a request.
type FieldViolation struct {
	// Field is the path of the field, e.g. "tenant.name" or
	// `events[0].extensions["Bad-Name"]`; empty for a rule of the message as
	// a whole.
	Field string
	// Rule is the rule's id, e.g. "string.pattern".
	Rule string
	// Message says what is wrong, for humans.
	Message string
}

// FieldViolations returns the violations of the buf.validate.Violations
// detail of an invalid_argument error, or nil.
func (e *Error) FieldViolations() []FieldViolation {
	var out []FieldViolation
	for _, d := range e.cerr.Details() {
		if d.Type() != "buf.validate.Violations" {
			continue
		}
		v, err := d.Value()
		if err != nil {
			continue
		}
		vs, ok := v.(*validate.Violations)
		if !ok {
			continue
		}
		for _, viol := range vs.GetViolations() {
			out = append(out, FieldViolation{
				Field:   fieldPath(viol.GetField()),
				Rule:    viol.GetRuleId(),
				Message: viol.GetMessage(),
			})
		}
	}
	return out
}

// fieldPath renders a FieldPath the way protovalidate does:
// "a.b[0].c[\"key\"]".
func fieldPath(p *validate.FieldPath) string {
	var b strings.Builder
	for i, el := range p.GetElements() {
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(el.GetFieldName())
		switch s := el.GetSubscript().(type) {
		case *validate.FieldPathElement_Index:
			fmt.Fprintf(&b, "[%d]", s.Index)
		case *validate.FieldPathElement_BoolKey:
			fmt.Fprintf(&b, "[%t]", s.BoolKey)
		case *validate.FieldPathElement_IntKey:
			fmt.Fprintf(&b, "[%d]", s.IntKey)
		case *validate.FieldPathElement_UintKey:
			fmt.Fprintf(&b, "[%d]", s.UintKey)
		case *validate.FieldPathElement_StringKey:
			b.WriteString("[" + strconv.Quote(s.StringKey) + "]")
		}
	}
	return b.String()
}
