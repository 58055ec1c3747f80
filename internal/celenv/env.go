// Package celenv compiles and runs the CEL expressions of pipeline filters
// and transforms.
//
// Expressions see two variables:
//
//   - event: a map of the event's CloudEvents attributes. "id", "source",
//     "type", "specversion" (always "1.0") and "partitionkey" (the event id
//     when no key was set) are always present; "subject", "datacontenttype",
//     "dataschema" and "time" (a timestamp) only when set, so has(event.subject)
//     tells whether the event has one. Each extension attribute appears under
//     its own name with its string value; a core attribute wins over an
//     extension of the same name.
//   - data: the payload. When the content type is JSON ("application/json",
//     "text/json", any "+json" type, or no content type at all) and the bytes
//     parse as one JSON value, data is that value, with JSON numbers as
//     doubles (as in google.protobuf.Value). Otherwise data is the bytes as a
//     string (invalid UTF-8 replaced by U+FFFD). An empty payload is null.
//
// The strings extension (cel.dev/cel-go/ext) and optional values (a.?b,
// optional.of) are available; numbers of different types compare with each
// other (data.total > 100 works on a double).
//
// Expressions are limited to MaxExpressionLength bytes, checked before
// parsing, and every evaluation to CostLimit units of CEL's runtime cost;
// evaluation also stops when its context is done. A Program is compiled once
// and safe for concurrent use.
package celenv

import (
	"fmt"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/ext"
)

const (
	// MaxExpressionLength is the longest expression accepted, in bytes.
	MaxExpressionLength = 4096
	// CostLimit bounds the runtime cost of one evaluation (in CEL's cost
	// units, roughly one per operation and per element or byte traversed).
	CostLimit = 1_000_000
	// interruptCheckFrequency is how many comprehension iterations run
	// between checks of the evaluation context.
	interruptCheckFrequency = 100
)

// Names of the variables expressions see.
const (
	varEvent = "event"
	varData  = "data"
)

// Env compiles filter and transform expressions. It is safe for concurrent
// use; make one and share it.
type Env struct {
	env *cel.Env
}

// New returns an environment declaring the event and data variables.
func New() (*Env, error) {
	env, err := cel.NewEnv(
		cel.Variable(varEvent, cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable(varData, cel.DynType),
		ext.Strings(),
		cel.OptionalTypes(),
		cel.CrossTypeNumericComparisons(true),
		cel.DefaultUTCTimeZone(true),
		cel.ParserExpressionSizeLimit(MaxExpressionLength),
	)
	if err != nil {
		return nil, fmt.Errorf("creating CEL environment: %w", err)
	}
	return &Env{env: env}, nil
}

// CompileError reports an expression that does not compile: a syntax error,
// an unknown name, a type error, or a result of the wrong type.
type CompileError struct {
	// Message is the compiler's message(s), with positions, fit to show to
	// whoever wrote the expression.
	Message string
}

// Error implements error.
func (e *CompileError) Error() string {
	return "invalid expression: " + e.Message
}

// CompileFilter compiles a filter expression. It must return a bool (or a
// dynamic value, which must then be a bool at run time); otherwise, and for
// any other compile failure, the error is a *CompileError.
func (e *Env) CompileFilter(expr string) (*Program, error) {
	ast, err := e.compile(expr)
	if err != nil {
		return nil, err
	}
	out := ast.OutputType()
	if !out.IsExactType(cel.BoolType) && !out.IsExactType(cel.DynType) {
		return nil, &CompileError{Message: fmt.Sprintf("a filter must return bool, but this expression returns %s", out)}
	}
	return e.program(ast, expr, kindFilter)
}

// CompileTransform compiles a transform expression. Its value must be
// convertible to JSON: null, bool, numbers, strings, bytes (as base64),
// timestamps and durations (as strings), lists, and maps with string keys.
// A result type that can never be converted is a *CompileError, as is any
// other compile failure.
func (e *Env) CompileTransform(expr string) (*Program, error) {
	ast, err := e.compile(expr)
	if err != nil {
		return nil, err
	}
	if out := ast.OutputType(); !jsonable(out) {
		return nil, &CompileError{Message: fmt.Sprintf("a transform must return a value convertible to JSON, but this expression returns %s", out)}
	}
	return e.program(ast, expr, kindTransform)
}

// compile parses and checks expr.
func (e *Env) compile(expr string) (*cel.Ast, error) {
	if len(expr) > MaxExpressionLength {
		return nil, &CompileError{Message: fmt.Sprintf("expression is %d bytes long; the limit is %d", len(expr), MaxExpressionLength)}
	}
	if expr == "" {
		return nil, &CompileError{Message: "expression is empty"}
	}
	ast, iss := e.env.Compile(expr)
	if err := iss.Err(); err != nil {
		return nil, &CompileError{Message: err.Error()}
	}
	return ast, nil
}

// program plans a checked expression.
func (e *Env) program(ast *cel.Ast, expr string, kind programKind) (*Program, error) {
	prg, err := e.env.Program(ast,
		cel.CostLimit(CostLimit),
		cel.InterruptCheckFrequency(interruptCheckFrequency),
		cel.EvalOptions(cel.OptOptimize),
	)
	if err != nil {
		// Planning fails for expressions the checker accepted only in
		// edge cases (e.g. an invalid constant regular expression).
		return nil, &CompileError{Message: err.Error()}
	}
	return &Program{prg: prg, expr: expr, kind: kind}, nil
}

// jsonable reports whether values of type t can be converted to JSON.
func jsonable(t *cel.Type) bool {
	switch t.Kind() {
	case cel.BoolKind, cel.IntKind, cel.UintKind, cel.DoubleKind, cel.StringKind,
		cel.BytesKind, cel.NullTypeKind, cel.TimestampKind, cel.DurationKind,
		cel.DynKind, cel.AnyKind:
		return true
	case cel.ListKind:
		return jsonable(t.Parameters()[0])
	case cel.MapKind:
		params := t.Parameters()
		k := params[0].Kind()
		return (k == cel.StringKind || k == cel.DynKind) && jsonable(params[1])
	default:
		return false
	}
}
