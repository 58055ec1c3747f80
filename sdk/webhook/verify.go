package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// DefaultTolerance is how far a webhook-timestamp may be from now, either
// way, when Verify is given a tolerance of 0.
const DefaultTolerance = 5 * time.Minute

// SecretPrefix starts every signing secret: "whsec_" + base64 of the key.
const SecretPrefix = "whsec_"

// Header names of the Standard Webhooks specification.
const (
	HeaderID        = "Webhook-Id"
	HeaderTimestamp = "Webhook-Timestamp"
	HeaderSignature = "Webhook-Signature"
)

var (
	// ErrMissingHeaders: the request lacks webhook-id, webhook-timestamp or
	// webhook-signature, or the timestamp is not a number.
	ErrMissingHeaders = errors.New("webhook: missing or malformed webhook headers")
	// ErrInvalidSignature: no signature matches any of the secrets.
	ErrInvalidSignature = errors.New("webhook: no valid signature")
	// ErrTimestampOutOfRange: the timestamp is further from now than the
	// tolerance (a replay, or a clock far off).
	ErrTimestampOutOfRange = errors.New("webhook: timestamp out of range")
	// ErrBadSecret: a secret is not "whsec_" followed by standard base64.
	ErrBadSecret = errors.New("webhook: malformed signing secret")
)

// maxSignatures bounds the signatures of one header that are checked.
const maxSignatures = 16

// Verify checks the signature of a webhook request: h are its headers, body
// its raw body (before any parsing), now the receiver's clock. It accepts
// the request if any "v1" signature of the header matches any of secrets
// (several during a rotation) and the timestamp is within tolerance of now
// (0 means [DefaultTolerance]); signatures are compared in constant time.
// The errors match ErrMissingHeaders, ErrTimestampOutOfRange,
// ErrInvalidSignature or ErrBadSecret with errors.Is, and never contain a
// secret.
func Verify(secrets []string, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	id, ts, sigs := h.Get(HeaderID), h.Get(HeaderTimestamp), h.Get(HeaderSignature)
	if id == "" || ts == "" || sigs == "" {
		return ErrMissingHeaders
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: webhook-timestamp is not Unix seconds", ErrMissingHeaders)
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	nowSec := now.Unix()
	tol := int64(tolerance / time.Second)
	if sec < nowSec-tol || sec > nowSec+tol {
		return ErrTimestampOutOfRange
	}
	if len(secrets) == 0 {
		return fmt.Errorf("%w: no secret given", ErrBadSecret)
	}
	var given [][]byte
	for i, sig := range strings.Fields(sigs) {
		if i >= maxSignatures {
			break
		}
		version, b64, ok := strings.Cut(sig, ",")
		if !ok || version != "v1" {
			continue
		}
		raw, err := base64.StdEncoding.DecodeString(b64)
		if err != nil || len(raw) != sha256.Size {
			continue
		}
		given = append(given, raw)
	}
	var want [sha256.Size]byte
	for i, s := range secrets {
		key, err := decodeSecret(s)
		if err != nil {
			return fmt.Errorf("secret %d: %w", i+1, err)
		}
		mac := hmac.New(sha256.New, key)
		mac.Write([]byte(id))
		mac.Write([]byte{'.'})
		mac.Write([]byte(ts))
		mac.Write([]byte{'.'})
		mac.Write(body)
		sum := mac.Sum(want[:0])
		for _, g := range given {
			if hmac.Equal(g, sum) {
				return nil
			}
		}
	}
	return ErrInvalidSignature
}

// decodeSecret returns the key of a "whsec_" secret.
func decodeSecret(s string) ([]byte, error) {
	raw, ok := strings.CutPrefix(s, SecretPrefix)
	if !ok || raw == "" {
		return nil, fmt.Errorf("%w: want %q followed by base64", ErrBadSecret, SecretPrefix)
	}
	key, err := base64.StdEncoding.DecodeString(raw)
	if err != nil || len(key) == 0 {
		return nil, fmt.Errorf("%w: the key is not standard base64", ErrBadSecret)
	}
	return key, nil
}
