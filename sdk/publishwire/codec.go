package publishwire

import (
	"fmt"

	"google.golang.org/protobuf/proto"

	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
)

// Codec is Connect's binary Protobuf codec ("proto", for Connect, gRPC and
// gRPC-Web) with the publish fast path of the package: it encodes and
// decodes a *v1.PublishRequest and a *v1.PublishResponse by hand, and
// anything else, or anything the fast path leaves, with protobuf. Install
// it with connect.WithCodec on a client or a handler. The zero value is
// ready to use.
type Codec struct{}

// Name implements connect.Codec: "proto", the codec it replaces.
func (Codec) Name() string { return "proto" }

// IsBinary tells Connect the codec is binary.
func (Codec) IsBinary() bool { return true }

// Marshal implements connect.Codec.
func (c Codec) Marshal(msg any) ([]byte, error) { return c.MarshalAppend(nil, msg) }

// MarshalAppend appends the encoding of msg to dst.
func (Codec) MarshalAppend(dst []byte, msg any) ([]byte, error) {
	switch m := msg.(type) {
	case *v1.PublishRequest:
		if b, ok := appendPublishRequest(dst, m); ok {
			return b, nil
		}
	case *v1.PublishResponse:
		if b, ok := appendPublishResponse(dst, m); ok {
			return b, nil
		}
	}
	m, ok := msg.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("%T is not a proto.Message", msg)
	}
	return proto.MarshalOptions{}.MarshalAppend(dst, m)
}

// MarshalStable encodes msg deterministically, with protobuf.
func (Codec) MarshalStable(msg any) ([]byte, error) {
	m, ok := msg.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("%T is not a proto.Message", msg)
	}
	return proto.MarshalOptions{Deterministic: true}.Marshal(m)
}

// Unmarshal implements connect.Codec. What it decodes by hand does not
// alias data, which the caller may reuse.
func (Codec) Unmarshal(data []byte, msg any) error {
	switch m := msg.(type) {
	case *v1.PublishRequest:
		if decodePublishRequest(data, m) {
			return nil
		}
	case *v1.PublishResponse:
		if decodePublishResponse(data, m) {
			return nil
		}
	}
	m, ok := msg.(proto.Message)
	if !ok {
		return fmt.Errorf("%T is not a proto.Message", msg)
	}
	if err := proto.Unmarshal(data, m); err != nil {
		return fmt.Errorf("unmarshal into %T: %w", msg, err)
	}
	return nil
}
