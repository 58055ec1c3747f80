package cloudevents_test

import (
	"bytes"
	"encoding/json"
	"maps"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-dev/switchyard/sdk/cloudevents"
	"github.com/switchyard-dev/switchyard/sdk/switchyard"
)

var when = time.Date(2026, 3, 14, 15, 9, 26, 535897932, time.UTC)

// full is an event with every attribute set.
func full() *switchyard.Event {
	return &switchyard.Event{
		ID: "ord-1", Source: "/shop/eu", Type: "com.example.order.created", Subject: "orders/1",
		Time: when, DataContentType: "application/json", DataSchema: "https://example.com/order.json",
		Data: []byte(`{"total":99.5}`), PartitionKey: "cust-7",
		Extensions: map[string]string{"traceparent": "00-abc-def-01", "tenant": "acme"},
	}
}

func TestToCloudEvent(t *testing.T) {
	ce, err := cloudevents.ToCloudEvent(full())
	require.NoError(t, err)
	assert.Equal(t, event.CloudEventsVersionV1, ce.SpecVersion())
	assert.Equal(t, "ord-1", ce.ID())
	assert.Equal(t, "/shop/eu", ce.Source())
	assert.Equal(t, "com.example.order.created", ce.Type())
	assert.Equal(t, "orders/1", ce.Subject())
	assert.True(t, when.Equal(ce.Time()))
	assert.Equal(t, "application/json", ce.DataContentType())
	assert.Equal(t, "https://example.com/order.json", ce.DataSchema())
	assert.Equal(t, `{"total":99.5}`, string(ce.Data()))
	assert.Equal(t, map[string]any{"traceparent": "00-abc-def-01", "tenant": "acme", "partitionkey": "cust-7"}, ce.Extensions())

	// JSON data stays JSON in the JSON format; other data is base64.
	b, err := json.Marshal(ce)
	require.NoError(t, err)
	assert.Contains(t, string(b), `"data":{"total":99.5}`)
	bin := &switchyard.Event{ID: "1", Source: "/s", Type: "t", DataContentType: "application/octet-stream", Data: []byte{0, 1, 2}}
	ce, err = cloudevents.ToCloudEvent(bin)
	require.NoError(t, err)
	b, err = json.Marshal(ce)
	require.NoError(t, err)
	assert.Contains(t, string(b), `"data_base64":"AAEC"`)
}

func TestToCloudEventOptionalAttributes(t *testing.T) {
	ce, err := cloudevents.ToCloudEvent(&switchyard.Event{ID: "1", Source: "/s", Type: "t"})
	require.NoError(t, err)
	assert.Empty(t, ce.Subject())
	assert.True(t, ce.Time().IsZero())
	assert.Empty(t, ce.DataContentType())
	assert.Empty(t, ce.DataSchema())
	assert.Nil(t, ce.Data())
	assert.Empty(t, ce.Extensions())
}

func TestToCloudEventPartitionKeyWins(t *testing.T) {
	e := &switchyard.Event{ID: "1", Source: "/s", Type: "t", PartitionKey: "k1",
		Extensions: map[string]string{"partitionkey": "k0"}}
	ce, err := cloudevents.ToCloudEvent(e)
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"partitionkey": "k1"}, ce.Extensions())
}

func TestToCloudEventErrors(t *testing.T) {
	for name, e := range map[string]*switchyard.Event{
		"nil":                nil,
		"no id":              {Source: "/s", Type: "t"},
		"no source":          {ID: "1", Type: "t"},
		"no type":            {ID: "1", Source: "/s"},
		"bad source":         {ID: "1", Source: "http://[::1", Type: "t"},
		"bad content type":   {ID: "1", Source: "/s", Type: "t", DataContentType: "not a media type"},
		"bad extension name": {ID: "1", Source: "/s", Type: "t", Extensions: map[string]string{"bad-name": "v"}},
		"upper-case name":    {ID: "1", Source: "/s", Type: "t", Extensions: map[string]string{"Trace": "v"}},
		"long name":          {ID: "1", Source: "/s", Type: "t", Extensions: map[string]string{"abcdefghijklmnopqrstu": "v"}},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := cloudevents.ToCloudEvent(e)
			assert.Error(t, err)
		})
	}
}

func TestFromCloudEvent(t *testing.T) {
	ce := event.New()
	ce.SetID("ord-1")
	ce.SetSource("/shop/eu")
	ce.SetType("com.example.order.created")
	ce.SetSubject("orders/1")
	ce.SetTime(when)
	ce.SetDataSchema("https://example.com/order.json")
	require.NoError(t, ce.SetData("application/json", map[string]any{"total": 99.5}))
	ce.SetExtension("partitionkey", "cust-7")
	ce.SetExtension("tenant", "acme")
	ce.SetExtension("attempt", 3)
	ce.SetExtension("urgent", true)
	ce.SetExtension("blob", []byte{0, 1, 2})
	ce.SetExtension("at", types.Timestamp{Time: when})
	require.Empty(t, ce.FieldErrors)

	e, err := cloudevents.FromCloudEvent(ce)
	require.NoError(t, err)
	assert.Equal(t, &switchyard.Event{
		ID: "ord-1", Source: "/shop/eu", Type: "com.example.order.created", Subject: "orders/1",
		Time: e.Time, DataContentType: "application/json", DataSchema: "https://example.com/order.json",
		Data: []byte(`{"total":99.5}`), PartitionKey: "cust-7",
		Extensions: map[string]string{"tenant": "acme", "attempt": "3", "urgent": "true", "blob": "AAEC",
			"at": "2026-03-14T15:09:26.535897932Z"},
	}, e)
	assert.True(t, when.Equal(e.Time))
}

