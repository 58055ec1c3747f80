package publishwire

import (
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/types/known/timestamppb"

	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
)

// appendPublishRequest appends the encoding of req to dst and reports
// whether it could; when it could not (a string that is not UTF-8, an
// unknown field, a nil event), req is left to proto.Marshal. The encoding is
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
		dst = protowire.AppendVarint(dst, uint64(EventSize(ev)))
		dst = appendEvent(dst, ev)
	}
	return dst, true
}

// eventPlain reports whether appendEvent can encode ev: every string UTF-8
// and no unknown field, in the event or its time.
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
	return plain(ev) && (ev.GetTime() == nil || plain(ev.GetTime()))
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

// EventSize is the size of ev's encoding: proto.Size's figure for an event
// without unknown fields, worked out without reflection.
func EventSize(ev *v1.Event) int {
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
		num, start, end, fok := bytesField(buf, off, len(buf))
		if !fok {
			return false
		}
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

// decodeEvent decodes the event at buf[start:end] (body is the same bytes
// as a string) into ev, which is zero.
func decodeEvent(body string, buf []byte, start, end int, ev *v1.Event) bool {
	for off := start; off < end; {
		num, vs, ve, fok := bytesField(buf, off, end)
		if !fok {
			return false
		}
		off = ve
		var ok bool // an unknown field leaves it false
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
			ok = decodeTimestamp(buf[vs:ve], ev.Time)
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
		num, vs, ve, fok := bytesField(buf, off, end)
		if !fok {
			return false
		}
		off = ve
		var ok bool // an unknown field leaves it false
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
