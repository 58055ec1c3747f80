package record

import (
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
)

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	ev := &v1.Event{
		Id: "e1", Source: "/orders", Type: "order.created", Subject: "o-1",
		Time:            timestamppb.New(time.Date(2026, 12, 3, 10, 0, 0, 123456789, time.UTC)),
		DataContentType: "application/json", DataSchema: "https://example.com/s",
		Extensions: map[string]string{"region": "eu", "tenantx": "1"},
		Data:       []byte(`{"total":12}`), PartitionKey: "customer-9",
	}
	r := Encode("ten_a", "top_b", ev)
	require.Equal(t, "sy.ten_a.top_b", r.Topic)
	require.Equal(t, "customer-9", string(r.Key))
	d, err := Decode(r)
	require.NoError(t, err)
	require.True(t, proto.Equal(ev, d.Event), "got %v", d.Event)
	require.Equal(t, "ten_a", d.TenantID)
	require.Equal(t, "top_b", d.TopicID)
}

func TestKeyDefaultsToID(t *testing.T) {
	t.Parallel()
	ev := &v1.Event{Id: "e1", Source: "s", Type: "t", Time: timestamppb.Now()}
	r := Encode("ten_a", "top_b", ev)
	require.Equal(t, "e1", string(r.Key))
	d, err := Decode(r)
	require.NoError(t, err)
	require.Empty(t, d.Event.PartitionKey)
}

func TestDecodeRejects(t *testing.T) {
	t.Parallel()
	for name, hs := range map[string][]kgo.RecordHeader{
		"no id":        {{Key: "ce_source", Value: []byte("s")}, {Key: "ce_type", Value: []byte("t")}},
		"bad time":     {{Key: "ce_id", Value: []byte("1")}, {Key: "ce_source", Value: []byte("s")}, {Key: "ce_type", Value: []byte("t")}, {Key: "ce_time", Value: []byte("yesterday")}},
		"spec version": {{Key: "ce_specversion", Value: []byte("0.3")}, {Key: "ce_id", Value: []byte("1")}},
	} {
		_, err := Decode(&kgo.Record{Headers: hs})
		require.ErrorIs(t, err, ErrMalformed, name)
	}
}

func TestSetHeader(t *testing.T) {
	t.Parallel()
	r := &kgo.Record{Headers: []kgo.RecordHeader{{Key: "a", Value: []byte("1")}, {Key: "b", Value: []byte("2")}, {Key: "a", Value: []byte("3")}}}
	SetHeader(r, "a", "4")
	v, ok := Header(r, "a")
	require.True(t, ok)
	require.Equal(t, "4", v)
	require.Len(t, r.Headers, 2)
	_, ok = Header(r, "c")
	require.False(t, ok)
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte("k"), []byte("v"), "ce_id", "1", "ce_time", "2026-01-01T00:00:00Z")
	f.Fuzz(func(t *testing.T, key, value []byte, h1, v1s, h2, v2 string) {
		r := &kgo.Record{Key: key, Value: value, Headers: []kgo.RecordHeader{
			{Key: h1, Value: []byte(v1s)}, {Key: h2, Value: []byte(v2)},
			{Key: "ce_source", Value: []byte("s")}, {Key: "ce_type", Value: []byte("t")},
		}}
		d, err := Decode(r)
		if err != nil {
			return
		}
		// What decodes must survive a round trip unchanged.
		d2, err := Decode(Encode(d.TenantID, d.TopicID, d.Event))
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if !proto.Equal(d.Event, d2.Event) {
			t.Fatalf("round trip changed the event:\n%v\n%v", d.Event, d2.Event)
		}
	})
}

