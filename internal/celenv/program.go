package celenv

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
	"cel.dev/cel-go/interpreter"
	"google.golang.org/protobuf/types/known/structpb"

	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
)

// ErrCostLimit is wrapped by the error of an evaluation stopped for
// exceeding CostLimit.
var ErrCostLimit = errors.New("expression exceeded its cost limit")

// programKind tells filters from transforms.
type programKind int

const (
	kindFilter programKind = iota
	kindTransform
)

// String names the kind in messages.
func (k programKind) String() string {
	if k == kindFilter {
		return "filter"
	}
	return "transform"
}

// Program is a compiled filter or transform. It is safe for concurrent use.
type Program struct {
	prg  cel.Program
	expr string
	kind programKind
}

// Expression returns the source the program was compiled from.
func (p *Program) Expression() string { return p.expr }

// Match evaluates a filter against ev. A result that is not a bool, a
// failure at run time (e.g. a missing map key), the cost limit and a done
// context are errors.
func (p *Program) Match(ctx context.Context, ev *v1.Event) (bool, error) {
	out, err := p.eval(ctx, ev)
	if err != nil {
		return false, err
	}
	b, ok := out.(types.Bool)
	if !ok {
		return false, fmt.Errorf("evaluating %s: result is %s, not bool", p.kind, out.Type().TypeName())
	}
	return bool(b), nil
}

// Transform evaluates a transform against ev and returns its value as JSON.
// A value that cannot be converted to JSON (e.g. a map with int keys, NaN),
// a failure at run time, the cost limit and a done context are errors.
func (p *Program) Transform(ctx context.Context, ev *v1.Event) ([]byte, error) {
	out, err := p.eval(ctx, ev)
	if err != nil {
		return nil, err
	}
	native, err := toJSONValue(out)
	if err != nil {
		return nil, fmt.Errorf("converting %s result to JSON: %w", p.kind, err)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(native); err != nil {
		return nil, fmt.Errorf("encoding %s result as JSON: %w", p.kind, err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// eval runs the program with ev bound to the variables.
func (p *Program) eval(ctx context.Context, ev *v1.Event) (ref.Val, error) {
	if ev == nil {
		return nil, fmt.Errorf("evaluating %s: nil event", p.kind)
	}
	out, _, err := p.prg.ContextEval(ctx, newActivation(ev))
	if err != nil {
		var cancelled interpreter.EvalCancelledError
		if errors.As(err, &cancelled) && cancelled.Cause == interpreter.CostLimitExceeded {
			return nil, fmt.Errorf("evaluating %s: %w (%d)", p.kind, ErrCostLimit, CostLimit)
		}
		return nil, fmt.Errorf("evaluating %s: %w", p.kind, err)
	}
	return out, nil
}

var (
	jsonValueType = reflect.TypeFor[*structpb.Value]()
	errNotJSON    = errors.New("value has no JSON form")
)

// toJSONValue converts a CEL value to plain Go values encoding/json
// encodes: nil, bool, int64, uint64, float64, string, []any, map[string]any.
func toJSONValue(v ref.Val) (any, error) {
	switch v := v.(type) {
	case types.Null:
		return nil, nil
	case types.Bool:
		return bool(v), nil
	case types.Int:
		return int64(v), nil
	case types.Uint:
		return uint64(v), nil
	case types.Double:
		f := float64(v)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("%w: %v", errNotJSON, f)
		}
		return f, nil
	case types.String:
		return string(v), nil
	case types.Bytes:
		return base64.StdEncoding.EncodeToString(v), nil
	case *types.Err:
		return nil, v
	case traits.Mapper:
		out := make(map[string]any)
		it := v.Iterator()
		for it.HasNext() == types.True {
			k := it.Next()
			key, ok := k.(types.String)
			if !ok {
				return nil, fmt.Errorf("%w: map key of type %s", errNotJSON, k.Type().TypeName())
			}
			val, found := v.Find(k)
			if !found {
				return nil, fmt.Errorf("map key %q vanished", key)
			}
			if err, isErr := val.(*types.Err); isErr {
				return nil, err
			}
			jv, err := toJSONValue(val)
			if err != nil {
				return nil, err
			}
			out[string(key)] = jv
		}
		return out, nil
	case traits.Lister:
		n, ok := v.Size().(types.Int)
		if !ok {
			return nil, fmt.Errorf("%w: list without a size", errNotJSON)
		}
		out := make([]any, 0, int(n))
		it := v.Iterator()
		for it.HasNext() == types.True {
			jv, err := toJSONValue(it.Next())
			if err != nil {
				return nil, err
			}
			out = append(out, jv)
		}
		return out, nil
	}
	// Timestamps, durations and the like: CEL's own JSON conversion.
	native, err := v.ConvertToNative(jsonValueType)
	if err != nil {
		return nil, fmt.Errorf("%w: %s", errNotJSON, v.Type().TypeName())
	}
	pv, ok := native.(*structpb.Value)
	if !ok {
		return nil, fmt.Errorf("%w: %s", errNotJSON, v.Type().TypeName())
	}
	return pv.AsInterface(), nil
}
