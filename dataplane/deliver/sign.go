package deliver

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// SecretPrefix starts every Standard Webhooks signing secret.
const SecretPrefix = "whsec_"

// ErrNoSecret is returned by Sign when it is given no secret.
var ErrNoSecret = errors.New("no signing secret")

// ErrBadSecret is returned by Sign for a secret that is not "whsec_"
// followed by standard base64.
var ErrBadSecret = errors.New("malformed signing secret")

// Sign computes the webhook-signature header of a message per the Standard
// Webhooks specification (https://www.standardwebhooks.com): for each secret
// ("whsec_" + base64 of the key), "v1," + base64(HMAC-SHA256(key,
// msgID + "." + unix seconds of ts + "." + body)); several secrets give
// space-separated signatures, in the order given, so receivers holding any of
// them verify during a rotation. Errors never contain a secret.
func Sign(secrets []string, msgID string, ts time.Time, body []byte) (string, error) {
	if len(secrets) == 0 {
		return "", ErrNoSecret
	}
	var b strings.Builder
	b.Grow(len(secrets) * (3 + base64.StdEncoding.EncodedLen(sha256.Size) + 1))
	var keyBuf [64]byte
	stamp := strconv.AppendInt(nil, ts.Unix(), 10)
	var sum [sha256.Size]byte
	var enc [44]byte // base64 of 32 bytes
	for i, s := range secrets {
		raw, ok := strings.CutPrefix(s, SecretPrefix)
		if !ok || raw == "" {
			return "", fmt.Errorf("secret %d: %w: want %q followed by base64", i+1, ErrBadSecret, SecretPrefix)
		}
		key := keyBuf[:0]
		if n := base64.StdEncoding.DecodedLen(len(raw)); n > cap(key) {
			key = make([]byte, 0, n)
		}
		key, err := base64.StdEncoding.AppendDecode(key, []byte(raw))
		if err != nil || len(key) == 0 {
			return "", fmt.Errorf("secret %d: %w: the key is not standard base64", i+1, ErrBadSecret)
		}
		mac := hmac.New(sha256.New, key)
		mac.Write([]byte(msgID))
		mac.Write([]byte{'.'})
		mac.Write(stamp)
		mac.Write([]byte{'.'})
		mac.Write(body)
		base64.StdEncoding.Encode(enc[:], mac.Sum(sum[:0]))
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString("v1,")
		b.Write(enc[:])
	}
	return b.String(), nil
}
