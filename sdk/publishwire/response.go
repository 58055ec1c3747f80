package publishwire

import (
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"

	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
)

// appendPublishResponse appends the encoding of res to dst, the bytes
// proto.Marshal makes, and reports whether it could: a result with an
// error, a nil result, an id that is not UTF-8 or any unknown field is left
// to proto.Marshal.
func appendPublishResponse(dst []byte, res *v1.PublishResponse) ([]byte, bool) {
	if !plain(res) {
		return dst, false
	}
	for _, r := range res.GetResults() {
		if r == nil || r.GetError() != nil || !plain(r) || !utf8.ValidString(r.GetEventId()) {
			return dst, false
		}
	}
	for _, r := range res.GetResults() {
		n := stringSize(r.GetEventId())
		if p := r.GetPartition(); p != 0 {
			n += 1 + protowire.SizeVarint(uint64(int64(p)))
		}
		if o := r.GetOffset(); o != 0 {
			n += 1 + protowire.SizeVarint(uint64(o))
		}
		dst = protowire.AppendTag(dst, fieldResponseResults, protowire.BytesType)
		dst = protowire.AppendVarint(dst, uint64(n))
		dst = appendString(dst, fieldResultEventID, r.GetEventId())
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
	body := string(data) // the strings are substrings of one copy
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
			var ok bool
			if r.EventId, ok = utf8String(body, off+vl-len(v), off+vl); !ok {
				return false
			}
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
		num, vs, ve, ok := bytesField(data, off, end)
		if !ok || (num != fieldErrorCode && num != fieldErrorMessage) {
			return false
		}
		off = ve
		s, ok := utf8String(body, vs, ve)
		if !ok {
			return false
		}
		if num == fieldErrorCode {
			e.Code = s
		} else {
			e.Message = s
		}
	}
	return true
}
