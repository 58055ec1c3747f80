package ingest

import (
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
)

// requestSeeds are encoded requests of the shapes the codec meets.
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
	for _, e := range [][]byte{unknown, badUTF8, wrongType, twoTimes, emptyTime} {
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
		err := codec{}.Unmarshal(data, got)
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

func TestCodecFastPath(t *testing.T) {
	t.Parallel()
	for i, b := range requestSeeds(t)[:3] {
		var req v1.PublishRequest
		require.True(t, decodePublishRequest(b, &req), "seed %d", i)
	}
}

// FuzzAppendPublishResponse proves the codec encodes a PublishResponse into
// the bytes proto.Marshal makes.
func FuzzAppendPublishResponse(f *testing.F) {
	f.Add("0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", int32(3), int64(12345), uint8(3), false)
	f.Add("", int32(0), int64(0), uint8(1), false)
	f.Add("e", int32(-1), int64(-1), uint8(2), true)
	f.Fuzz(func(t *testing.T, id string, partition int32, offset int64, n uint8, withError bool) {
		res := &v1.PublishResponse{}
		for i := range int(n % 8) {
			r := &v1.PublishResult{EventId: id, Partition: partition + int32(i), Offset: offset * int64(i)}
			if withError && i == 1 {
				r.Error = &v1.ErrorStatus{Code: "invalid_argument", Message: id}
			}
			res.Results = append(res.Results, r)
		}
		want, wantErr := proto.Marshal(res)
		got, err := codec{}.MarshalAppend([]byte("prefix"), res)
		if wantErr != nil {
			require.Error(t, err)
			return
		}
		require.NoError(t, err)
		require.Equal(t, append([]byte("prefix"), want...), got)
	})
}
