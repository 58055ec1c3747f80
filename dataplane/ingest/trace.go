package ingest

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/switchyard-dev/switchyard/internal/kafkaname"
)

// maxTracestateLen bounds the tracestate header carried along (the W3C
// recommendation for what a vendor must propagate).
const maxTracestateLen = 512

// traceContext is the W3C trace context of a request.
type traceContext struct {
	// parent is a valid version-00 traceparent, or empty.
	parent string
	// state is the tracestate sent with parent, if any.
	state string
}

// traceFrom reads the W3C trace context of a request. An invalid
// traceparent is ignored (a fresh one is made per request), as the Trace
// Context specification requires; a traceparent of a later version is
// carried as version 00.
func traceFrom(h http.Header) traceContext {
	parent, ok := parseTraceparent(strings.TrimSpace(h.Get("traceparent")))
	if !ok {
		return traceContext{}
	}
	state := strings.TrimSpace(strings.Join(h.Values("tracestate"), ","))
	if len(state) > maxTracestateLen {
		state = ""
	}
	return traceContext{parent: parent, state: state}
}

// headers returns the record headers carrying tc, making a fresh traceparent
// (sampled) when the request had none.
func (tc traceContext) headers() []kgo.RecordHeader {
	parent := tc.parent
	if parent == "" {
		parent = newTraceparent()
	}
	h := []kgo.RecordHeader{{Key: kafkaname.HeaderTraceparent, Value: []byte(parent)}}
	if tc.state != "" && tc.parent != "" {
		h = append(h, kgo.RecordHeader{Key: kafkaname.HeaderTracestate, Value: []byte(tc.state)})
	}
	return h
}

// parseTraceparent checks a W3C traceparent ("00-<32 hex trace id>-<16 hex
// parent id>-<2 hex flags>") and returns it as version 00. Versions above 00
// are parsed by their first four fields, as the specification asks.
func parseTraceparent(s string) (string, bool) {
	const v00Len = 55
	if len(s) < v00Len {
		return "", false
	}
	version := s[0:2]
	if !isLowerHex(version) || version == "ff" {
		return "", false
	}
	if version == "00" && len(s) != v00Len {
		return "", false
	}
	if len(s) > v00Len && s[v00Len] != '-' {
		return "", false
	}
	if s[2] != '-' || s[35] != '-' || s[52] != '-' {
		return "", false
	}
	traceID, parentID, flags := s[3:35], s[36:52], s[53:55]
	if !isLowerHex(traceID) || !isLowerHex(parentID) || !isLowerHex(flags) ||
		allZero(traceID) || allZero(parentID) {
		return "", false
	}
	return "00-" + traceID + "-" + parentID + "-" + flags, true
}

// newTraceparent makes a traceparent with a random trace id and parent id,
// flagged sampled.
func newTraceparent() string {
	var b [24]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	if allZeroBytes(b[:16]) {
		b[15] = 1
	}
	if allZeroBytes(b[16:]) {
		b[23] = 1
	}
	return "00-" + hex.EncodeToString(b[:16]) + "-" + hex.EncodeToString(b[16:]) + "-01"
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func allZero(s string) bool { return strings.Trim(s, "0") == "" }

func allZeroBytes(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
