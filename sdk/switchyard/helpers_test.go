package switchyard_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"go.uber.org/goleak"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/protobuf/types/known/durationpb"

	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
	"github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1/switchyardv1connect"
	"github.com/switchyard-dev/switchyard/sdk/switchyard"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testTimeout bounds every wait of a test.
const testTimeout = 30 * time.Second

// fastRetry retries quickly, so tests of retries do not sleep for long.
var fastRetry = switchyard.RetryPolicy{MaxAttempts: 10, InitialBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond}

// ingest is an IngestService that keeps what it accepted, by id, and fails
// as a test tells it to.
type ingest struct {
	mu sync.Mutex
	// calls counts Publish calls; batches holds the size of each.
	calls   int
	batches []int
	// accepted counts, per event id, the times it was accepted; order is
	// the ids in the order first accepted.
	accepted map[string]int
	order    []*v1.Event
	// failNext makes the next calls fail with Unavailable before accepting
	// anything.
	failNext int
	// loseNext makes the next calls accept the events and then answer
	// Unavailable, as if the response were lost.
	loseNext int
	// rateLimitNext makes the next calls fail with ResourceExhausted and a
	// RetryInfo.
	rateLimitNext int
	// eventUnavailable makes the first attempt of an event whose type it
	// names answer unavailable for that event alone.
	eventUnavailable map[string]bool
	seenUnavailable  map[string]bool
	// down fails every call with Unavailable.
	down bool
	// refuse fails every call with this code.
	refuse connect.Code
	// gate, when set, holds each call until it is closed; started
	// receives a value as each call arrives.
	gate    chan struct{}
	started chan struct{}
	// token, when set, is required as the bearer token.
	token string
}

func newIngest() *ingest {
	return &ingest{accepted: map[string]int{}, eventUnavailable: map[string]bool{}, seenUnavailable: map[string]bool{}}
}

// Publish implements switchyardv1connect.IngestServiceHandler.
func (s *ingest) Publish(ctx context.Context, req *v1.PublishRequest) (*v1.PublishResponse, error) {
	if s.started != nil {
		select {
		case s.started <- struct{}{}:
		default:
		}
	}
	if s.gate != nil {
		select {
		case <-s.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	s.batches = append(s.batches, len(req.GetEvents()))
	if s.token != "" {
		if h, ok := connect.CallInfoForHandlerContext(ctx); ok {
			if h.RequestHeader().Get("Authorization") != "Bearer "+s.token {
				return nil, connect.NewError(connect.CodeUnauthenticated, errors.New("invalid credentials"))
			}
		}
	}
	switch {
	case s.refuse != 0:
		return nil, connect.NewError(s.refuse, errors.New("refused"))
	case s.down:
		return nil, connect.NewError(connect.CodeUnavailable, errors.New("down"))
	case s.failNext > 0:
		s.failNext--
		return nil, connect.NewError(connect.CodeUnavailable, errors.New("try again"))
	case s.rateLimitNext > 0:
		s.rateLimitNext--
		ce := connect.NewError(connect.CodeResourceExhausted, errors.New("rate limited"))
		d, err := connect.NewErrorDetail(&errdetails.RetryInfo{RetryDelay: durationpb.New(2 * time.Millisecond)})
		if err != nil {
			return nil, err
		}
		ce.AddDetail(d)
		return nil, ce
	}
	res := &v1.PublishResponse{}
	for _, ev := range req.GetEvents() {
		r := &v1.PublishResult{EventId: ev.GetId()}
		switch {
		case ev.GetType() == "invalid":
			r.Error = &v1.ErrorStatus{Code: "invalid_argument", Message: "validation error: type: bad"}
		case s.eventUnavailable[ev.GetType()] && !s.seenUnavailable[ev.GetId()]:
			s.seenUnavailable[ev.GetId()] = true
			r.Error = &v1.ErrorStatus{Code: "unavailable", Message: "the event was not stored"}
		default:
			if s.accepted[ev.GetId()] == 0 {
				s.order = append(s.order, ev)
			}
			s.accepted[ev.GetId()]++
			r.Offset = int64(len(s.order))
		}
		res.Results = append(res.Results, r)
	}
	if s.loseNext > 0 {
		s.loseNext--
		return nil, connect.NewError(connect.CodeUnavailable, errors.New("response lost"))
	}
	return res, nil
}

// set changes the ingest's behaviour under its lock.
func (s *ingest) set(f func(s *ingest)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

// snapshot returns a copy of what was accepted.
func (s *ingest) snapshot() (accepted map[string]int, order []*v1.Event, batches []int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	accepted = make(map[string]int, len(s.accepted))
	for k, v := range s.accepted {
		accepted[k] = v
	}
	return accepted, append([]*v1.Event(nil), s.order...), append([]int(nil), s.batches...)
}

// serve serves the ingest over HTTP (HTTP/1.1 and cleartext HTTP/2) and
// returns its URL.
func (s *ingest) serve(t *testing.T) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle(switchyardv1connect.NewIngestServiceHandler(s))
	hs := httptest.NewUnstartedServer(mux)
	p := new(http.Protocols)
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	hs.Config.Protocols = p
	hs.Start()
	t.Cleanup(hs.Close)
	return hs.URL
}

// newClient returns a client of url, closed at cleanup.
func newClient(t *testing.T, url string, opts ...switchyard.ClientOption) *switchyard.Client {
	t.Helper()
	c, err := switchyard.NewClient(url, append([]switchyard.ClientOption{switchyard.WithRetry(fastRetry)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// events returns n events of type typ.
func events(t *testing.T, n int, typ string) []*switchyard.Event {
	t.Helper()
	out := make([]*switchyard.Event, n)
	for i := range out {
		ev, err := switchyard.NewEvent("/test", typ, switchyard.WithJSONData(map[string]int{"i": i}))
		if err != nil {
			t.Fatal(err)
		}
		out[i] = ev
	}
	return out
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// newClosedURL returns the URL of a server that is no longer listening.
func newClosedURL(t *testing.T) string {
	t.Helper()
	hs := httptest.NewServer(http.NotFoundHandler())
	url := hs.URL
	hs.Close()
	return url
}
