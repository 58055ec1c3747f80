package switchyard

import (
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
)

// FuzzAppendPublishRequest proves the codec encodes a PublishRequest as
// proto.Marshal does: the same bytes (with at most one extension, whose
// order is not fixed), the same message once decoded, and an error for the
// same requests.
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
			require.Equal(t, proto.Size(ev), eventSize(ev))
		}
		want, wantErr := proto.Marshal(req)
		got, err := publishCodec{}.MarshalAppend([]byte("prefix"), req)
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

// FuzzDecodePublishResponse proves the codec decodes any input exactly as
// proto.Unmarshal does: the same message, or an error for the same inputs.
func FuzzDecodePublishResponse(f *testing.F) {
	for _, res := range []*v1.PublishResponse{
		{},
		{Results: []*v1.PublishResult{{}}},
		{Results: []*v1.PublishResult{
			{EventId: "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", Partition: 3, Offset: 12345},
			{EventId: "2", Error: &v1.ErrorStatus{Code: "invalid_argument", Message: "source: value is required"}},
			{EventId: "3", Partition: -1, Offset: -1},
		}},
	} {
		b, err := proto.Marshal(res)
		require.NoError(f, err)
		f.Add(b)
	}
	unknown := protowire.AppendTag(nil, fieldResponseResults, protowire.BytesType)
	unknown = protowire.AppendBytes(unknown, protowire.AppendVarint(protowire.AppendTag(nil, 9, protowire.VarintType), 1))
	f.Add(unknown)
	badUTF8 := protowire.AppendTag(nil, fieldResponseResults, protowire.BytesType)
	badUTF8 = protowire.AppendBytes(badUTF8, protowire.AppendString(protowire.AppendTag(nil, fieldResultEventID, protowire.BytesType), "\xff"))
	f.Add(badUTF8)
	f.Fuzz(func(t *testing.T, data []byte) {
		want := new(v1.PublishResponse)
		wantErr := proto.Unmarshal(data, want)
		got := &v1.PublishResponse{Results: []*v1.PublishResult{{EventId: "stale"}}}
		err := publishCodec{}.Unmarshal(data, got)
		if wantErr != nil {
			require.Error(t, err)
			return
		}
		require.NoError(t, err)
		require.True(t, proto.Equal(want, got), "decoded\n%v\nwant\n%v", got, want)
		clear(data) // the input may be reused: the result must not alias it
		require.True(t, proto.Equal(want, got), "the decoded response aliases the input")
	})
}

func TestPublishCodecFastPath(t *testing.T) {
	t.Parallel()
	b, err := proto.Marshal(&v1.PublishResponse{Results: []*v1.PublishResult{{EventId: "1", Partition: 1, Offset: 2}}})
	require.NoError(t, err)
	require.True(t, decodePublishResponse(b, new(v1.PublishResponse)))
	_, ok := appendPublishRequest(nil, &v1.PublishRequest{Topic: "t", Events: []*v1.Event{{Source: "/s", Type: "t"}}})
	require.True(t, ok)
}
