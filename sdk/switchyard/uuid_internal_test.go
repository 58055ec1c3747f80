package switchyard

import (
	"regexp"
	"testing"
	"time"
)

var uuidv7 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestUUIDv7(t *testing.T) {
	t.Parallel()
	var g uuidGen
	now := time.UnixMilli(1_800_000_000_123)
	seen := map[string]bool{}
	prev := ""
	// 10,000 ids in one millisecond: the counter overflows into the next
	// milliseconds and the ids still sort in the order made.
	for range 10_000 {
		id := g.next(now)
		if !uuidv7.MatchString(id) {
			t.Fatalf("%q is not a UUIDv7", id)
		}
		if id <= prev {
			t.Fatalf("%q made after %q sorts before it", id, prev)
		}
		if seen[id] {
			t.Fatalf("%q twice", id)
		}
		seen[id] = true
		prev = id
	}
	// The first id carries the time.
	first := g2(now)
	if first[:8]+first[9:13] != "01a3185c507b" {
		t.Fatalf("timestamp of %q", first)
	}
	// A clock that goes back does not break the order.
	if id := g.next(now.Add(-time.Hour)); id <= prev {
		t.Fatalf("%q after a clock step back sorts before %q", id, prev)
	}
}

func g2(now time.Time) string {
	var g uuidGen
	return g.next(now)
}
