package publishwire

import (
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
)

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
		got, err := Codec{}.MarshalAppend([]byte("prefix"), res)
		if wantErr != nil {
			require.Error(t, err)
			return
		}
		require.NoError(t, err)
		require.Equal(t, append([]byte("prefix"), want...), got)
	})
}

// responseSeeds are encoded responses of the shapes the codec meets. The
// first three take the fast path.
func responseSeeds(t testing.TB) [][]byte {
	var out [][]byte
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
		require.NoError(t, err)
		out = append(out, b)
	}
	unknown := protowire.AppendTag(nil, fieldResponseResults, protowire.BytesType)
	unknown = protowire.AppendBytes(unknown, protowire.AppendVarint(protowire.AppendTag(nil, 9, protowire.VarintType), 1))
	badUTF8 := protowire.AppendTag(nil, fieldResponseResults, protowire.BytesType)
	badUTF8 = protowire.AppendBytes(badUTF8, protowire.AppendString(protowire.AppendTag(nil, fieldResultEventID, protowire.BytesType), "\xff"))
	return append(out, unknown, badUTF8)
}

// FuzzDecodePublishResponse proves the codec decodes any input exactly as
// proto.Unmarshal does: the same message, or an error for the same inputs.
func FuzzDecodePublishResponse(f *testing.F) {
	for _, b := range responseSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		want := new(v1.PublishResponse)
		wantErr := proto.Unmarshal(data, want)
		got := &v1.PublishResponse{Results: []*v1.PublishResult{{EventId: "stale"}}}
		err := Codec{}.Unmarshal(data, got)
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
