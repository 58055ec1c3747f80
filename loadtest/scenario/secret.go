package scenario

import (
	"crypto/rand"
	"encoding/base64"
)

// newSecret returns a Standard Webhooks signing secret: "whsec_" and the
// base64 of 32 random bytes.
func newSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return "whsec_" + base64.StdEncoding.EncodeToString(b)
}
