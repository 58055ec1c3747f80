package sink

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Payload is what a load-test event carries, so that the sink can check
// order and measure latency without asking the generator.
type Payload struct {
	// Key is the event's partition key.
	Key string `json:"k"`
	// Seq numbers the events of Key from 0, in the order they are
	// published.
	Seq int64 `json:"s"`
	// Intended is when the event was meant to be published, in Unix
	// nanoseconds: the start of its end-to-end latency.
	Intended int64 `json:"t"`
	// Warmup marks an event sent only to see a pipeline deliver; its
	// latency is not recorded.
	Warmup bool `json:"w,omitempty"`
	// Pad brings the encoded payload to the size asked for.
	Pad string `json:"p,omitempty"`
}

// Marshal encodes p as JSON padded to at least size bytes.
func (p Payload) Marshal(size int) []byte {
	p.Pad = ""
	b, _ := json.Marshal(p) // strings and integers only: cannot fail
	if missing := size - len(b) - len(`,"p":""`); missing > 0 {
		p.Pad = strings.Repeat("x", missing)
		b, _ = json.Marshal(p)
	}
	return b
}

// IntendedTime returns p.Intended as a time.
func (p Payload) IntendedTime() time.Time { return time.Unix(0, p.Intended) }

// ParsePayload decodes a body made by Payload.Marshal.
func ParsePayload(body []byte) (Payload, error) {
	var p Payload
	if err := json.Unmarshal(body, &p); err != nil {
		return Payload{}, fmt.Errorf("sink: payload: %w", err)
	}
	if p.Key == "" || p.Intended == 0 {
		return Payload{}, fmt.Errorf("sink: payload without key or intended time: %.80q", body)
	}
	return p, nil
}
