package celenv

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/timestamppb"

	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
)

// testEnv is shared: an Env is safe for concurrent use.
var testEnv = func() *Env {
	e, err := New()
	if err != nil {
		panic(err)
	}
	return e
}()

var eventTime = time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)

// orderEvent returns a JSON order event with extensions.
func orderEvent() *v1.Event {
	return &v1.Event{
		Id:              "evt-1",
		Source:          "/shop/eu",
		Type:            "order.created",
		Subject:         "order/42",
		Time:            timestamppb.New(eventTime),
		DataContentType: "application/json",
		Extensions:      map[string]string{"region": "eu", "priority": "high", "type": "spoofed"},
		Data: []byte(`{"total": 250.5, "count": 3, "customer": {"tier": "gold", "name": "Ada"},
			"tags": ["new", "vip"], "items": [{"sku": "a", "qty": 1}, {"sku": "b", "qty": 2}]}`),
	}
}

func TestMatch(t *testing.T) {
	t.Parallel()

	plain := orderEvent()
	plain.Subject, plain.Time, plain.Extensions, plain.DataSchema = "", nil, nil, ""
	plain.DataContentType = "text/plain"
	plain.Data = []byte("hello world")
	plain.PartitionKey = "customer-7"

	empty := orderEvent()
	empty.Data = nil

	noType := orderEvent()
	noType.DataContentType = ""

	badJSON := orderEvent()
	badJSON.DataContentType = ""
	badJSON.Data = []byte(`{"total": 1`)

	ceJSON := orderEvent()
	ceJSON.DataContentType = "Application/CloudEvents+JSON; charset=utf-8"

	posing := orderEvent()
	posing.Subject, posing.Time = "", nil
	posing.Extensions = map[string]string{"subject": "fake", "time": "fake", "partitionkey": "fake"}

	binary := orderEvent()
	binary.DataContentType = "application/octet-stream"
	binary.Data = []byte{'o', 'k', 0xff}

	tests := []struct {
		name string
		expr string
		ev   *v1.Event
		want bool
	}{
		{"type equals", `event.type == "order.created"`, orderEvent(), true},
		{"type differs", `event.type == "order.cancelled"`, orderEvent(), false},
		{"source prefix", `event.source.startsWith("/shop/")`, orderEvent(), true},
		{"id", `event.id == "evt-1"`, orderEvent(), true},
		{"specversion", `event.specversion == "1.0"`, orderEvent(), true},
		{"subject", `event.subject == "order/42"`, orderEvent(), true},
		{"time is a timestamp", `event.time > timestamp("2026-01-01T00:00:00Z")`, orderEvent(), true},
		{"time field", `event.time.getFullYear() == 2026`, orderEvent(), true},
		{"datacontenttype", `event.datacontenttype == "application/json"`, orderEvent(), true},
		{"partition key defaults to id", `event.partitionkey == "evt-1"`, orderEvent(), true},
		{"partition key", `event.partitionkey == "customer-7"`, plain, true},
		{"extension", `event.region == "eu" && event.priority == "high"`, orderEvent(), true},
		{"core attribute wins over extension", `event.type == "order.created"`, orderEvent(), true},
		{"extension cannot pose as unset subject", `!has(event.subject) && !has(event.time)`, posing, true},
		{"extension cannot pose as partition key", `event.partitionkey == "evt-1"`, posing, true},
		{"has extension", `has(event.region)`, orderEvent(), true},
		{"missing extension", `has(event.region)`, plain, false},
		{"missing subject", `has(event.subject)`, plain, false},
		{"missing time", `has(event.time)`, plain, false},
		{"missing dataschema", `has(event.dataschema)`, orderEvent(), false},
		{"guarded missing extension", `has(event.region) && event.region == "eu"`, plain, false},
		{"in list", `event.region in ["eu", "us"]`, orderEvent(), true},
		{"json double vs int literal", `data.total > 100`, orderEvent(), true},
		{"json number equals int", `data.count == 3`, orderEvent(), true},
		{"json nested", `data.customer.tier == "gold"`, orderEvent(), true},
		{"json has", `has(data.customer.tier) && !has(data.customer.email)`, orderEvent(), true},
		{"json list exists", `data.items.exists(i, i.sku == "b" && i.qty >= 2)`, orderEvent(), true},
		{"json list all", `data.items.all(i, i.qty > 1)`, orderEvent(), false},
		{"json list size", `size(data.tags) == 2 && "vip" in data.tags`, orderEvent(), true},
		{"json without content type", `data.customer.name == "Ada"`, noType, true},
		{"json +json with parameters", `data.count == 3`, ceJSON, true},
		{"invalid json is a string", `data == "{\"total\": 1"`, badJSON, true},
		{"text payload is a string", `data.contains("hello")`, plain, true},
		{"binary payload is a string", `data.startsWith("ok")`, binary, true},
		{"empty payload is null", `data == null`, empty, true},
		{"strings extension", `event.type.split(".")[0] == "order" && data.customer.name.lowerAscii() == "ada"`, orderEvent(), true},
		{"strings extension format", `"%s/%d".format([event.region, 7]) == "eu/7"`, orderEvent(), true},
		{"optional field", `data.?customer.?email.orValue("none") == "none"`, orderEvent(), true},
		{"optional present", `event.?region.hasValue()`, orderEvent(), true},
		{"type check on dyn", `type(data.tags) == list`, orderEvent(), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := testEnv.CompileFilter(tt.expr)
			require.NoError(t, err)
			got, err := p.Match(context.Background(), tt.ev)
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestMatchErrors(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name string
		expr string
		want string
	}{
		{"missing attribute without has", `event.dataschema == "x"`, "no such key: dataschema"},
		{"missing json field without has", `data.customer.email == "x"`, "no such key: email"},
		{"dyn result is not bool", `data.customer.tier`, "result is string, not bool"},
		{"runtime type mismatch", `data.customer.tier > 3`, "no such overload"},
		{"division by zero", `1 / (size(data.tags) - 2) == 0`, "division by zero"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := testEnv.CompileFilter(tt.expr)
			require.NoError(t, err)
			got, err := p.Match(context.Background(), orderEvent())
			require.ErrorContains(t, err, tt.want)
			require.False(t, got)
		})
	}

	t.Run("nil event", func(t *testing.T) {
		t.Parallel()
		p, err := testEnv.CompileFilter(`true`)
		require.NoError(t, err)
		_, err = p.Match(context.Background(), nil)
		require.Error(t, err)
	})
}

// nestedLoops is an expression whose cost grows as 20^5 iterations.
const nestedLoops = `[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19]`

func TestCostLimit(t *testing.T) {
	t.Parallel()

	l := nestedLoops
	expr := l + `.all(a, ` + l + `.all(b, ` + l + `.all(c, ` + l + `.all(d, ` + l + `.all(e, a + b + c + d + e >= 0)))))`
	p, err := testEnv.CompileFilter(expr)
	require.NoError(t, err)
	_, err = p.Match(context.Background(), orderEvent())
	require.ErrorIs(t, err, ErrCostLimit)

	// Three levels stay well within the limit.
	cheap := l + `.all(a, ` + l + `.all(b, ` + l + `.all(c, a + b + c >= 0)))`
	p, err = testEnv.CompileFilter(cheap)
	require.NoError(t, err)
	ok, err := p.Match(context.Background(), orderEvent())
	require.NoError(t, err)
	require.True(t, ok)

	// Building a huge string is charged by its size, before it is built.
	a := strings.Repeat("a", 1000)
	p, err = testEnv.CompileTransform(`"` + a + `".replace("a", "` + a + `").replace("a", "` + a + `")`)
	require.NoError(t, err)
	_, err = p.Transform(context.Background(), orderEvent())
	require.ErrorIs(t, err, ErrCostLimit)
}

func TestContextCancel(t *testing.T) {
	t.Parallel()

	ev := orderEvent()
	ev.Data = []byte(`{"items": [` + strings.TrimSuffix(strings.Repeat("1,", 5000), ",") + `]}`)
	p, err := testEnv.CompileFilter(`data.items.all(x, x == 1)`)
	require.NoError(t, err)

	ok, err := p.Match(context.Background(), ev)
	require.NoError(t, err)
	require.True(t, ok)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = p.Match(ctx, ev)
	require.ErrorIs(t, err, context.Canceled)
}

func TestCompileFilterErrors(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name string
		expr string
		want string
	}{
		{"empty", ``, "empty"},
		{"syntax", `event.type ==`, "Syntax error"},
		{"unknown variable", `evnt.type == "x"`, "undeclared reference to 'evnt'"},
		{"int plus string", `1 + "a" == "1a"`, "no matching overload for '_+_' applied to '(int, string)'"},
		{"string result", `"order.created"`, "must return bool, but this expression returns string"},
		{"int result", `size(event)`, "must return bool, but this expression returns int"},
		{"string method on int", `(1).startsWith("a")`, "no matching overload"},
		{"unknown function", `event.type.shout()`, "undeclared reference to 'shout'"},
		{"bad regex constant", `event.type.matches("(")`, "missing closing )"},
		{"too long", `true || ` + strings.Repeat(" ", MaxExpressionLength), "the limit is 4096"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := testEnv.CompileFilter(tt.expr)
			require.Nil(t, p)
			var ce *CompileError
			require.ErrorAs(t, err, &ce)
			require.Contains(t, ce.Message, tt.want)
			require.Contains(t, err.Error(), tt.want)
		})
	}

	// Exactly at the limit is fine.
	expr := `true` + strings.Repeat(" ", MaxExpressionLength-4)
	_, err := testEnv.CompileFilter(expr)
	require.NoError(t, err)
}

