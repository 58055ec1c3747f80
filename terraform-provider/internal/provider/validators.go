package provider

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

// The plan-time validators below mirror the API's rules, so that a bad
// configuration fails at plan with the attribute named rather than at apply.

// slugPattern is the API's rule for names.
var slugPattern = regexp.MustCompile(`^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$`)

// idPattern returns the rule for ids with prefix ("ten", "reg", "top", ...).
func idPattern(prefix string) *regexp.Regexp {
	return regexp.MustCompile(`^` + prefix + `_[0-9a-z]{26}$`)
}

type stringCheck struct {
	desc  string
	check func(string) error
}

func (v stringCheck) Description(context.Context) string         { return v.desc }
func (v stringCheck) MarkdownDescription(context.Context) string { return v.desc }

func (v stringCheck) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if err := v.check(req.ConfigValue.ValueString()); err != nil {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid "+req.Path.String(),
			fmt.Sprintf("%s: %v", req.Path, err))
	}
}

// slug accepts the API's names: lower-case letters, digits and dashes.
func slug() validator.String {
	return matches(slugPattern, "must be 1 to 63 lower-case letters, digits and dashes, starting with a letter and not ending with a dash")
}

// matches accepts strings matching re.
func matches(re *regexp.Regexp, msg string) validator.String {
	return stringCheck{desc: msg, check: func(s string) error {
		if !re.MatchString(s) {
			return fmt.Errorf("%q %s", s, msg)
		}
		return nil
	}}
}

// idOf accepts ids of one kind ("ten", "reg", "top", "pip", "key").
func idOf(prefix string) validator.String {
	return matches(idPattern(prefix), "must be an id of the form "+prefix+"_ followed by 26 lower-case base32 characters")
}

// maxLen accepts strings of at most n characters.
func maxLen(n int) validator.String {
	return stringCheck{desc: fmt.Sprintf("at most %d characters", n), check: func(s string) error {
		if len([]rune(s)) > n {
			return fmt.Errorf("must be at most %d characters, is %d", n, len([]rune(s)))
		}
		return nil
	}}
}

// oneOf accepts one of values.
func oneOf(values ...string) validator.String {
	return stringCheck{desc: "one of " + strings.Join(values, ", "), check: func(s string) error {
		if !slices.Contains(values, s) {
			return fmt.Errorf("%q is not one of %s", s, strings.Join(values, ", "))
		}
		return nil
	}}
}

// httpURL accepts absolute http and https URLs.
func httpURL() validator.String {
	return stringCheck{desc: "an http or https URL", check: func(s string) error {
		u, err := url.Parse(s)
		if err != nil {
			return fmt.Errorf("%q is not a URL: %v", s, err)
		}
		if u.Scheme != "http" && u.Scheme != "https" {
			return fmt.Errorf("%q must use the http or https scheme", s)
		}
		if u.Host == "" {
			return fmt.Errorf("%q has no host", s)
		}
		return nil
	}}
}

// durationBetween accepts Go duration strings ("90s", "168h") from lo to hi.
func durationBetween(lo, hi time.Duration) validator.String {
	return stringCheck{desc: fmt.Sprintf("a duration from %s to %s", formatDuration(lo), formatDuration(hi)),
		check: func(s string) error {
			d, err := time.ParseDuration(s)
			if err != nil {
				return fmt.Errorf("%q is not a duration such as \"90s\" or \"168h\"", s)
			}
			if d < lo || d > hi {
				return fmt.Errorf("%s is out of range: from %s to %s", s, formatDuration(lo), formatDuration(hi))
			}
			return nil
		}}
}

// rfc3339 accepts RFC 3339 timestamps.
func rfc3339() validator.String {
	return stringCheck{desc: "an RFC 3339 timestamp", check: func(s string) error {
		if _, err := time.Parse(time.RFC3339, s); err != nil {
			return fmt.Errorf("%q is not an RFC 3339 timestamp such as \"2030-01-02T15:04:05Z\"", s)
		}
		return nil
	}}
}

type int64Range struct{ lo, hi int64 }

func (v int64Range) Description(context.Context) string {
	return fmt.Sprintf("from %d to %d", v.lo, v.hi)
}
func (v int64Range) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (v int64Range) ValidateInt64(_ context.Context, req validator.Int64Request, resp *validator.Int64Response) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if n := req.ConfigValue.ValueInt64(); n < v.lo || n > v.hi {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid "+req.Path.String(),
			fmt.Sprintf("%s: %d is out of range: must be from %d to %d", req.Path, n, v.lo, v.hi))
	}
}

// between accepts integers from lo to hi.
func between(lo, hi int64) validator.Int64 { return int64Range{lo, hi} }

