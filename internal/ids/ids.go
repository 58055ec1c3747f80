// Package ids makes and checks Switchyard's resource identifiers.
//
// An identifier is a short type prefix, an underscore and 26 characters of
// lower-case Crockford base32 encoding a UUIDv7, e.g. "ten_01jq3v6x0m8y2c4r5t7w9z1b3d".
// Being time-ordered, identifiers sort by creation time, which keeps keyset
// pagination stable under inserts and index inserts local.
package ids

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// Prefixes of each kind of identifier.
const (
	Tenant    = "ten"
	Region    = "reg"
	Topic     = "top"
	Pipeline  = "pip"
	APIKey    = "key"
	Node      = "nod"
	Operation = "op"
	Secret    = "whs"
)

const alphabet = "0123456789abcdefghjkmnpqrstvwxyz"

// bodyLen is the length of the encoded 128-bit body.
const bodyLen = 26

var (
	mu      sync.Mutex
	lastMS  int64
	lastSeq uint16
)

// New returns a new identifier with the given prefix.
func New(prefix string) string {
	return prefix + "_" + encode(uuidV7())
}

// NewUUIDv7 returns a random, time-ordered UUID (RFC 9562, version 7) in its
// canonical text form.
func NewUUIDv7() string {
	u := uuidV7()
	var b [36]byte
	hex.Encode(b[0:8], u[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], u[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], u[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], u[8:10])
	b[23] = '-'
	hex.Encode(b[24:], u[10:16])
	return string(b[:])
}

// uuidV7 builds a UUIDv7 whose 12-bit rand_a field is a counter within the
// same millisecond, so identifiers made by one process are strictly
// increasing.
func uuidV7() [16]byte {
	var u [16]byte
	if _, err := rand.Read(u[:]); err != nil {
		panic("ids: crypto/rand failed: " + err.Error())
	}
	ms := time.Now().UnixMilli()
	mu.Lock()
	if ms <= lastMS {
		ms = lastMS
		lastSeq++
		if lastSeq > 0x0fff {
			ms++
			lastSeq = 0
		}
	} else {
		lastSeq = binary.BigEndian.Uint16(u[6:8]) & 0x07ff // leave room to count up
	}
	lastMS = ms
	seq := lastSeq
	mu.Unlock()

	u[0] = byte(ms >> 40)
	u[1] = byte(ms >> 32)
	u[2] = byte(ms >> 24)
	u[3] = byte(ms >> 16)
	u[4] = byte(ms >> 8)
	u[5] = byte(ms)
	u[6] = 0x70 | byte(seq>>8)&0x0f
	u[7] = byte(seq)
	u[8] = u[8]&0x3f | 0x80
	return u
}

// encode writes 128 bits as 26 base32 characters (the first carries 3 bits).
func encode(u [16]byte) string {
	hi := binary.BigEndian.Uint64(u[0:8])
	lo := binary.BigEndian.Uint64(u[8:16])
	var b [bodyLen]byte
	for i := bodyLen - 1; i >= 0; i-- {
		b[i] = alphabet[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	return string(b[:])
}

// ErrInvalid is returned by Check for a malformed identifier.
var ErrInvalid = errors.New("invalid identifier")

// Check reports whether id is a well-formed identifier with the given prefix.
func Check(prefix, id string) error {
	body, ok := strings.CutPrefix(id, prefix+"_")
	if !ok || len(body) != bodyLen {
		return fmt.Errorf("%w: %q is not a %s_ identifier", ErrInvalid, id, prefix)
	}
	if body[0] > '7' {
		return fmt.Errorf("%w: %q is out of range", ErrInvalid, id)
	}
	for i := 0; i < len(body); i++ {
		if strings.IndexByte(alphabet, body[i]) < 0 {
			return fmt.Errorf("%w: %q contains %q", ErrInvalid, id, body[i])
		}
	}
	return nil
}

// Time returns the creation time encoded in a well-formed identifier.
func Time(id string) (time.Time, error) {
	i := strings.LastIndexByte(id, '_')
	if i < 0 || Check(id[:i], id) != nil {
		return time.Time{}, fmt.Errorf("%w: %q", ErrInvalid, id)
	}
	body := id[i+1:]
	var hi, lo uint64
	for j := 0; j < len(body); j++ {
		v := uint64(strings.IndexByte(alphabet, body[j]))
		hi = hi<<5 | lo>>59
		lo = lo<<5 | v
	}
	ms := int64(hi >> 16)
	return time.UnixMilli(ms).UTC(), nil
}