func TestFromCloudEventV03(t *testing.T) {
	ce := event.New(event.CloudEventsVersionV03)
	ce.SetID("1")
	ce.SetSource("/s")
	ce.SetType("t")
	ce.SetExtension("partitionkey", "k")
	e, err := cloudevents.FromCloudEvent(ce)
	require.NoError(t, err)
	assert.Equal(t, &switchyard.Event{ID: "1", Source: "/s", Type: "t", PartitionKey: "k"}, e)
}

func TestFromCloudEventErrors(t *testing.T) {
	_, err := cloudevents.FromCloudEvent(event.Event{})
	assert.Error(t, err, "no context")
	ce := event.New()
	ce.SetSource("/s")
	ce.SetType("t")
	_, err = cloudevents.FromCloudEvent(ce) // no id
	assert.Error(t, err)
}

func TestRoundTrip(t *testing.T) {
	for name, e := range map[string]*switchyard.Event{
		"full":          full(),
		"minimal":       {ID: "1", Source: "urn:x", Type: "t"},
		"binary data":   {ID: "1", Source: "/s", Type: "t", DataContentType: "application/octet-stream", Data: []byte{0xff, 0}},
		"empty data":    {ID: "1", Source: "/s", Type: "t", Data: []byte{}},
		"local time":    {ID: "1", Source: "/s", Type: "t", Time: when.In(time.FixedZone("X", 3600))},
		"new event":     must(switchyard.NewEvent("/s", "t", switchyard.WithJSONData([]int{1}), switchyard.WithPartitionKey("k"))),
		"no partition":  {ID: "1", Source: "/s", Type: "t", Extensions: map[string]string{"a1": ""}},
		"spaces in ids": {ID: " 1 ", Source: "/s", Type: " t ", Subject: " s "},
	} {
		t.Run(name, func(t *testing.T) {
			ce, err := cloudevents.ToCloudEvent(e)
			require.NoError(t, err)
			got, err := cloudevents.FromCloudEvent(ce)
			require.NoError(t, err)
			assertSame(t, e, got)
		})
	}
}

func must(e *switchyard.Event, err error) *switchyard.Event {
	if err != nil {
		panic(err)
	}
	return e
}

// assertSame checks that got is want after a round trip: times equal as
// instants, nil and empty data and extensions alike.
func assertSame(t testing.TB, want, got *switchyard.Event) {
	t.Helper()
	w, g := *want, *got
	if !w.Time.Equal(g.Time) {
		t.Fatalf("time: want %v, got %v", w.Time, g.Time)
	}
	if !bytes.Equal(w.Data, g.Data) {
		t.Fatalf("data: want %q, got %q", w.Data, g.Data)
	}
	if !maps.Equal(w.Extensions, g.Extensions) {
		t.Fatalf("extensions: want %v, got %v", w.Extensions, g.Extensions)
	}
	w.Time, g.Time, w.Data, g.Data, w.Extensions, g.Extensions = time.Time{}, time.Time{}, nil, nil, nil, nil
	require.Equal(t, w, g)
}

// FuzzRoundTrip converts events to CloudEvents and back: every event the
// conversion accepts comes back the same, and so does its JSON form.
func FuzzRoundTrip(f *testing.F) {
	f.Add("ord-1", "/shop", "order.created", "orders/1", int64(1_700_000_000_123), "application/json",
		"https://example.com/s.json", []byte(`{"a":1}`), "cust-7", "traceparent", "00-ab")
	f.Add("1", "urn:x:y", "t", "", int64(0), "", "", []byte(nil), "", "", "")
	f.Add("1", "/s", "t", "", int64(-1), "text/plain; charset=utf-8", "", []byte("hi"), "k", "x1", "")
	f.Fuzz(func(t *testing.T, id, source, typ, subject string, ms int64, ct, schema string, data []byte,
		key, extName, extValue string) {
		e := &switchyard.Event{ID: id, Source: source, Type: typ, Subject: subject, DataContentType: ct,
			DataSchema: schema, Data: data, PartitionKey: key}
		if ms != 0 {
			e.Time = time.UnixMilli(ms)
		}
		if extName != "" && extName != cloudevents.PartitionKeyExtension {
			e.Extensions = map[string]string{extName: extValue}
		}
		ce, err := cloudevents.ToCloudEvent(e)
		if err != nil {
			t.Skip() // not a valid CloudEvent
		}
		// URI references are kept in their normalized form.
		if ce.Source() != source || ce.DataSchema() != schema {
			t.Skip()
		}
		got, err := cloudevents.FromCloudEvent(ce)
		require.NoError(t, err)
		assertSame(t, e, got)

		// Through the JSON format too, when the data can be carried as is.
		if ct != "" && len(data) == 0 {
			return // the JSON format drops empty data
		}
		b, err := json.Marshal(ce)
		require.NoError(t, err)
		var back event.Event
		require.NoError(t, json.Unmarshal(b, &back), "%s", b)
		got, err = cloudevents.FromCloudEvent(back)
		require.NoError(t, err)
		assertSame(t, e, got)
	})
}
