package switchyard_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1/switchyardv1connect"
	"github.com/switchyard-dev/switchyard/sdk/switchyard"
)

func TestPublishRetriesWithTheSameIDs(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		set  func(*ingest)
		opts []switchyard.ClientOption
	}{
		{"unavailable before accepting", func(s *ingest) { s.failNext = 3 }, nil},
		{"response lost after accepting", func(s *ingest) { s.loseNext = 2 }, nil},
		{"rate limited with RetryInfo", func(s *ingest) { s.rateLimitNext = 3 }, nil},
		{"over gRPC", func(s *ingest) { s.failNext = 2 }, []switchyard.ClientOption{switchyard.WithGRPC()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newIngest()
			s.set(tc.set)
			c := newClient(t, s.serve(t), tc.opts...)
			evs := events(t, 20, "t")
			res, err := c.Publish(ctxT(t), "orders", evs...)
			require.NoError(t, err)
			require.Len(t, res, len(evs))
			accepted, _, _ := s.snapshot()
			require.Len(t, accepted, len(evs), "the retries sent the same ids")
			for i, r := range res {
				require.NoError(t, r.Err)
				require.Equal(t, evs[i].ID, r.EventID)
				require.GreaterOrEqual(t, accepted[r.EventID], 1)
			}
		})
	}
}

func TestPublishAssignsIDsOnce(t *testing.T) {
	t.Parallel()
	s := newIngest()
	s.failNext = 2
	c := newClient(t, s.serve(t))
	ev := &switchyard.Event{Source: "/test", Type: "t"} // no id
	res, err := c.Publish(ctxT(t), "orders", ev)
	require.NoError(t, err)
	require.Empty(t, ev.ID, "the caller's event is not changed")
	accepted, _, _ := s.snapshot()
	require.Equal(t, map[string]int{res[0].EventID: 1}, accepted)
	require.Regexp(t, `^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`, res[0].EventID)
}

func TestPublishPerEventErrors(t *testing.T) {
	t.Parallel()
	s := newIngest()
	s.eventUnavailable["flaky"] = true
	c := newClient(t, s.serve(t))
	evs := append(events(t, 2, "t"), append(events(t, 1, "invalid"), events(t, 2, "flaky")...)...)
	res, err := c.Publish(ctxT(t), "orders", evs...)
	require.NoError(t, err, "a bad event does not fail the call")
	for i, r := range res {
		if i == 2 {
			require.ErrorIs(t, r.Err, switchyard.ErrInvalidArgument)
			require.Equal(t, connect.CodeInvalidArgument, connect.CodeOf(r.Err))
			continue
		}
		require.NoError(t, r.Err, "event %d: an unavailable event is sent again", i)
	}
	accepted, _, _ := s.snapshot()
	require.Len(t, accepted, 4)
}

func TestPublishGivesUp(t *testing.T) {
	t.Parallel()
	s := newIngest()
	s.down = true
	c := newClient(t, s.serve(t), switchyard.WithRetry(switchyard.RetryPolicy{MaxAttempts: 3, InitialBackoff: 1, MaxBackoff: 1}))
	res, err := c.Publish(ctxT(t), "orders", events(t, 3, "t")...)
	require.ErrorIs(t, err, switchyard.ErrUnavailable)
	for _, r := range res {
		require.ErrorIs(t, r.Err, switchyard.ErrUnavailable)
	}
	s.mu.Lock()
	require.Equal(t, 3, s.calls)
	s.mu.Unlock()

	// A refusal that waiting does not cure is not retried.
	s2 := newIngest()
	s2.refuse = connect.CodePermissionDenied
	c2 := newClient(t, s2.serve(t))
	_, err = c2.Publish(ctxT(t), "orders", events(t, 1, "t")...)
	require.ErrorIs(t, err, switchyard.ErrPermissionDenied)
	var serr *switchyard.Error
	require.ErrorAs(t, err, &serr)
	require.Equal(t, connect.CodePermissionDenied, serr.Code())
	s2.mu.Lock()
	require.Equal(t, 1, s2.calls)
	s2.mu.Unlock()
}

func TestPublishSplitsLargeCalls(t *testing.T) {
	t.Parallel()
	s := newIngest()
	c := newClient(t, s.serve(t))
	res, err := c.Publish(ctxT(t), "orders", events(t, 1201, "t")...)
	require.NoError(t, err)
	require.Len(t, res, 1201)
	_, _, batches := s.snapshot()
	require.Equal(t, []int{500, 500, 201}, batches)
}

func TestToken(t *testing.T) {
	t.Parallel()
	s := newIngest()
	s.token = "sy_key_secret"
	url := s.serve(t)
	_, err := newClient(t, url).Publish(ctxT(t), "orders", events(t, 1, "t")...)
	require.ErrorIs(t, err, switchyard.ErrUnauthenticated)
	_, err = newClient(t, url, switchyard.WithToken("sy_key_secret")).Publish(ctxT(t), "orders", events(t, 1, "t")...)
	require.NoError(t, err)
}

func TestFailover(t *testing.T) {
	t.Parallel()
	down, up := newIngest(), newIngest()
	down.down = true
	c := newClient(t, down.serve(t), switchyard.WithEndpoints(up.serve(t)))
	for range 5 {
		res, err := c.Publish(ctxT(t), "orders", events(t, 2, "t")...)
		require.NoError(t, err)
		require.NoError(t, res[0].Err)
	}
	down.mu.Lock()
	require.Equal(t, 1, down.calls, "the failed endpoint is skipped during its cool-down")
	down.mu.Unlock()
	accepted, _, _ := up.snapshot()
	require.Len(t, accepted, 10)

	// A connection error sets an endpoint aside too.
	other := newIngest()
	c2 := newClient(t, newClosedURL(t), switchyard.WithEndpoints(other.serve(t)))
	for range 3 {
		_, err := c2.Publish(ctxT(t), "orders", events(t, 1, "t")...)
		require.NoError(t, err)
	}
	accepted, _, _ = other.snapshot()
	require.Len(t, accepted, 3)
}

func TestNewClientRejectsBadURL(t *testing.T) {
	t.Parallel()
	_, err := switchyard.NewClient("localhost:8081")
	require.Error(t, err)
	_, err = switchyard.NewClient("http://127.0.0.1:1", switchyard.WithEndpoints("ftp://x"))
	require.Error(t, err)
	require.False(t, errors.Is(err, switchyard.ErrNotFound))
}

func TestPublishDoesNotAskForCompressedResponses(t *testing.T) {
	t.Parallel()
	s := newIngest()
	var accept atomic.Value
	mux := http.NewServeMux()
	path, h := switchyardv1connect.NewIngestServiceHandler(s)
	mux.Handle(path, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		accept.Store(r.Header.Values("Accept-Encoding"))
		h.ServeHTTP(w, r)
	}))
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	res, err := newClient(t, hs.URL).Publish(ctxT(t), "orders", events(t, 100, "t")...)
	require.NoError(t, err)
	require.Len(t, res, 100)
	require.Equal(t, []string{"identity"}, accept.Load())
}
