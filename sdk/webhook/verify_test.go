package webhook_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard-dev/switchyard/sdk/webhook"
)

// The Standard Webhooks specification's published test vector.
const (
	vectorSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	vectorID        = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	vectorTimestamp = 1614265330
	vectorBody      = `{"test": 2432232314}`
	vectorSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

const otherSecret = "whsec_c2VjcmV0LW9mLWEtcm90YXRlZC1lbmRwb2ludA=="

func headers(id string, ts int64, sig string) http.Header {
	h := http.Header{}
	h.Set(webhook.HeaderID, id)
	h.Set(webhook.HeaderTimestamp, strconv.FormatInt(ts, 10))
	h.Set(webhook.HeaderSignature, sig)
	return h
}

// sign is an independent implementation of the signing scheme.
func sign(secret, id string, ts int64, body []byte) string {
	key, err := base64.StdEncoding.DecodeString(secret[len("whsec_"):])
	if err != nil {
		panic(err)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + strconv.FormatInt(ts, 10) + "."))
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

func TestVerifyVector(t *testing.T) {
	t.Parallel()
	now := time.Unix(vectorTimestamp, 0)
	h := headers(vectorID, vectorTimestamp, vectorSignature)
	require.NoError(t, webhook.Verify([]string{vectorSecret}, h, []byte(vectorBody), now, 0))
	require.Equal(t, vectorSignature, sign(vectorSecret, vectorID, vectorTimestamp, []byte(vectorBody)))
	// One byte of the body changed.
	require.ErrorIs(t, webhook.Verify([]string{vectorSecret}, h, []byte(`{"test": 2432232315}`), now, 0), webhook.ErrInvalidSignature)
}

func TestVerify(t *testing.T) {
	t.Parallel()
	body := []byte(`{"total":250}`)
	now := time.Unix(1_800_000_000, 0)
	ts := now.Unix()
	good := sign(vectorSecret, "evt-1", ts, body)
	cases := []struct {
		name    string
		secrets []string
		h       http.Header
		now     time.Time
		tol     time.Duration
		want    error
	}{
		{"valid", []string{vectorSecret}, headers("evt-1", ts, good), now, 0, nil},
		{"second secret of the receiver matches", []string{otherSecret, vectorSecret}, headers("evt-1", ts, good), now, 0, nil},
		{"rotation: second signature matches", []string{vectorSecret},
			headers("evt-1", ts, sign(otherSecret, "evt-1", ts, body)+" "+good), now, 0, nil},
		{"unknown version ignored", []string{vectorSecret}, headers("evt-1", ts, "v2,abc "+good), now, 0, nil},
		{"wrong secret", []string{otherSecret}, headers("evt-1", ts, good), now, 0, webhook.ErrInvalidSignature},
		{"other id", []string{vectorSecret}, headers("evt-2", ts, good), now, 0, webhook.ErrInvalidSignature},
		{"garbage signature", []string{vectorSecret}, headers("evt-1", ts, "v1,!!!"), now, 0, webhook.ErrInvalidSignature},
		{"v1 with a v2 label", []string{vectorSecret}, headers("evt-1", ts, "v2"+good[2:]), now, 0, webhook.ErrInvalidSignature},
		{"stale", []string{vectorSecret}, headers("evt-1", ts, good), now.Add(5*time.Minute + time.Second), 0, webhook.ErrTimestampOutOfRange},
		{"future", []string{vectorSecret}, headers("evt-1", ts, good), now.Add(-5*time.Minute - time.Second), 0, webhook.ErrTimestampOutOfRange},
		{"at the edge of the tolerance", []string{vectorSecret}, headers("evt-1", ts, good), now.Add(5 * time.Minute), 0, nil},
		{"narrow tolerance", []string{vectorSecret}, headers("evt-1", ts, good), now.Add(31 * time.Second), 30 * time.Second, webhook.ErrTimestampOutOfRange},
		{"no id", []string{vectorSecret}, headers("", ts, good), now, 0, webhook.ErrMissingHeaders},
		{"no signature", []string{vectorSecret}, headers("evt-1", ts, ""), now, 0, webhook.ErrMissingHeaders},
		{"timestamp not a number", []string{vectorSecret}, func() http.Header {
			h := headers("evt-1", ts, good)
			h.Set(webhook.HeaderTimestamp, "soon")
			return h
		}(), now, 0, webhook.ErrMissingHeaders},
		{"bad secret", []string{"secret"}, headers("evt-1", ts, good), now, 0, webhook.ErrBadSecret},
		{"no secret", nil, headers("evt-1", ts, good), now, 0, webhook.ErrBadSecret},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := webhook.Verify(tc.secrets, tc.h, body, tc.now, tc.tol)
			if tc.want == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tc.want)
			require.NotContains(t, err.Error(), "MfKQ9r8G", "errors never contain a secret")
		})
	}
}

// FuzzVerify checks that Verify never panics on any input, accepts what was
// signed with the secret, and refuses it once the body changes.
func FuzzVerify(f *testing.F) {
	f.Add(vectorID, int64(vectorTimestamp), []byte(vectorBody), vectorSignature, int64(0))
	f.Add("", int64(0), []byte{}, "v1,", int64(-1))
	f.Add("id", int64(1), []byte("x"), "v1,a v1,b v2,c", int64(400))
	f.Fuzz(func(t *testing.T, id string, ts int64, body []byte, sig string, skew int64) {
		now := time.Unix(ts, 0).Add(time.Duration(skew%600) * time.Second)
		h := http.Header{}
		h.Set(webhook.HeaderID, id)
		h.Set(webhook.HeaderTimestamp, strconv.FormatInt(ts, 10))
		h.Set(webhook.HeaderSignature, sig)
		_ = webhook.Verify([]string{vectorSecret}, h, body, now, 0) // must not panic

		if id == "" || h.Get(webhook.HeaderID) != id {
			return // ids that do not survive as a header value
		}
		h.Set(webhook.HeaderSignature, sign(vectorSecret, id, ts, body))
		err := webhook.Verify([]string{vectorSecret}, h, body, now, 0)
		if d := skew % 600; d > 300 || d < -300 {
			require.ErrorIs(t, err, webhook.ErrTimestampOutOfRange)
			return
		}
		require.NoError(t, err)
		require.ErrorIs(t, webhook.Verify([]string{vectorSecret}, h, append(body, '!'), now, 0), webhook.ErrInvalidSignature)
	})
}