func TestTransform(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name string
		expr string
		ev   *v1.Event
		want string
	}{
		{
			"new object",
			`{"id": event.id, "kind": event.type.split(".")[1], "total": data.total * 2.0,
			  "customer": data.customer.name, "tags": data.tags.map(t, t.upperAscii()),
			  "skus": data.items.map(i, i.sku), "region": event.?region.orValue("none"),
			  "at": event.time, "big": 9007199254740993, "ok": true, "nothing": null}`,
			orderEvent(),
			`{"id": "evt-1", "kind": "created", "total": 501, "customer": "Ada", "tags": ["NEW", "VIP"],
			  "skus": ["a", "b"], "region": "eu", "at": "2026-03-14T15:09:26Z", "big": 9007199254740993,
			  "ok": true, "nothing": null}`,
		},
		{"whole data", `data`, orderEvent(), string(orderEvent().Data)},
		{"scalar", `event.subject`, orderEvent(), `"order/42"`},
		{"null data", `data`, &v1.Event{Id: "x"}, `null`},
		{"bytes are base64", `b"hi"`, orderEvent(), `"aGk="`},
		{"duration", `duration("90s")`, orderEvent(), `"90s"`},
		{"uint", `{"n": 7u}`, orderEvent(), `{"n": 7}`},
		{"no html escaping", `"<a&b>"`, orderEvent(), `"<a&b>"`},
		{"event map", `event`, &v1.Event{Id: "x", Source: "s", Type: "t"},
			`{"id": "x", "source": "s", "type": "t", "specversion": "1.0", "partitionkey": "x"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := testEnv.CompileTransform(tt.expr)
			require.NoError(t, err)
			got, err := p.Transform(context.Background(), tt.ev)
			require.NoError(t, err)
			require.JSONEq(t, tt.want, string(got))
		})
	}
}

func TestTransformErrors(t *testing.T) {
	t.Parallel()

	compile := []struct {
		name string
		expr string
		want string
	}{
		{"type value", `type(1)`, "convertible to JSON"},
		{"int keys", `{1: "a"}`, "convertible to JSON"},
		{"nested int keys", `[{1: "a"}]`, "convertible to JSON"},
		{"optional", `optional.of(1)`, "convertible to JSON"},
		{"type error", `data + 1 + "x"`, "no matching overload"},
	}
	for _, tt := range compile {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := testEnv.CompileTransform(tt.expr)
			var ce *CompileError
			require.ErrorAs(t, err, &ce)
			require.Contains(t, ce.Message, tt.want)
		})
	}

	run := []struct {
		name string
		expr string
		want string
	}{
		{"dynamic non-string key", `{data.count: 1}`, "map key of type double"},
		{"nan", `{"x": 0.0 / 0.0}`, "no JSON form"},
		{"infinity", `[1.0 / 0.0]`, "no JSON form"},
		{"missing field", `data.nope`, "no such key"},
	}
	for _, tt := range run {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := testEnv.CompileTransform(tt.expr)
			require.NoError(t, err)
			out, err := p.Transform(context.Background(), orderEvent())
			require.ErrorContains(t, err, tt.want)
			require.Nil(t, out)
		})
	}
}

func TestConcurrentUse(t *testing.T) {
	t.Parallel()

	filter, err := testEnv.CompileFilter(`data.items.exists(i, i.sku == event.subject)`)
	require.NoError(t, err)
	transform, err := testEnv.CompileTransform(`{"sku": event.subject, "n": size(data.items)}`)
	require.NoError(t, err)

	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				ev := orderEvent()
				want := (g+i)%2 == 0
				ev.Subject = "z"
				if want {
					ev.Subject = "a"
				}
				got, err := filter.Match(context.Background(), ev)
				if err != nil || got != want {
					errs <- errors.Join(err, errors.New("wrong match"))
					return
				}
				out, err := transform.Transform(context.Background(), ev)
				if err != nil || string(out) != `{"n":2,"sku":"`+ev.Subject+`"}` {
					errs <- errors.Join(err, errors.New("wrong transform: "+string(out)))
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}

func TestIsJSON(t *testing.T) {
	t.Parallel()

	for ct, want := range map[string]bool{
		"":                                  true,
		"application/json":                  true,
		"application/json; charset=utf-8":   true,
		"APPLICATION/JSON":                  true,
		"text/json":                         true,
		"application/cloudevents+json":      true,
		"application/vnd.api+json;v=2":      true,
		"application/json;;bad":             true,
		"text/plain":                        false,
		"application/octet-stream":          false,
		"application/jsonx":                 false,
		"application/xml; note=\"+json\"":   false,
		"application/x-www-form-urlencoded": false,
	} {
		require.Equal(t, want, isJSON(ct), "%q", ct)
	}
}

func TestMatchTypes(t *testing.T) {
	t.Parallel()

	tests := []struct {
		patterns []string
		typ      string
		want     bool
	}{
		{nil, "anything", true},
		{[]string{}, "", true},
		{[]string{"order.created"}, "order.created", true},
		{[]string{"order.created"}, "order.created.v2", false},
		{[]string{"order.created"}, "Order.Created", false},
		{[]string{"order.*"}, "order.created", true},
		{[]string{"order.*"}, "order.item.added", true},
		{[]string{"order.*"}, "order", false},
		{[]string{"order.*"}, "order.", false},
		{[]string{"order.*"}, "orders.created", false},
		{[]string{"order.*"}, "order*", false},
		{[]string{"com.example.*"}, "com.example.order.created", true},
		{[]string{"user.deleted", "order.*"}, "order.paid", true},
		{[]string{"user.deleted", "order.*"}, "user.created", false},
		{[]string{"order*"}, "order.created", false},
		{[]string{"order*"}, "order*", true},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, MatchTypes(tt.patterns, tt.typ), "%q vs %q", tt.patterns, tt.typ)
	}
}

func BenchmarkMatch(b *testing.B) {
	benches := []struct {
		name string
		expr string
	}{
		{"attributes", `event.type == "order.created" && event.region == "eu"`},
		{"json-data", `event.type.startsWith("order.") && data.total > 100.0 && data.customer.tier == "gold"`},
	}
	for _, bb := range benches {
		b.Run(bb.name, func(b *testing.B) {
			p, err := testEnv.CompileFilter(bb.expr)
			require.NoError(b, err)
			ev := orderEvent()
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				ok, err := p.Match(ctx, ev)
				if err != nil || !ok {
					b.Fatalf("Match = %v, %v", ok, err)
				}
			}
		})
	}
}

func FuzzCompileFilter(f *testing.F) {
	for _, s := range []string{
		`event.type == "order.created"`, `data.total > 100`, `has(event.region)`,
		`data.items.exists(i, i.qty > 1)`, `event.type.split(".")[0]`, `data.?x.orValue(1) == 1`,
		`"%s".format([data])`, `{"a": 1}`, `[1, 2][5]`, `timestamp("x") > event.time`,
		`event.source.matches("^/shop/")`, `1 + "a"`, `((((((`, "\xff", `b"\xff" == data`,
	} {
		f.Add(s)
	}
	ev := orderEvent()
	f.Fuzz(func(t *testing.T, expr string) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		p, err := testEnv.CompileFilter(expr)
		if err != nil {
			var ce *CompileError
			require.ErrorAs(t, err, &ce)
			require.NotEmpty(t, ce.Message)
		} else {
			_, _ = p.Match(ctx, ev) // must not panic; errors are fine
		}
		p, err = testEnv.CompileTransform(expr)
		if err != nil {
			var ce *CompileError
			require.ErrorAs(t, err, &ce)
			return
		}
		if out, err := p.Transform(ctx, ev); err == nil {
			require.NotEmpty(t, out)
		}
	})
}

func FuzzData(f *testing.F) {
	f.Add("", []byte(`{"total": 5, "customer": {"tier": "gold"}}`))
	f.Add("application/json", []byte(`[1, 2, {"a": null}]`))
	f.Add("text/plain", []byte("hello"))
	f.Add("application/cloudevents+json; charset=utf-8", []byte(`"str"`))
	f.Add("", []byte{0xff, 0xfe})
	filter, err := testEnv.CompileFilter(`data == null || type(data) == string || has(data.customer)`)
	require.NoError(f, err)
	transform, err := testEnv.CompileTransform(`{"data": data}`)
	require.NoError(f, err)
	f.Fuzz(func(t *testing.T, contentType string, data []byte) {
		ev := orderEvent()
		ev.DataContentType, ev.Data = contentType, data
		_, _ = filter.Match(context.Background(), ev)
		out, err := transform.Transform(context.Background(), ev)
		require.NoError(t, err) // every data value has a JSON form
		require.NotEmpty(t, out)
	})
}
