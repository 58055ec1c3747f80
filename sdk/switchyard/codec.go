package switchyard

import (
	"fmt"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
)

// publishCodec is Connect's binary Protobuf codec ("proto") with a fast
// path for the two messages of every publish: a PublishRequest is encoded
// by hand, without reflection, and a PublishResponse is decoded into one
// slice of results whose ids share one copy of the body. Anything else, and
// anything unusual (a string that is not UTF-8, an unknown field of a
// response or of the request itself, an unexpected wire type), goes to
// protobuf, so results and errors are protobuf's; fuzz tests prove both
// agree. Events carry no unknown fields: Event.prepare makes them.
type publishCodec struct{}

// Name implements connect.Codec.
func (publishCodec) Name() string { return "proto" }

// IsBinary tells Connect the codec is binary.
func (publishCodec) IsBinary() bool { return true }

// Marshal implements connect.Codec.
func (c publishCodec) Marshal(msg any) ([]byte, error) { return c.MarshalAppend(nil, msg) }

// MarshalAppend appends the encoding of msg to dst.
func (publishCodec) MarshalAppend(dst []byte, msg any) ([]byte, error) {
	if req, ok := msg.(*v1.PublishRequest); ok {
		if b, ok := appendPublishRequest(dst, req); ok {
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
func (publishCodec) MarshalStable(msg any) ([]byte, error) {
	m, ok := msg.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("%T is not a proto.Message", msg)
	}
	return proto.MarshalOptions{Deterministic: true}.Marshal(m)
}

// Unmarshal implements connect.Codec.
func (publishCodec) Unmarshal(data []byte, msg any) error {
	if res, ok := msg.(*v1.PublishResponse); ok && decodePublishResponse(data, res) {
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
	fieldResultError     = 4

	fieldErrorCode    = 1
	fieldErrorMessage = 2
)

// appendPublishRequest appends the encoding of req to dst and reports
// whether it could; when it could not (a string that is not UTF-8, an
// unknown field in the request), req is left to proto.Marshal. The encoding is
// proto.Marshal's, but for the order of an event's extensions, which
// proto.Marshal does not fix either.
func appendPublishRequest(dst []byte, req *v1.PublishRequest) ([]byte, bool) {
	if !plain(req) || !utf8.ValidString(req.GetTenantId()) || !utf8.ValidString(req.GetTopic()) {
		return dst, false
	}
	for _, ev := range req.GetEvents() {
		if ev == nil || !eventPlain(ev) {
			return dst, false
		}
	}
	dst = appendString(dst, fieldRequestTenantID, req.GetTenantId())
	dst = appendString(dst, fieldRequestTopic, req.GetTopic())
	for _, ev := range req.GetEvents() {
		dst = protowire.AppendTag(dst, fieldRequestEvents, protowire.BytesType)
		dst = protowire.AppendVarint(dst, uint64(eventSize(ev)))
		dst = appendEvent(dst, ev)
	}
	return dst, true
}

// plain reports whether m has no unknown fields.
func plain(m proto.Message) bool { return len(m.ProtoReflect().GetUnknown()) == 0 }

// eventPlain reports whether appendEvent can encode ev: every string
// UTF-8. Events reach the codec from Event.prepare, which makes them field
// by field: they never carry unknown fields, so they are not looked for
// (through reflection, at a cost a tenth of the encoding's).
func eventPlain(ev *v1.Event) bool {
	for _, s := range [...]string{ev.GetId(), ev.GetSource(), ev.GetType(), ev.GetSubject(),
		ev.GetDataContentType(), ev.GetDataSchema(), ev.GetPartitionKey()} {
		if !utf8.ValidString(s) {
			return false
		}
	}
	for k, v := range ev.GetExtensions() {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return false
		}
	}
	return true
}

// stringSize is the size of a string field of value s (none when empty).
func stringSize(s string) int {
	if s == "" {
		return 0
	}
	return 1 + protowire.SizeBytes(len(s)) // every field number here fits a one-byte tag
}

// appendString appends a string field, unless it is empty.
func appendString(dst []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return dst
	}
	dst = protowire.AppendTag(dst, num, protowire.BytesType)
	return protowire.AppendString(dst, s)
}

// timestampSize is the size of the Timestamp message of ev's time.
func timestampSize(ev *v1.Event) int {
	n := 0
	if s := ev.GetTime().GetSeconds(); s != 0 {
		n += 1 + protowire.SizeVarint(uint64(s))
	}
	if ns := ev.GetTime().GetNanos(); ns != 0 {
		n += 1 + protowire.SizeVarint(uint64(int64(ns)))
	}
	return n
}

// entrySize is the size of an extensions map entry.
func entrySize(k, v string) int {
	return 1 + protowire.SizeBytes(len(k)) + 1 + protowire.SizeBytes(len(v))
}

// eventSize is the size of ev's encoding.
func eventSize(ev *v1.Event) int {
	n := stringSize(ev.GetId()) + stringSize(ev.GetSource()) + stringSize(ev.GetType()) +
		stringSize(ev.GetSubject()) + stringSize(ev.GetDataContentType()) + stringSize(ev.GetDataSchema()) +
		stringSize(ev.GetPartitionKey())
	if ev.GetTime() != nil {
		n += 1 + protowire.SizeBytes(timestampSize(ev))
	}
	for k, v := range ev.GetExtensions() {
		n += 1 + protowire.SizeBytes(entrySize(k, v))
	}
	if d := ev.GetData(); len(d) > 0 {
		n += 1 + protowire.SizeBytes(len(d))
	}
	return n
}

// appendEvent appends the fields of ev, in field order.
func appendEvent(dst []byte, ev *v1.Event) []byte {
	dst = appendString(dst, fieldEventID, ev.GetId())
	dst = appendString(dst, fieldEventSource, ev.GetSource())
	dst = appendString(dst, fieldEventType, ev.GetType())
	dst = appendString(dst, fieldEventSubject, ev.GetSubject())
	if t := ev.GetTime(); t != nil {
		dst = protowire.AppendTag(dst, fieldEventTime, protowire.BytesType)
		dst = protowire.AppendVarint(dst, uint64(timestampSize(ev)))
		if s := t.GetSeconds(); s != 0 {
			dst = protowire.AppendTag(dst, fieldTimestampSeconds, protowire.VarintType)
			dst = protowire.AppendVarint(dst, uint64(s))
		}
		if ns := t.GetNanos(); ns != 0 {
			dst = protowire.AppendTag(dst, fieldTimestampNanos, protowire.VarintType)
			dst = protowire.AppendVarint(dst, uint64(int64(ns)))
		}
	}
	dst = appendString(dst, fieldEventDataContentType, ev.GetDataContentType())
	dst = appendString(dst, fieldEventDataSchema, ev.GetDataSchema())
	for k, v := range ev.GetExtensions() {
		dst = protowire.AppendTag(dst, fieldEventExtensions, protowire.BytesType)
		dst = protowire.AppendVarint(dst, uint64(entrySize(k, v)))
		dst = protowire.AppendTag(dst, fieldMapKey, protowire.BytesType)
		dst = protowire.AppendString(dst, k)
		dst = protowire.AppendTag(dst, fieldMapValue, protowire.BytesType)
		dst = protowire.AppendString(dst, v)
	}
	if d := ev.GetData(); len(d) > 0 {
		dst = protowire.AppendTag(dst, fieldEventData, protowire.BytesType)
		dst = protowire.AppendBytes(dst, d)
	}
	return appendString(dst, fieldEventPartitionKey, ev.GetPartitionKey())
}

// decodePublishResponse decodes data into res, which it resets, and reports
// whether it could. When it returns false, res is to be decoded again by
// proto.Unmarshal.
func decodePublishResponse(data []byte, res *v1.PublishResponse) bool {
	n := 0
	for b := data; len(b) > 0; {
		num, typ, tl := protowire.ConsumeTag(b)
		if tl < 0 || num != fieldResponseResults || typ != protowire.BytesType {
			return false
		}
		vl := protowire.ConsumeFieldValue(num, typ, b[tl:])
		if vl < 0 {
			return false
		}
		b = b[tl+vl:]
		n++
	}
	body := string(data) // the ids are substrings of one copy
	results := make([]v1.PublishResult, n)
	ptrs := make([]*v1.PublishResult, n)
	off := 0
	for i := range results {
		_, _, tl := protowire.ConsumeTag(data[off:])
		off += tl
		v, vl := protowire.ConsumeBytes(data[off:])
		start := off + vl - len(v)
		off += vl
		if !decodeResult(body, data, start, off, &results[i]) {
			return false
		}
		ptrs[i] = &results[i]
	}
	res.Reset()
	if n > 0 {
		res.Results = ptrs
	}
	return true
}

// decodeResult decodes the PublishResult at data[start:end] (body is the
// same bytes as a string) into r, which is zero.
func decodeResult(body string, data []byte, start, end int, r *v1.PublishResult) bool {
	for off := start; off < end; {
		num, typ, tl := protowire.ConsumeTag(data[off:end])
		if tl < 0 {
			return false
		}
		off += tl
		switch {
		case num == fieldResultEventID && typ == protowire.BytesType:
			v, vl := protowire.ConsumeBytes(data[off:end])
			if vl < 0 {
				return false
			}
			s := body[off+vl-len(v) : off+vl]
			if !utf8.ValidString(s) {
				return false
			}
			r.EventId = s
			off += vl
		case (num == fieldResultPartition || num == fieldResultOffset) && typ == protowire.VarintType:
			v, vl := protowire.ConsumeVarint(data[off:end])
			if vl < 0 {
				return false
			}
			if num == fieldResultPartition {
				r.Partition = int32(v)
			} else {
				r.Offset = int64(v)
			}
			off += vl
		case num == fieldResultError && typ == protowire.BytesType:
			v, vl := protowire.ConsumeBytes(data[off:end])
			if vl < 0 {
				return false
			}
			if r.Error == nil {
				r.Error = new(v1.ErrorStatus)
			}
			if !decodeErrorStatus(body, data, off+vl-len(v), off+vl, r.Error) {
				return false
			}
			off += vl
		default:
			return false
		}
	}
	return true
}

// decodeErrorStatus merges the ErrorStatus at data[start:end] into e.
func decodeErrorStatus(body string, data []byte, start, end int, e *v1.ErrorStatus) bool {
	for off := start; off < end; {
		num, typ, tl := protowire.ConsumeTag(data[off:end])
		if tl < 0 || typ != protowire.BytesType || (num != fieldErrorCode && num != fieldErrorMessage) {
			return false
		}
		off += tl
		v, vl := protowire.ConsumeBytes(data[off:end])
		if vl < 0 {
			return false
		}
		s := body[off+vl-len(v) : off+vl]
		if !utf8.ValidString(s) {
			return false
		}
		if num == fieldErrorCode {
			e.Code = s
		} else {
			e.Message = s
		}
		off += vl
	}
	return true
}
