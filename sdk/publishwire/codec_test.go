package publishwire

import (
	"testing"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
)

var _ connect.Codec = Codec{}

// TestCodecFastPath checks that the common shapes take the hand-written
// path rather than falling back to protobuf.
func TestCodecFastPath(t *testing.T) {
	t.Parallel()
	for i, b := range requestSeeds(t)[:3] {
		require.True(t, decodePublishRequest(b, new(v1.PublishRequest)), "request seed %d", i)
	}
	for i, b := range responseSeeds(t)[:3] {
		require.True(t, decodePublishResponse(b, new(v1.PublishResponse)), "response seed %d", i)
	}
	_, ok := appendPublishRequest(nil, &v1.PublishRequest{Topic: "t", Events: []*v1.Event{{Source: "/s", Type: "t"}}})
	require.True(t, ok)
	_, ok = appendPublishResponse(nil, &v1.PublishResponse{Results: []*v1.PublishResult{{EventId: "1", Partition: 1, Offset: 2}}})
	require.True(t, ok)
}

// TestCodecRoundTrip sends a request and a response through Marshal and
// Unmarshal, and a message of another type through protobuf.
func TestCodecRoundTrip(t *testing.T) {
	t.Parallel()
	var c Codec
	require.Equal(t, "proto", c.Name())
	require.True(t, c.IsBinary())
	for _, msg := range []proto.Message{
		&v1.PublishRequest{TenantId: "ten_x", Topic: "orders", Events: []*v1.Event{
			{Id: "1", Source: "/s", Type: "t", Data: []byte("{}"), Time: &timestamppb.Timestamp{Seconds: 1, Nanos: 2}},
			{Id: "2", Source: "/s", Type: "t", Extensions: map[string]string{"region": "eu"}, PartitionKey: "k"},
		}},
		&v1.PublishResponse{Results: []*v1.PublishResult{
			{EventId: "1", Partition: 2, Offset: 3},
			{EventId: "2", Error: &v1.ErrorStatus{Code: "invalid_argument", Message: "m"}},
		}},
		&v1.ErrorStatus{Code: "c", Message: "m"},
	} {
		b, err := c.Marshal(msg)
		require.NoError(t, err)
		stable, err := c.MarshalStable(msg)
		require.NoError(t, err)
		for _, enc := range [][]byte{b, stable} {
			back := msg.ProtoReflect().New().Interface()
			require.NoError(t, c.Unmarshal(enc, back))
			require.True(t, proto.Equal(msg, back), "decoded\n%v\nwant\n%v", back, msg)
		}
	}
	_, err := c.Marshal("not a message")
	require.Error(t, err)
	require.Error(t, c.Unmarshal(nil, new(string)))
}

// TestCodecKeepsUnknownFields checks that a request whose event or time
// carries unknown fields is left to protobuf, which keeps them.
func TestCodecKeepsUnknownFields(t *testing.T) {
	t.Parallel()
	extra := protowire.AppendVarint(protowire.AppendTag(nil, 99, protowire.VarintType), 7)
	ev := &v1.Event{Source: "/s", Type: "t"}
	ev.ProtoReflect().SetUnknown(extra)
	ts := &timestamppb.Timestamp{Seconds: 1}
	ts.ProtoReflect().SetUnknown(extra)
	for _, req := range []*v1.PublishRequest{
		{Topic: "t", Events: []*v1.Event{ev}},
		{Topic: "t", Events: []*v1.Event{{Source: "/s", Time: ts}}},
	} {
		want, err := proto.Marshal(req)
		require.NoError(t, err)
		got, err := Codec{}.Marshal(req)
		require.NoError(t, err)
		require.Equal(t, want, got)
	}
}