func TestEncoderAppendsExtraHeaders(t *testing.T) {
	t.Parallel()
	ev := &v1.Event{
		Id: "e1", Source: "/orders", Type: "order.created",
		Time:       timestamppb.New(time.Date(2026, 12, 3, 10, 0, 0, 5, time.UTC)),
		Extensions: map[string]string{"region": "eu"},
	}
	extra := []kgo.RecordHeader{{Key: "traceparent", Value: []byte("00-1-2-01")}}
	var r kgo.Record
	NewEncoder("ten_a", "top_b", extra).Encode(&r, ev)
	want := Encode("ten_a", "top_b", ev)
	require.Equal(t, want.Topic, r.Topic)
	require.Equal(t, want.Key, r.Key)
	require.ElementsMatch(t, append(want.Headers, extra...), r.Headers)
	v, ok := Header(&r, "ce_time")
	require.True(t, ok)
	require.Equal(t, "2026-12-03T10:00:00.000000005Z", v)
	// Values share a buffer: growing one must not overwrite the next.
	r.Headers[0].Value = append(r.Headers[0].Value, 'x')
	require.Equal(t, "e1", string(r.Headers[1].Value))
}

func BenchmarkEncode(b *testing.B) {
	ev := &v1.Event{
		Id: "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", Source: "/bench", Type: "bench.event",
		Time: timestamppb.Now(), DataContentType: "application/json", Data: []byte(`{"order":12345}`),
	}
	extra := []kgo.RecordHeader{{Key: "traceparent", Value: []byte("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")}}
	e := NewEncoder("ten_a", "top_b", extra)
	recs := make([]kgo.Record, 1)
	b.ReportAllocs()
	for b.Loop() {
		e.Encode(&recs[0], ev)
	}
}

func TestEncoderRecordsDoNotShareRoom(t *testing.T) {
	t.Parallel()
	e := NewEncoder("ten_a", "top_b", nil)
	recs := make([]kgo.Record, 3000) // several chunks of room
	for i := range recs {
		ev := &v1.Event{Id: strings.Repeat("i", i%300+1), Source: "/s", Type: "t", Time: timestamppb.Now(),
			Extensions: map[string]string{"n": strconv.Itoa(i)}}
		e.Encode(&recs[i], ev)
	}
	for i := range recs {
		d, err := Decode(&recs[i])
		require.NoError(t, err)
		require.Equal(t, strings.Repeat("i", i%300+1), d.Event.GetId())
		require.Equal(t, strconv.Itoa(i), d.Event.GetExtensions()["n"])
		require.Equal(t, "ten_a", d.TenantID)
	}
}

func TestEncodeAllocatesOnlyWhatTheRecordNeeds(t *testing.T) {
	ev := &v1.Event{Id: "e1", Source: "/s", Type: "t", Time: timestamppb.Now()}
	require.LessOrEqual(t, testing.AllocsPerRun(100, func() { Encode("ten_a", "top_b", ev) }), 4.0)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 100 {
		Encode("ten_a", "top_b", ev)
	}
	runtime.ReadMemStats(&after)
	require.Less(t, (after.TotalAlloc-before.TotalAlloc)/100, uint64(2048), "bytes allocated per record")
}

func TestEncoderSharesCommonValues(t *testing.T) {
	t.Parallel()
	e := NewEncoder("ten_a", "top_b", nil)
	at := timestamppb.New(time.Date(2026, 12, 3, 10, 0, 0, 7, time.UTC))
	later := timestamppb.New(time.Date(2026, 12, 3, 10, 0, 1, 0, time.UTC))
	recs := make([]kgo.Record, 3)
	for i, ts := range []*timestamppb.Timestamp{at, at, later} {
		e.Encode(&recs[i], &v1.Event{Id: strconv.Itoa(i), Source: "/s", Type: "t", Time: ts})
	}
	for i, want := range []string{"2026-12-03T10:00:00.000000007Z", "2026-12-03T10:00:00.000000007Z", "2026-12-03T10:00:01Z"} {
		v, ok := Header(&recs[i], "ce_time")
		require.True(t, ok)
		require.Equal(t, want, v)
		v, _ = Header(&recs[i], "sy-tenant")
		require.Equal(t, "ten_a", v)
	}
	// Shared values have no room to append into.
	for _, h := range recs[0].Headers {
		require.Equal(t, len(h.Value), cap(h.Value), h.Key)
	}
}
