// Package apikey makes and reads API key tokens.
//
// A token is what a caller sends as "Authorization: Bearer <token>":
//
//	sy_<26-character key id body>_<43-character secret>
//
// The id body is that of an ids.APIKey identifier, so the key can be looked
// up without the secret; the secret is 32 random bytes in unpadded base64url.
// A token is shown once, when the key is created. Only the SHA-256 hash of
// its secret part is stored; a presented token is checked by hashing its
// secret part again and comparing with Equal.
package apikey

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/switchyard-dev/switchyard/internal/ids"
)

const (
	// tokenPrefix starts every token.
	tokenPrefix = "sy_"
	// idBodyLen is the length of an identifier's body (after "key_").
	idBodyLen = 26
	// secretBytes is the number of random bytes in a secret.
	secretBytes = 32
	// secretLen is the length of a secret in unpadded base64url.
	secretLen = 43
	// TokenLen is the length of every well-formed token.
	TokenLen = len(tokenPrefix) + idBodyLen + 1 + secretLen
	// MaxInputLen is the longest input Parse looks at; longer input is
	// rejected before any other work.
	MaxInputLen = 256
	// PrefixLen is the number of leading characters Prefix returns.
	PrefixLen = 12
)

// ErrMalformed is returned (wrapped) by Parse for anything that is not a
// well-formed token, and by Generate for a key id that is not well formed.
var ErrMalformed = errors.New("malformed API key")

// secretEncoding rejects padding, line breaks and non-zero trailing bits, so
// each secret has exactly one accepted spelling.
var secretEncoding = base64.RawURLEncoding.Strict()

// Generate makes a new token for the key keyID (an ids.APIKey identifier,
// "key_" followed by 26 base32 characters). It returns the token, to show
// once, and the hash of its secret part, to store.
func Generate(keyID string) (token string, secretHash []byte, err error) {
	if err := ids.Check(ids.APIKey, keyID); err != nil {
		return "", nil, fmt.Errorf("%w: key id: %w", ErrMalformed, err)
	}
	var raw [secretBytes]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", nil, fmt.Errorf("reading random secret: %w", err)
	}
	secret := secretEncoding.EncodeToString(raw[:])
	token = tokenPrefix + keyID[len(ids.APIKey)+1:] + "_" + secret
	return token, hashSecret(secret), nil
}

// Parse splits a token into the key id it names and the hash of its secret
// part, to compare (with Equal) against the stored hash. Anything but a
// well-formed token yields an error wrapping ErrMalformed; the message never
// contains the secret.
func Parse(token string) (keyID string, secretHash []byte, err error) {
	if len(token) > MaxInputLen {
		return "", nil, fmt.Errorf("%w: longer than %d bytes", ErrMalformed, MaxInputLen)
	}
	if len(token) != TokenLen {
		return "", nil, fmt.Errorf("%w: length %d, want %d", ErrMalformed, len(token), TokenLen)
	}
	if token[:len(tokenPrefix)] != tokenPrefix {
		return "", nil, fmt.Errorf("%w: missing %q prefix", ErrMalformed, tokenPrefix)
	}
	sep := len(tokenPrefix) + idBodyLen
	if token[sep] != '_' {
		return "", nil, fmt.Errorf("%w: missing separator after the key id", ErrMalformed)
	}
	keyID = ids.APIKey + "_" + token[len(tokenPrefix):sep]
	if err := ids.Check(ids.APIKey, keyID); err != nil {
		return "", nil, fmt.Errorf("%w: bad key id", ErrMalformed)
	}
	secret := token[sep+1:]
	// The decoded length is fixed by the input length checked above.
	var raw [secretBytes + 2]byte
	n, err := secretEncoding.Decode(raw[:], []byte(secret))
	if err != nil || n != secretBytes {
		return "", nil, fmt.Errorf("%w: bad secret encoding", ErrMalformed)
	}
	return keyID, hashSecret(secret), nil
}

// Prefix returns the first PrefixLen characters of a token ("sy_" and the
// start of the key id, never any of the secret), for display. A shorter
// input is returned whole.
func Prefix(token string) string {
	if len(token) <= PrefixLen {
		return token
	}
	return token[:PrefixLen]
}

// Equal reports whether two secret hashes are the same, in time that does
// not depend on their contents. Hashes that are not SHA-256 sized (including
// empty ones) never match.
func Equal(a, b []byte) bool {
	if len(a) != sha256.Size || len(b) != sha256.Size {
		return false
	}
	return subtle.ConstantTimeCompare(a, b) == 1
}

// hashSecret returns the SHA-256 of the secret part of a token, as text.
func hashSecret(secret string) []byte {
	sum := sha256.Sum256([]byte(secret))
	return sum[:]
}
