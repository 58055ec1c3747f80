package switchyard

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"sync"
	"time"
)

// uuidGen makes UUIDv7s (RFC 9562) that sort in the order they were made
// within this process: 48 bits of Unix milliseconds, then a 12-bit counter
// (rand_a, method 1 of section 6.2) that starts at a random value each
// millisecond, then 62 random bits.
type uuidGen struct {
	mu      sync.Mutex
	lastMS  int64
	counter uint16
}

var uuids uuidGen

// newUUIDv7 returns a new UUIDv7 in its canonical text form.
func newUUIDv7() string { return uuids.next(time.Now()) }

func (g *uuidGen) next(now time.Time) string {
	var b [16]byte
	if _, err := rand.Read(b[6:]); err != nil {
		panic("switchyard: crypto/rand failed: " + err.Error())
	}
	ms := now.UnixMilli()
	g.mu.Lock()
	switch {
	case ms > g.lastMS:
		g.lastMS = ms
		g.counter = binary.BigEndian.Uint16(b[6:8]) & 0x7ff // leave room to count up
	default:
		// The same millisecond, or the clock went back: count on from the
		// last one, moving to the next millisecond when the counter is full.
		g.counter++
		if g.counter > 0xfff {
			g.lastMS++
			g.counter = 0
		}
	}
	ms, ctr := g.lastMS, g.counter
	g.mu.Unlock()

	b[0], b[1], b[2] = byte(ms>>40), byte(ms>>32), byte(ms>>24)
	b[3], b[4], b[5] = byte(ms>>16), byte(ms>>8), byte(ms)
	b[6] = 0x70 | byte(ctr>>8) // version 7
	b[7] = byte(ctr)
	b[8] = 0x80 | b[8]&0x3f // variant 10
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:36], b[10:16])
	return string(s[:])
}
