package deliver_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard-dev/switchyard/dataplane/deliver"
)

// verifyTolerance is how far a webhook-timestamp may be from the
// receiver's clock, per the Standard Webhooks specification.
const verifyTolerance = 5 * time.Minute

// verifyStandardWebhook checks a received webhook the way a receiver
// following the Standard Webhooks specification does, written from the
// specification and independent of deliver.Sign: the signed content is
// "<webhook-id>.<webhook-timestamp>.<body>", the key is the base64 part of
// the "whsec_" secret, and webhook-signature holds space-separated
// "<version>,<base64 signature>" entries of which one v1 entry must match
// (compared in constant time). A timestamp more than five minutes from now,
// either way, is refused.
func verifyStandardWebhook(secret string, h http.Header, body []byte, now time.Time) error {
	id := h.Get("webhook-id")
	stamp := h.Get("webhook-timestamp")
	sigHeader := h.Get("webhook-signature")
	if id == "" || stamp == "" || sigHeader == "" {
		return errors.New("missing webhook-id, webhook-timestamp or webhook-signature")
	}
	secs, err := strconv.ParseInt(stamp, 10, 64)
	if err != nil {
		return fmt.Errorf("bad webhook-timestamp %q", stamp)
	}
	sent := time.Unix(secs, 0)
	if now.Sub(sent) > verifyTolerance {
		return errors.New("timestamp too old")
	}
	if sent.Sub(now) > verifyTolerance {
		return errors.New("timestamp in the future")
	}
	encodedKey, ok := strings.CutPrefix(secret, "whsec_")
	if !ok {
		return errors.New("secret lacks whsec_ prefix")
	}
	key, err := base64.StdEncoding.DecodeString(encodedKey)
	if err != nil {
		return fmt.Errorf("secret: %w", err)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + stamp + "."))
	mac.Write(body)
	want := mac.Sum(nil)
	for _, entry := range strings.Split(sigHeader, " ") {
		version, sig, ok := strings.Cut(entry, ",")
		if !ok || version != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(sig)
		if err != nil {
			continue
		}
		if subtle.ConstantTimeCompare(got, want) == 1 {
			return nil
		}
	}
	return errors.New("no matching signature")
}

// TestSignKnownAnswer checks Sign against the test vector published with
// the Standard Webhooks reference libraries.
func TestSignKnownAnswer(t *testing.T) {
	t.Parallel()
	sig, err := deliver.Sign([]string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}, "msg_p5jXN8AQM9LWM0D4loKWxJek",
		time.Unix(1614265330, 0), []byte(`{"test": 2432232314}`))
	require.NoError(t, err)
	require.Equal(t, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", sig)
}

func TestSignErrors(t *testing.T) {
	t.Parallel()
	now := time.Now()
	_, err := deliver.Sign(nil, "m", now, nil)
	require.ErrorIs(t, err, deliver.ErrNoSecret)

	for _, bad := range []string{"", "whsec_", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_not base64!", "whsec_c2VjcmV0-_"} {
		_, err := deliver.Sign([]string{bad}, "m", now, nil)
		require.ErrorIs(t, err, deliver.ErrBadSecret, "secret %q", bad)
		if len(bad) > len("whsec_") {
			require.NotContains(t, err.Error(), bad[len("whsec_"):], "errors must not reveal secrets")
		}
	}
	good := "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	_, err = deliver.Sign([]string{good, "whsec_%%%"}, "m", now, nil)
	require.ErrorIs(t, err, deliver.ErrBadSecret)
	require.ErrorContains(t, err, "secret 2")
}

// deliverSigned delivers one event signed with secrets, with the webhook's
// clock at sentAt, and returns what the receiver got.
func deliverSigned(t *testing.T, sentAt time.Time, secrets ...string) captured {
	t.Helper()
	srv := newCaptureServer(t, http.StatusNoContent)
	w := newWebhook(t, deliver.WebhookConfig{Policy: loopback, Now: func() time.Time { return sentAt }})
	res := w.Deliver(context.Background(), webhookReq(webhookDest("hook", srv.URL), secrets...))
	require.Equal(t, deliver.Delivered, res.Outcome, "%v", res.Err)
	return srv.last(t)
}

func TestSignedDeliveryVerifies(t *testing.T) {
	t.Parallel()
	secret := newSecret(t)
	got := deliverSigned(t, time.Now(), secret)
	require.NoError(t, verifyStandardWebhook(secret, got.header, got.body, time.Now()))
	require.Error(t, verifyStandardWebhook(newSecret(t), got.header, got.body, time.Now()), "another secret must not verify")
}

func TestSignedDeliveryTwoSecrets(t *testing.T) {
	t.Parallel()
	newer, older := newSecret(t), newSecret(t)
	got := deliverSigned(t, time.Now(), newer, older)
	require.Len(t, strings.Fields(got.header.Get("webhook-signature")), 2)
	require.NoError(t, verifyStandardWebhook(newer, got.header, got.body, time.Now()))
	require.NoError(t, verifyStandardWebhook(older, got.header, got.body, time.Now()))
}

func TestSignedDeliveryTamperedBody(t *testing.T) {
	t.Parallel()
	secret := newSecret(t)
	got := deliverSigned(t, time.Now(), secret)
	tampered := append([]byte(nil), got.body...)
	tampered[len(tampered)-2]++ // {"...":1299} -> {"...":129:}
	require.ErrorContains(t, verifyStandardWebhook(secret, got.header, tampered, time.Now()), "no matching signature")

	forgedID := got.header.Clone()
	forgedID.Set("webhook-id", "evt_other")
	require.ErrorContains(t, verifyStandardWebhook(secret, forgedID, got.body, time.Now()), "no matching signature")
}

func TestSignedDeliveryStaleTimestamp(t *testing.T) {
	t.Parallel()
	secret := newSecret(t)
	got := deliverSigned(t, time.Now().Add(-6*time.Minute), secret)
	require.ErrorContains(t, verifyStandardWebhook(secret, got.header, got.body, time.Now()), "too old")

	// Replaying the fresh request later fails the same way.
	got = deliverSigned(t, time.Now(), secret)
	require.NoError(t, verifyStandardWebhook(secret, got.header, got.body, time.Now()))
	require.ErrorContains(t, verifyStandardWebhook(secret, got.header, got.body, time.Now().Add(6*time.Minute)), "too old")

	got = deliverSigned(t, time.Now().Add(6*time.Minute), secret)
	require.ErrorContains(t, verifyStandardWebhook(secret, got.header, got.body, time.Now()), "in the future")
}

func BenchmarkSign(b *testing.B) {
	secrets := []string{newSecret(b)}
	body := make([]byte, 1024)
	for i := range body {
		body[i] = byte('a' + i%26)
	}
	ts := time.Now()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := deliver.Sign(secrets, "evt_01JABCDEFGHJKMNPQRSTVWXYZ0", ts, body); err != nil {
			b.Fatal(err)
		}
	}
}
