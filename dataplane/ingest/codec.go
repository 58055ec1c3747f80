package ingest

import (
	"fmt"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
)

// codec is Connect's binary Protobuf codec ("proto", for Connect, gRPC and
// gRPC-Web) with a fast path for the two messages of every publish.
//
// A PublishRequest is decoded without reflection into one slice of events
// whose strings all share one copy of the body, instead of an allocation
// per event and per string. Only the common shape takes the fast path: any
// field it does not know, a wire type it does not expect or a string that is
// not UTF-8 sends the whole body to proto.Unmarshal, so results and errors
// are exactly protobuf's (FuzzDecodePublishRequest proves it). A
// PublishResponse is encoded by hand into the bytes proto.Marshal makes.
type codec struct{}

// Name implements connect.Codec.
func (codec) Name() string { return "proto" }

// IsBinary tells Connect the codec is binary.
func (codec) IsBinary() bool { return true }

// Marshal implements connect.Codec.
func (c codec) Marshal(msg any) ([]byte, error) { return c.MarshalAppend(nil, msg) }

// MarshalAppend appends the encoding of msg to dst.
func (codec) MarshalAppend(dst []byte, msg any) ([]byte, error) {
	if res, ok := msg.(*v1.PublishResponse); ok {
		if b, ok := appendPublishResponse(dst, res); ok {
			return b, nil
		}
	}
	m, ok := msg.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("%T is not a proto.Message", msg)
	}
	return proto.MarshalOptions{}.MarshalAppend(dst, m)
}

// MarshalStable encodes msg deterministically.
func (codec) MarshalStable(msg any) ([]byte, error) {
	m, ok := msg.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("%T is not a proto.Message", msg)
	}
	return proto.MarshalOptions{Deterministic: true}.Marshal(m)
}

