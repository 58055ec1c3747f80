package apikey

import (
	"crypto/sha256"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/switchyard-dev/switchyard/internal/ids"
)

func TestGenerateParseRoundTrip(t *testing.T) {
	t.Parallel()

	keyID := ids.New(ids.APIKey)
	token, hash, err := Generate(keyID)
	require.NoError(t, err)
	require.Len(t, token, TokenLen)
	require.True(t, strings.HasPrefix(token, "sy_"+keyID[len("key_"):]+"_"), token)
	require.Len(t, hash, sha256.Size)

	secret := token[len(token)-43:]
	want := sha256.Sum256([]byte(secret))
	require.Equal(t, want[:], hash, "hash is SHA-256 of the secret part")

	gotID, gotHash, err := Parse(token)
	require.NoError(t, err)
	require.Equal(t, keyID, gotID)
	require.True(t, Equal(hash, gotHash))
}

func TestGenerateIsRandom(t *testing.T) {
	t.Parallel()

	keyID := ids.New(ids.APIKey)
	seen := make(map[string]bool)
	for range 100 {
		token, _, err := Generate(keyID)
		require.NoError(t, err)
		require.False(t, seen[token], "duplicate token")
		seen[token] = true
	}
}

func TestGenerateRejectsBadKeyID(t *testing.T) {
	t.Parallel()

	for _, id := range []string{"", "key_", ids.New(ids.Tenant), "key_01jq3v6x0m8y2c4r5t7w9z1b3", "key_01JQ3V6X0M8Y2C4R5T7W9Z1B3D"} {
		_, _, err := Generate(id)
		require.ErrorIs(t, err, ErrMalformed, "id %q", id)
	}
}

func TestParseRejects(t *testing.T) {
	t.Parallel()

	good, _, err := Generate(ids.New(ids.APIKey))
	require.NoError(t, err)
	body := good[3:29]
	secret := good[30:]

	// A secret whose last character carries non-zero trailing bits decodes
	// to the same bytes as another spelling; only the canonical one passes.
	last := strings.IndexByte(alphabetURL, secret[42])
	nonCanonical := secret[:42] + string(alphabetURL[last^1])

	tests := map[string]string{
		"empty":             "",
		"huge":              strings.Repeat("a", 1<<20),
		"just over max":     strings.Repeat("a", MaxInputLen+1),
		"short":             good[:len(good)-1],
		"long":              good + "A",
		"bad prefix":        "sk_" + good[3:],
		"upper prefix":      "SY_" + good[3:],
		"bad separator":     "sy_" + body + "-" + secret,
		"upper id":          "sy_" + strings.ToUpper(body) + "_" + secret,
		"id out of range":   "sy_8" + body[1:] + "_" + secret,
		"id bad char":       "sy_" + body[:25] + "u_" + secret,
		"std base64":        "sy_" + body + "_" + secret[:42] + "+",
		"padding":           "sy_" + body + "_" + secret[:42] + "=",
		"newline in secret": "sy_" + body + "_" + secret[:20] + "\n" + secret[21:],
		"non-canonical":     "sy_" + body + "_" + nonCanonical,
		"bearer":            "Bearer " + good,
	}
	for name, token := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if token == good {
				t.Fatalf("test case equals the good token")
			}
			id, hash, err := Parse(token)
			require.ErrorIs(t, err, ErrMalformed)
			require.Empty(t, id)
			require.Nil(t, hash)
			require.NotContains(t, err.Error(), secret, "error must not leak the secret")
		})
	}
}

const alphabetURL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

func TestPrefix(t *testing.T) {
	t.Parallel()

	token, _, err := Generate("key_01jq3v6x0m8y2c4r5t7w9z1b3d")
	require.NoError(t, err)
	require.Equal(t, "sy_01jq3v6x0", Prefix(token))
	require.Equal(t, "sy_", Prefix("sy_"))
	require.Empty(t, Prefix(""))
}

func TestEqual(t *testing.T) {
	t.Parallel()

	a := sha256.Sum256([]byte("a"))
	a2 := sha256.Sum256([]byte("a"))
	b := sha256.Sum256([]byte("b"))
	require.True(t, Equal(a[:], a2[:]))
	require.False(t, Equal(a[:], b[:]))
	require.False(t, Equal(a[:], a[:31]))
	require.False(t, Equal(nil, nil), "empty hashes never match")
	require.False(t, Equal([]byte{}, []byte{}))
}

func FuzzParse(f *testing.F) {
	for range 3 {
		token, _, err := Generate(ids.New(ids.APIKey))
		require.NoError(f, err)
		f.Add(token)
	}
	f.Add("")
	f.Add("sy_")
	f.Add("sy_01jq3v6x0m8y2c4r5t7w9z1b3d_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	f.Add("sy_01jq3v6x0m8y2c4r5t7w9z1b3d_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB")
	f.Fuzz(func(t *testing.T, token string) {
		keyID, hash, err := Parse(token)
		if err != nil {
			require.True(t, errors.Is(err, ErrMalformed), "error %v does not wrap ErrMalformed", err)
			require.Empty(t, keyID)
			require.Nil(t, hash)
			return
		}
		// An accepted token re-encodes identically from its parts.
		require.NoError(t, ids.Check(ids.APIKey, keyID))
		secret := token[len(token)-43:]
		require.Equal(t, "sy_"+keyID[len("key_"):]+"_"+secret, token)
		sum := sha256.Sum256([]byte(secret))
		require.Equal(t, sum[:], hash)
		raw, err := secretEncoding.DecodeString(secret)
		require.NoError(t, err)
		require.Equal(t, secret, secretEncoding.EncodeToString(raw))
	})
}