type float64Range struct {
	lo, hi    float64
	exclusive bool
}

func (v float64Range) Description(context.Context) string {
	if v.exclusive {
		return fmt.Sprintf("greater than %g, at most %g", v.lo, v.hi)
	}
	return fmt.Sprintf("from %g to %g", v.lo, v.hi)
}
func (v float64Range) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (v float64Range) ValidateFloat64(ctx context.Context, req validator.Float64Request, resp *validator.Float64Response) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	f := req.ConfigValue.ValueFloat64()
	if f > v.hi || f < v.lo || (v.exclusive && f == v.lo) {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid "+req.Path.String(),
			fmt.Sprintf("%s: %g is out of range: must be %s", req.Path, f, v.Description(ctx)))
	}
}

type listItems struct {
	desc  string
	check func(string) error
}

func (v listItems) Description(context.Context) string         { return v.desc }
func (v listItems) MarkdownDescription(context.Context) string { return v.desc }

func (v listItems) ValidateList(ctx context.Context, req validator.ListRequest, resp *validator.ListResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	var items []*string
	resp.Diagnostics.Append(req.ConfigValue.ElementsAs(ctx, &items, true)...)
	seen := map[string]bool{}
	for i, s := range items {
		if s == nil {
			continue
		}
		p := req.Path.AtListIndex(i)
		if seen[*s] {
			resp.Diagnostics.AddAttributeError(p, "Invalid "+req.Path.String(),
				fmt.Sprintf("%s: %q appears twice", req.Path, *s))
		}
		seen[*s] = true
		if err := v.check(*s); err != nil {
			resp.Diagnostics.AddAttributeError(p, "Invalid "+req.Path.String(),
				fmt.Sprintf("%s: %v", p, err))
		}
	}
}

// eachString checks every item of a list of strings, and that none repeats.
func eachString(s validator.String) validator.List {
	sc := s.(stringCheck)
	return listItems{desc: "unique items, each " + sc.desc, check: sc.check}
}

// emptyOr accepts the empty string or what v accepts.
func emptyOr(v validator.String) validator.String {
	sc := v.(stringCheck)
	return stringCheck{desc: "empty, or " + sc.desc, check: func(s string) error {
		if s == "" {
			return nil
		}
		return sc.check(s)
	}}
}

type listSizeCheck struct{ lo, hi int }

func (v listSizeCheck) Description(context.Context) string {
	return fmt.Sprintf("%d to %d items", v.lo, v.hi)
}
func (v listSizeCheck) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (v listSizeCheck) ValidateList(_ context.Context, req validator.ListRequest, resp *validator.ListResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if n := len(req.ConfigValue.Elements()); n < v.lo || n > v.hi {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid "+req.Path.String(),
			fmt.Sprintf("%s: has %d items, must have %d to %d", req.Path, n, v.lo, v.hi))
	}
}

// listSize accepts lists of lo to hi items.
func listSize(lo, hi int) validator.List { return listSizeCheck{lo, hi} }

// eventTypePattern is the API's rule for filter event types.
var eventTypePattern = regexp.MustCompile(`^[A-Za-z0-9._:/-]+(\.\*)?$`)

// kafkaTopicPattern is the API's rule for Kafka destination topics.
var kafkaTopicPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,249}$`)

// statusCodes accepts lists of unique HTTP error status codes (400 to 599).
type statusCodes struct{}

func (statusCodes) Description(context.Context) string {
	return "at most 32 unique HTTP status codes from 400 to 599"
}
func (v statusCodes) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (statusCodes) ValidateList(_ context.Context, req validator.ListRequest, resp *validator.ListResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if n := len(req.ConfigValue.Elements()); n > 32 {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid "+req.Path.String(),
			fmt.Sprintf("%s: has %d items, at most 32 allowed", req.Path, n))
	}
	seen := map[int64]bool{}
	for i, e := range req.ConfigValue.Elements() {
		n, ok := e.(types.Int64)
		if !ok || n.IsNull() || n.IsUnknown() {
			continue
		}
		p := req.Path.AtListIndex(i)
		switch c := n.ValueInt64(); {
		case c < 400 || c > 599:
			resp.Diagnostics.AddAttributeError(p, "Invalid "+req.Path.String(),
				fmt.Sprintf("%s: %d is not an HTTP error status code (400 to 599)", p, c))
		case seen[c]:
			resp.Diagnostics.AddAttributeError(p, "Invalid "+req.Path.String(),
				fmt.Sprintf("%s: %d appears twice", req.Path, c))
		}
		seen[n.ValueInt64()] = true
	}
}
