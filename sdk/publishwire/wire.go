package publishwire

import (
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// Field numbers of the messages encoded and decoded by hand (see
// proto/switchyard/v1 and google/protobuf/timestamp.proto). Every one fits a
// one-byte tag.
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

// plain reports whether m has no unknown fields.
func plain(m proto.Message) bool { return len(m.ProtoReflect().GetUnknown()) == 0 }

// stringSize is the size of a string field of value s (none when empty).
func stringSize(s string) int {
	if s == "" {
		return 0
	}
	return 1 + protowire.SizeBytes(len(s))
}

// appendString appends a string field, unless it is empty.
func appendString(dst []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return dst
	}
	dst = protowire.AppendTag(dst, num, protowire.BytesType)
	return protowire.AppendString(dst, s)
}

// utf8String returns body[start:end] if it is valid UTF-8, as protobuf
// requires of proto3 strings.
func utf8String(body string, start, end int) (string, bool) {
	s := body[start:end]
	return s, utf8.ValidString(s)
}

// bytesField reads the length-delimited field at buf[off:end]: its number
// and where its value starts and ends in buf. ok is false for a malformed
// tag or length and for any other wire type.
func bytesField(buf []byte, off, end int) (num protowire.Number, vs, ve int, ok bool) {
	num, typ, tl := protowire.ConsumeTag(buf[off:end])
	if tl < 0 || typ != protowire.BytesType {
		return 0, 0, 0, false
	}
	v, vl := protowire.ConsumeBytes(buf[off+tl : end])
	if vl < 0 {
		return 0, 0, 0, false
	}
	ve = off + tl + vl
	return num, ve - len(v), ve, true
}
