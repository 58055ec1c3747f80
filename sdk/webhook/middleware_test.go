package webhook_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard-dev/switchyard/sdk/switchyard"
	"github.com/switchyard-dev/switchyard/sdk/webhook"
)

func TestMiddleware(t *testing.T) {
	t.Parallel()
	var got []*switchyard.Event
	srv := httptest.NewServer(webhook.Middleware([]string{vectorSecret}, func(w http.ResponseWriter, _ *http.Request, ev *switchyard.Event) {
		got = append(got, ev)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()

	post := func(mod func(h http.Header), body string) int {
		t.Helper()
		ts := time.Now().Unix()
		req, err := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(webhook.HeaderID, "evt-7")
		req.Header.Set(webhook.HeaderTimestamp, strconv.FormatInt(ts, 10))
		req.Header.Set(webhook.HeaderSignature, sign(vectorSecret, "evt-7", ts, []byte(body)))
		req.Header.Set("Ce-Specversion", "1.0")
		req.Header.Set("Ce-Id", "evt-7")
		req.Header.Set("Ce-Source", "/orders")
		req.Header.Set("Ce-Type", "order.created")
		req.Header.Set("Ce-Subject", "order%20%2242%22")
		req.Header.Set("Ce-Time", "2026-12-03T14:37:01.123456Z")
		req.Header.Set("Ce-Region", "eu")
		if mod != nil {
			mod(req.Header)
		}
		resp, err := srv.Client().Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode
	}

	require.Equal(t, http.StatusNoContent, post(nil, `{"total":250}`))
	require.Len(t, got, 1)
	ev := got[0]
	require.Equal(t, "evt-7", ev.ID)
	require.Equal(t, "/orders", ev.Source)
	require.Equal(t, "order.created", ev.Type)
	require.Equal(t, `order "42"`, ev.Subject)
	require.Equal(t, "application/json", ev.DataContentType)
	require.Equal(t, `{"total":250}`, string(ev.Data))
	require.Equal(t, time.Date(2026, 12, 3, 14, 37, 1, 123456000, time.UTC), ev.Time)
	require.Equal(t, map[string]string{"region": "eu"}, ev.Extensions)

	require.Equal(t, http.StatusUnauthorized, post(func(h http.Header) { h.Set(webhook.HeaderSignature, "v1,AAAA") }, `{}`))
	require.Equal(t, http.StatusUnauthorized, post(func(h http.Header) { h.Del(webhook.HeaderID) }, `{}`))
	require.Equal(t, http.StatusUnauthorized, post(func(h http.Header) {
		h.Set(webhook.HeaderTimestamp, strconv.FormatInt(time.Now().Add(-time.Hour).Unix(), 10))
	}, `{}`))
	require.Equal(t, http.StatusBadRequest, post(func(h http.Header) { h.Del("Ce-Type") }, `{}`))
	require.Equal(t, http.StatusBadRequest, post(func(h http.Header) { h.Set("Ce-Time", "yesterday") }, `{}`))
	require.Len(t, got, 1, "next runs only for verified events")
}
