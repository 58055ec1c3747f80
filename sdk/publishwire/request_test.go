package publishwire

import (
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
)

// requestSeeds are encoded requests of the shapes the codec meets. The
// first three take the fast path.
func requestSeeds(t testing.TB) [][]byte {
	reqs := []*v1.PublishRequest{
		{},
		{Topic: "orders", Events: []*v1.Event{{}}},
		{Topic: "orders", TenantId: "ten_0123456789abcdefghjkmnpqrs", Events: []*v1.Event{
			{Id: "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", Source: "/s", Type: "t", Data: []byte(`{"a":1}`), DataContentType: "application/json"},
			{
				Id: "2", Source: "/s", Type: "t", Subject: "sub", DataSchema: "https://x", PartitionKey: "k",
				Time:       &timestamppb.Timestamp{Seconds: -62135596800, Nanos: -1},
				Extensions: map[string]string{"a": "1", "": "", "é": "\u00e9"},
			},
		}},
	}
	var out [][]byte
	for _, r := range reqs {
		b, err := proto.Marshal(r)
		require.NoError(t, err)
		out = append(out, b)
	}
	// An unknown field in an event, invalid UTF-8, a field of the wrong wire
	// type, two time fields (merged), and an empty time.
	ev := protowire.AppendTag(nil, fieldEventSource, protowire.BytesType)
	ev = protowire.AppendString(ev, "/s")
	unknown := protowire.AppendTag(append([]byte(nil), ev...), 99, protowire.VarintType)
	unknown = protowire.AppendVarint(unknown, 7)
	badUTF8 := protowire.AppendTag(append([]byte(nil), ev...), fieldEventType, protowire.BytesType)
	badUTF8 = protowire.AppendString(badUTF8, "\xff")
	wrongType := protowire.AppendTag(append([]byte(nil), ev...), fieldEventID, protowire.VarintType)
	wrongType = protowire.AppendVarint(wrongType, 1)
	ts := func(field protowire.Number, v uint64) []byte {
		b := protowire.AppendTag(nil, field, protowire.VarintType)
		return protowire.AppendVarint(b, v)
	}
	twoTimes := protowire.AppendTag(append([]byte(nil), ev...), fieldEventTime, protowire.BytesType)
	twoTimes = protowire.AppendBytes(twoTimes, ts(fieldTimestampSeconds, 5))
	twoTimes = protowire.AppendTag(twoTimes, fieldEventTime, protowire.BytesType)
	twoTimes = protowire.AppendBytes(twoTimes, ts(fieldTimestampNanos, 7))
	emptyTime := protowire.AppendTag(append([]byte(nil), ev...), fieldEventTime, protowire.BytesType)
	emptyTime = protowire.AppendBytes(emptyTime, nil)
	// Unknown length-delimited fields, in an event and in an extension entry:
	// the right wire type, so only the field number sends them to protobuf.
	unknownBytes := protowire.AppendTag(append([]byte(nil), ev...), 99, protowire.BytesType)
	unknownBytes = protowire.AppendString(unknownBytes, "x")
	entry := protowire.AppendTag(nil, fieldMapKey, protowire.BytesType)
	entry = protowire.AppendString(entry, "k")
	entry = protowire.AppendTag(entry, 3, protowire.BytesType)
	entry = protowire.AppendString(entry, "x")
	unknownInEntry := protowire.AppendTag(append([]byte(nil), ev...), fieldEventExtensions, protowire.BytesType)
	unknownInEntry = protowire.AppendBytes(unknownInEntry, entry)
	for _, e := range [][]byte{unknown, badUTF8, wrongType, twoTimes, emptyTime, unknownBytes, unknownInEntry} {
		b := protowire.AppendTag(nil, fieldRequestEvents, protowire.BytesType)
		out = append(out, protowire.AppendBytes(b, e))
	}
	return out
}

// FuzzDecodePublishRequest proves the codec decodes any input exactly as
// proto.Unmarshal does: the same message, or an error for the same inputs.
func FuzzDecodePublishRequest(f *testing.F) {
	for _, b := range requestSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		want := new(v1.PublishRequest)
		wantErr := proto.Unmarshal(data, want)
		got := &v1.PublishRequest{Topic: "stale", Events: []*v1.Event{{Id: "stale"}}}
		err := Codec{}.Unmarshal(data, got)
		if wantErr != nil {
			require.Error(t, err)
			return
		}
		require.NoError(t, err)
		require.True(t, proto.Equal(want, got), "decoded\n%v\nwant\n%v", got, want)
		// What the fast path decoded is its own copy: the input may be reused.
		clear(data)
		require.True(t, proto.Equal(want, got), "the decoded request aliases the input")
	})
}

// FuzzAppendPublishRequest proves the codec encodes a PublishRequest as
// proto.Marshal does: the same bytes (with at most one extension, whose
// order is not fixed), the same message once decoded, and an error for the
// same requests. It also proves EventSize is proto.Size.
func FuzzAppendPublishRequest(f *testing.F) {
	f.Add("", "orders", "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", "/s", "t", "", "application/json", "", "", "", "", []byte(`{"a":1}`), int64(0), int32(0), uint8(1), uint8(0))
	f.Add("ten_x", "top_y", "1", "/s", "t", "sub", "", "https://x", "k", "region", "eu", []byte{}, int64(-62135596800), int32(-1), uint8(3), uint8(2))
	f.Add("", "o", "\xff", "/s", "t", "", "", "", "", "e", "\xfe", []byte(nil), int64(1), int32(1), uint8(1), uint8(1))
	f.Fuzz(func(t *testing.T, tenantID, topic, id, source, typ, subject, ct, schema, key, extName, extValue string,
		data []byte, secs int64, nanos int32, n, nExt uint8) {
		req := &v1.PublishRequest{TenantId: tenantID, Topic: topic}
		for i := range int(n % 4) {
			ev := &v1.Event{
				Id: id, Source: source, Type: typ, Subject: subject, DataContentType: ct, DataSchema: schema,
				PartitionKey: key, Data: data,
			}
			if i%2 == 1 {
				ev.Time = &timestamppb.Timestamp{Seconds: secs, Nanos: nanos}
			}
			for j := range int(nExt % 3) {
				if ev.Extensions == nil {
					ev.Extensions = map[string]string{}
				}
				ev.Extensions[extName+string(rune('a'+j))] = extValue
			}
			req.Events = append(req.Events, ev)
		}
		for _, ev := range req.Events {
			require.Equal(t, proto.Size(ev), EventSize(ev))
		}
		want, wantErr := proto.Marshal(req)
		got, err := Codec{}.MarshalAppend([]byte("prefix"), req)
		if wantErr != nil {
			require.Error(t, err)
			return
		}
		require.NoError(t, err)
		require.Equal(t, "prefix", string(got[:6]))
		got = got[6:]
		if nExt%3 <= 1 {
			require.Equal(t, want, got)
		}
		var back v1.PublishRequest
		require.NoError(t, proto.Unmarshal(got, &back))
		require.True(t, proto.Equal(req, &back), "decoded\n%v\nwant\n%v", &back, req)
	})
}