// Unmarshal implements connect.Codec.
func (codec) Unmarshal(data []byte, msg any) error {
	if req, ok := msg.(*v1.PublishRequest); ok && decodePublishRequest(data, req) {
		return nil
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

// Field numbers of the messages the codec encodes or decodes by hand.
const (
	fieldRequestTenantID = 1
	fieldRequestTopic    = 2
	fieldRequestEvents   = 3

	fieldEventID              = 1
	fieldEventSource          = 2
	fieldEventType            = 3
	fieldEventSubject         = 4
	fieldEventTime            = 5
	fieldEventDataContentType = 6
	fieldEventDataSchema      = 7
	fieldEventExtensions      = 8
	fieldEventData            = 9
	fieldEventPartitionKey    = 10

	fieldTimestampSeconds = 1
	fieldTimestampNanos   = 2

	fieldMapKey   = 1
	fieldMapValue = 2

	fieldResponseResults = 1

	fieldResultEventID   = 1
	fieldResultPartition = 2
	fieldResultOffset    = 3
)

// decodePublishRequest decodes data into req, which it resets, and reports
// whether it could. When it returns false, req is to be decoded again by
// proto.Unmarshal.
func decodePublishRequest(data []byte, req *v1.PublishRequest) bool {
	n, ok := countEvents(data)
	if !ok {
		return false
	}
	// One copy of the body: every string of the request is a substring of
	// it, the payloads are slices of it.
	body := string(data)
	buf := []byte(body)
	events := make([]v1.Event, n)
	ptrs := make([]*v1.Event, n)
	var tenantID, topic string
	i := 0
	for off := 0; off < len(buf); {
		num, typ, tl := protowire.ConsumeTag(buf[off:])
		if tl < 0 || typ != protowire.BytesType {
			return false
		}
		off += tl
		v, vl := protowire.ConsumeBytes(buf[off:])
		if vl < 0 {
			return false
		}
		start := off + vl - len(v)
		end := off + vl
		off = end
		switch num {
		case fieldRequestTenantID:
			if tenantID, ok = utf8String(body, start, end); !ok {
				return false
			}
		case fieldRequestTopic:
			if topic, ok = utf8String(body, start, end); !ok {
				return false
			}
		case fieldRequestEvents:
			if !decodeEvent(body, buf, start, end, &events[i]) {
				return false
			}
			ptrs[i] = &events[i]
			i++
		default:
			return false
		}
	}
	req.Reset()
	req.TenantId, req.Topic = tenantID, topic
	if n > 0 {
		req.Events = ptrs
	}
	return true
}

// countEvents counts the events of an encoded PublishRequest, checking
// only its top-level framing.
func countEvents(data []byte) (int, bool) {
	n := 0
	for len(data) > 0 {
		num, typ, tl := protowire.ConsumeTag(data)
		if tl < 0 || typ != protowire.BytesType {
			return 0, false
		}
		vl := protowire.ConsumeFieldValue(num, typ, data[tl:])
		if vl < 0 {
			return 0, false
		}
		if num == fieldRequestEvents {
			n++
		}
		data = data[tl+vl:]
	}
	return n, true
}

// utf8String returns body[start:end] if it is valid UTF-8, as protobuf
// requires of proto3 strings.
func utf8String(body string, start, end int) (string, bool) {
	s := body[start:end]
	return s, utf8.ValidString(s)
}

// decodeEvent decodes the event at buf[start:end] (body is the same bytes
// as a string) into ev, which is zero.
func decodeEvent(body string, buf []byte, start, end int, ev *v1.Event) bool {
	for off := start; off < end; {
		num, typ, tl := protowire.ConsumeTag(buf[off:end])
		if tl < 0 {
			return false
		}
		off += tl
		if typ != protowire.BytesType {
			return false
		}
		v, vl := protowire.ConsumeBytes(buf[off:end])
		if vl < 0 {
			return false
		}
		vs, ve := off+vl-len(v), off+vl
		off = ve
		var ok bool
		switch num {
		case fieldEventID:
			ev.Id, ok = utf8String(body, vs, ve)
		case fieldEventSource:
			ev.Source, ok = utf8String(body, vs, ve)
		case fieldEventType:
			ev.Type, ok = utf8String(body, vs, ve)
		case fieldEventSubject:
			ev.Subject, ok = utf8String(body, vs, ve)
		case fieldEventDataContentType:
			ev.DataContentType, ok = utf8String(body, vs, ve)
		case fieldEventDataSchema:
			ev.DataSchema, ok = utf8String(body, vs, ve)
		case fieldEventPartitionKey:
			ev.PartitionKey, ok = utf8String(body, vs, ve)
		case fieldEventData:
			ev.Data, ok = buf[vs:ve:ve], true
			if vs == ve {
				ev.Data = nil
			}
		case fieldEventTime:
			if ev.Time == nil {
				ev.Time = new(timestamppb.Timestamp)
			}
			ok = decodeTimestamp(v, ev.Time)
		case fieldEventExtensions:
			ok = decodeExtension(body, buf, vs, ve, ev)
		}
		if !ok {
			return false
		}
	}
	return true
}

// decodeTimestamp merges the encoded Timestamp b into t.
func decodeTimestamp(b []byte, t *timestamppb.Timestamp) bool {
	for len(b) > 0 {
		num, typ, tl := protowire.ConsumeTag(b)
		if tl < 0 || typ != protowire.VarintType {
			return false
		}
		v, vl := protowire.ConsumeVarint(b[tl:])
		if vl < 0 {
			return false
		}
		b = b[tl+vl:]
		switch num {
		case fieldTimestampSeconds:
			t.Seconds = int64(v)
		case fieldTimestampNanos:
			t.Nanos = int32(v)
		default:
			return false
		}
	}
	return true
}

// decodeExtension decodes the map entry at buf[start:end] into ev's
// extensions.
func decodeExtension(body string, buf []byte, start, end int, ev *v1.Event) bool {
	var k, val string
	for off := start; off < end; {
		num, typ, tl := protowire.ConsumeTag(buf[off:end])
		if tl < 0 || typ != protowire.BytesType {
			return false
		}
		off += tl
		v, vl := protowire.ConsumeBytes(buf[off:end])
		if vl < 0 {
			return false
		}
		vs, ve := off+vl-len(v), off+vl
		off = ve
		var ok bool
		switch num {
		case fieldMapKey:
			k, ok = utf8String(body, vs, ve)
		case fieldMapValue:
			val, ok = utf8String(body, vs, ve)
		}
		if !ok {
			return false
		}
	}
	if ev.Extensions == nil {
		ev.Extensions = make(map[string]string)
	}
	ev.Extensions[k] = val
	return true
}

// appendPublishResponse appends the encoding of res to dst, the bytes
// proto.Marshal makes, and reports whether it could: a result with an
// error, an id that is not UTF-8 or any unknown field is left to
// proto.Marshal.
func appendPublishResponse(dst []byte, res *v1.PublishResponse) ([]byte, bool) {
	if len(res.ProtoReflect().GetUnknown()) > 0 {
		return dst, false
	}
	for _, r := range res.GetResults() {
		if r == nil || r.GetError() != nil || len(r.ProtoReflect().GetUnknown()) > 0 || !utf8.ValidString(r.GetEventId()) {
			return dst, false
		}
	}
	for _, r := range res.GetResults() {
		n := 0
		if id := r.GetEventId(); id != "" {
			n += protowire.SizeTag(fieldResultEventID) + protowire.SizeBytes(len(id))
		}
		if p := r.GetPartition(); p != 0 {
			n += protowire.SizeTag(fieldResultPartition) + protowire.SizeVarint(uint64(int64(p)))
		}
		if o := r.GetOffset(); o != 0 {
			n += protowire.SizeTag(fieldResultOffset) + protowire.SizeVarint(uint64(o))
		}
		dst = protowire.AppendTag(dst, fieldResponseResults, protowire.BytesType)
		dst = protowire.AppendVarint(dst, uint64(n))
		if id := r.GetEventId(); id != "" {
			dst = protowire.AppendTag(dst, fieldResultEventID, protowire.BytesType)
			dst = protowire.AppendString(dst, id)
		}
		if p := r.GetPartition(); p != 0 {
			dst = protowire.AppendTag(dst, fieldResultPartition, protowire.VarintType)
			dst = protowire.AppendVarint(dst, uint64(int64(p)))
		}
		if o := r.GetOffset(); o != 0 {
			dst = protowire.AppendTag(dst, fieldResultOffset, protowire.VarintType)
			dst = protowire.AppendVarint(dst, uint64(o))
		}
	}
	return dst, true
}
