package sdkit

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/switchyard-dev/switchyard/dataplane/deliver"
	"github.com/switchyard-dev/switchyard/internal/netguard"
	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
	"github.com/switchyard-dev/switchyard/sdk/switchyard"
	"github.com/switchyard-dev/switchyard/sdk/webhook"
)

const (
	secretA = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	secretB = "whsec_c2VjcmV0LW9mLWEtcm90YXRlZC1lbmRwb2ludA=="
)

// TestVerifyServerSignatures checks the SDK's Verify against signatures made
// by the server's signer, during a rotation too.
func TestVerifyServerSignatures(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)
	body := []byte(`{"total":250}`)
	sig, err := deliver.Sign([]string{secretB, secretA}, "evt-1", now, body)
	require.NoError(t, err)
	h := http.Header{}
	h.Set("Webhook-Id", "evt-1")
	h.Set("Webhook-Timestamp", "1800000000")
	h.Set("Webhook-Signature", sig)
	require.NoError(t, webhook.Verify([]string{secretA}, h, body, now, 0))
	require.NoError(t, webhook.Verify([]string{secretB}, h, body, now, 0))
	require.ErrorIs(t, webhook.Verify([]string{"whsec_AAAA"}, h, body, now, 0), webhook.ErrInvalidSignature)
	require.ErrorIs(t, webhook.Verify([]string{secretA}, h, body[1:], now, 0), webhook.ErrInvalidSignature)
	require.ErrorIs(t, webhook.Verify([]string{secretA}, h, body, now.Add(10*time.Minute), 0), webhook.ErrTimestampOutOfRange)
}

// TestMiddlewareReceivesServerDeliveries sends events with the server's
// webhook sender to a receiver built with the SDK's Middleware.
func TestMiddlewareReceivesServerDeliveries(t *testing.T) {
	t.Parallel()
	got := make(chan *switchyard.Event, 1)
	recv := httptest.NewServer(webhook.Middleware([]string{secretA}, func(w http.ResponseWriter, _ *http.Request, ev *switchyard.Event) {
		got <- ev
		w.WriteHeader(http.StatusNoContent)
	}))
	defer recv.Close()
	wh, err := deliver.NewWebhook(deliver.WebhookConfig{Policy: netguard.Policy{AllowLoopback: true}})
	require.NoError(t, err)
	defer wh.Close()

	when := time.Date(2026, 12, 3, 14, 37, 1, 123456000, time.UTC)
	ev := &v1.Event{Id: "evt-42", Source: "/orders", Type: "order.created", Subject: `order "42" café`,
		Time: timestamppb.New(when), DataContentType: "application/json", Data: []byte(`{"total":250}`),
		Extensions: map[string]string{"region": "eu west"}}
	dest := &v1.Destination{Name: "hook", Kind: &v1.Destination_Webhook{Webhook: &v1.WebhookDestination{Url: recv.URL}}}
	res := wh.Deliver(ctxT(t), &deliver.Request{PipelineID: "pip_x", Destination: dest, Secrets: []string{secretA}, Event: ev, Attempt: 1})
	require.Equal(t, deliver.Delivered, res.Outcome, "%v", res.Err)
	e := <-got
	require.Equal(t, "evt-42", e.ID)
	require.Equal(t, "/orders", e.Source)
	require.Equal(t, "order.created", e.Type)
	require.Equal(t, `order "42" café`, e.Subject)
	require.True(t, when.Equal(e.Time))
	require.Equal(t, "application/json", e.DataContentType)
	require.Equal(t, `{"total":250}`, string(e.Data))
	require.Equal(t, map[string]string{"region": "eu west"}, e.Extensions)

	// Signed with a secret the receiver does not hold: 401, and next does
	// not run.
	res = wh.Deliver(ctxT(t), &deliver.Request{PipelineID: "pip_x", Destination: dest, Secrets: []string{secretB}, Event: ev, Attempt: 1})
	require.Equal(t, http.StatusUnauthorized, res.StatusCode)
	require.Empty(t, got)
}
