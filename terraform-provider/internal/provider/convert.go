package provider

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/switchyard-dev/switchyard/sdk/switchyard"
)

// clientFrom returns the client the provider configured, adding an error
// when data is of another type. A nil data (provider not configured yet) is
// no error: the framework calls Configure on resources before that too.
func clientFrom(data any, diags *diag.Diagnostics) *switchyard.Client {
	if data == nil {
		return nil
	}
	c, ok := data.(*switchyard.Client)
	if !ok {
		diags.AddError("Unexpected provider data", fmt.Sprintf("expected *switchyard.Client, got %T", data))
		return nil
	}
	return c
}

// addAPIError reports an API error, with one attribute error per field
// violation the server named.
func addAPIError(diags *diag.Diagnostics, action string, err error) {
	var e *switchyard.Error
	if errors.As(err, &e) {
		for _, v := range e.FieldViolations() {
			diags.AddError(action+" failed: invalid "+v.Field, v.Message+" (rule "+v.Rule+")")
		}
	}
	diags.AddError(action+" failed", err.Error())
}

// isNotFound says whether err means the object does not exist.
func isNotFound(err error) bool { return errors.Is(err, switchyard.ErrNotFound) }

// formatDuration writes d in the shortest Go form: "168h", "1h30m", "90s"
// rather than time.Duration's "168h0m0s".
func formatDuration(d time.Duration) string {
	if d == 0 {
		return "0s"
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// durationValue returns the server's duration d as a string, keeping prior
// (the configured or stored spelling) when it means the same duration.
func durationValue(prior types.String, d *durationpb.Duration) types.String {
	if d == nil {
		return types.StringValue("")
	}
	if !prior.IsNull() && !prior.IsUnknown() {
		if p, err := time.ParseDuration(prior.ValueString()); err == nil && p == d.AsDuration() {
			return prior
		}
	}
	return types.StringValue(formatDuration(d.AsDuration()))
}

// durationProto parses a duration attribute; null, unknown or empty give nil
// (the server default).
func durationProto(s types.String, p path.Path, diags *diag.Diagnostics) *durationpb.Duration {
	if s.IsNull() || s.IsUnknown() || s.ValueString() == "" {
		return nil
	}
	d, err := time.ParseDuration(s.ValueString())
	if err != nil {
		diags.AddAttributeError(p, "Invalid "+p.String(), err.Error())
		return nil
	}
	return durationpb.New(d)
}

// timeValue returns a timestamp as RFC 3339, keeping prior when it names the
// same instant; a nil timestamp is null.
func timeValue(prior types.String, ts *timestamppb.Timestamp) types.String {
	if ts == nil {
		return types.StringNull()
	}
	if !prior.IsNull() && !prior.IsUnknown() {
		if p, err := time.Parse(time.RFC3339Nano, prior.ValueString()); err == nil && p.Equal(ts.AsTime()) {
			return prior
		}
	}
	return types.StringValue(ts.AsTime().UTC().Format(time.RFC3339Nano))
}

// timeProto parses a timestamp attribute; null, unknown or empty give nil.
func timeProto(s types.String, p path.Path, diags *diag.Diagnostics) *timestamppb.Timestamp {
	if s.IsNull() || s.IsUnknown() || s.ValueString() == "" {
		return nil
	}
	t, err := time.Parse(time.RFC3339Nano, s.ValueString())
	if err != nil {
		diags.AddAttributeError(p, "Invalid "+p.String(), err.Error())
		return nil
	}
	return timestamppb.New(t)
}

// u32 converts a known int64 attribute to the API's uint32; null and unknown
// give 0 (the server default).
func u32(v types.Int64) uint32 {
	if v.IsNull() || v.IsUnknown() {
		return 0
	}
	return uint32(v.ValueInt64())
}

// i64 converts an API uint32 to an attribute.
func i64(n uint32) types.Int64 { return types.Int64Value(int64(n)) }

// stringsOf returns the elements of a list of strings; null and unknown give
// nil.
func stringsOf(l types.List) []string {
	if l.IsNull() || l.IsUnknown() {
		return nil
	}
	out := make([]string, 0, len(l.Elements()))
	for _, e := range l.Elements() {
		if s, ok := e.(types.String); ok && !s.IsNull() && !s.IsUnknown() {
			out = append(out, s.ValueString())
		}
	}
	return out
}

// listOf returns a list of strings; nil gives an empty list.
func listOf(ss []string) types.List {
	vals := make([]attr.Value, 0, len(ss))
	for _, s := range ss {
		vals = append(vals, types.StringValue(s))
	}
	return types.ListValueMust(types.StringType, vals)
}

// enumName strips prefix from an enum's name ("ORDERING_MODE_KEY" → "KEY").
func enumName(name, prefix string) string { return strings.TrimPrefix(name, prefix) }

// enumValue looks up the enum value of short name s in values.
func enumValue(values map[string]int32, prefix, s string) int32 { return values[prefix+s] }
