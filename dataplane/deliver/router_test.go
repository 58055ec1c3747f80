package deliver_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-dev/switchyard/dataplane/deliver"
	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
)

// routerBundle is a Router over a real Webhook, with its metrics registry
// and clock.
type routerBundle struct {
	router *deliver.Router
	reg    *prometheus.Registry
	clock  *fakeClock
}

func setupRouter(t *testing.T) *routerBundle {
	t.Helper()
	reg := prometheus.NewRegistry()
	m := deliver.NewMetrics(reg)
	w := newWebhook(t, deliver.WebhookConfig{Policy: loopback, Metrics: m})
	r := deliver.NewRouter(w, nil, m)
	clock := newFakeClock()
	r.Now = clock.Now
	t.Cleanup(r.Close)
	return &routerBundle{router: r, reg: reg, clock: clock}
}

func (b *routerBundle) metric(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	v, ok := metricValue(t, b.reg, name, labels)
	require.True(t, ok, "no series %s%v", name, labels)
	return v
}

// statusServer answers with the status held in code, counting requests.
type statusServer struct {
	*httptest.Server
	code atomic.Int64
	hits atomic.Int64
}

func newStatusServer(t *testing.T, code int) *statusServer {
	t.Helper()
	s := &statusServer{}
	s.code.Store(int64(code))
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		s.hits.Add(1)
		w.WriteHeader(int(s.code.Load()))
	}))
	t.Cleanup(s.Close)
	return s
}

func TestRouterRoutesByKind(t *testing.T) {
	t.Parallel()
	b := setupRouter(t)
	srv := newStatusServer(t, http.StatusOK)
	ctx := context.Background()

	res := b.router.Deliver(ctx, webhookReq(webhookDest("hook", srv.URL), newSecret(t)))
	require.Equal(t, deliver.Delivered, res.Outcome, "%v", res.Err)
	require.EqualValues(t, 1, srv.hits.Load())

	res = b.router.Deliver(ctx, webhookReq(kafkaDest("topic", "t1"), newSecret(t)))
	require.Equal(t, deliver.Permanent, res.Outcome, "no Kafka deliverer")
	require.ErrorIs(t, res.Err, deliver.ErrInvalidRequest)

	res = b.router.Deliver(ctx, webhookReq(&v1.Destination{Name: "none"}))
	require.Equal(t, deliver.Permanent, res.Outcome)
	require.ErrorIs(t, res.Err, deliver.ErrInvalidRequest)

	res = b.router.Deliver(ctx, nil)
	require.Equal(t, deliver.Permanent, res.Outcome)
}

func TestRouterConcurrencyLimit(t *testing.T) {
	t.Parallel()
	const limit = 3
	var (
		mu        sync.Mutex
		cur, peak int
		full      = make(chan struct{})
		fullOnce  sync.Once
		hits      atomic.Int64
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		mu.Lock()
		cur++
		peak = max(peak, cur)
		if cur >= limit {
			fullOnce.Do(func() { close(full) })
		}
		mu.Unlock()
		// Hold the request until the limit is reached once, so that a
		// missing limit would show as more concurrent requests.
		select {
		case <-full:
		case <-time.After(5 * time.Second):
		}
		time.Sleep(2 * time.Millisecond)
		mu.Lock()
		cur--
		mu.Unlock()
		hits.Add(1)
	}))
	t.Cleanup(srv.Close)

	b := setupRouter(t)
	dest := webhookDest("hook", srv.URL)
	dest.MaxInFlight = limit
	secret := newSecret(t)
	const n = 24
	var wg sync.WaitGroup
	results := make(chan deliver.Result, n)
	for range n {
		wg.Go(func() { results <- b.router.Deliver(context.Background(), webhookReq(dest, secret)) })
	}
	wg.Wait()
	close(results)
	for res := range results {
		require.Equal(t, deliver.Delivered, res.Outcome, "%v", res.Err)
	}
	require.EqualValues(t, n, hits.Load())
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, limit, peak, "the server must see exactly max_in_flight concurrent requests at most")
	require.Zero(t, b.metric(t, "switchyard_delivery_in_flight", map[string]string{"pipeline": "pip_test", "destination": "hook"}))
}

func TestRouterConcurrencyWaitHonoursContext(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		hits.Add(1)
		<-release
	}))
	t.Cleanup(srv.Close)
	b := setupRouter(t)
	dest := webhookDest("hook", srv.URL)
	dest.MaxInFlight = 1
	secret := newSecret(t)

	first := make(chan deliver.Result, 1)
	go func() { first <- b.router.Deliver(context.Background(), webhookReq(dest, secret)) }()
	require.Eventually(t, func() bool { return hits.Load() == 1 }, 5*time.Second, time.Millisecond)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	res := b.router.Deliver(ctx, webhookReq(dest, secret))
	require.Equal(t, deliver.Retryable, res.Outcome)
	require.ErrorIs(t, res.Err, context.DeadlineExceeded)
	require.ErrorContains(t, res.Err, "concurrency limit")
	require.EqualValues(t, 1, hits.Load(), "the waiting attempt was not sent")
	require.EqualValues(t, 1, b.metric(t, "switchyard_delivery_rejected_total",
		map[string]string{"pipeline": "pip_test", "destination": "hook", "reason": "limit_wait"}))
	require.EqualValues(t, 1, b.metric(t, "switchyard_delivery_in_flight", map[string]string{"pipeline": "pip_test", "destination": "hook"}))

	close(release)
	require.Equal(t, deliver.Delivered, (<-first).Outcome)
}

func TestRouterRateLimit(t *testing.T) {
	t.Parallel()
	srv := newStatusServer(t, http.StatusNoContent)
	b := setupRouter(t)
	const (
		perSecond = 50
		burst     = 5
		window    = 600 * time.Millisecond
	)
	dest := webhookDest("hook", srv.URL)
	dest.MaxInFlight = 64
	dest.RateLimit = &v1.RateLimit{PerSecond: perSecond, Burst: burst}
	secret := newSecret(t)

	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), window)
	defer cancel()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			// Until the bucket cannot serve another attempt before the
			// deadline: Wait then refuses at once.
			for b.router.Deliver(ctx, webhookReq(dest, secret)).Outcome == deliver.Delivered {
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	hits := srv.hits.Load()
	// The bucket admits at most burst + rate × window; generous lower bound
	// for a loaded machine.
	upper := burst + int64(perSecond*window.Seconds()) + 1
	require.LessOrEqual(t, hits, upper, "more requests than the token bucket allows in %s", elapsed)
	require.GreaterOrEqual(t, hits, int64(burst+5), "the limiter starved the destination")
	require.Positive(t, b.metric(t, "switchyard_delivery_rejected_total",
		map[string]string{"pipeline": "pip_test", "destination": "hook", "reason": "limit_wait"}))
}

func TestRouterBreaker(t *testing.T) {
	t.Parallel()
	srv := newStatusServer(t, http.StatusInternalServerError)
	b := setupRouter(t)
	dest := webhookDest("hook", srv.URL)
	secret := newSecret(t)
	labels := map[string]string{"pipeline": "pip_test", "destination": "hook"}
	deliverOnce := func() deliver.Result { return b.router.Deliver(context.Background(), webhookReq(dest, secret)) }

	for i := range deliver.DefaultBreakerThreshold {
		res := deliverOnce()
		require.Equal(t, deliver.Retryable, res.Outcome)
		require.Equal(t, http.StatusInternalServerError, res.StatusCode, "attempt %d", i+1)
	}
	require.EqualValues(t, 5, srv.hits.Load())
	require.EqualValues(t, 2, b.metric(t, "switchyard_breaker_state", labels), "open")

	for range 3 {
		res := deliverOnce()
		require.Equal(t, deliver.Retryable, res.Outcome)
		require.ErrorIs(t, res.Err, deliver.ErrCircuitOpen)
		require.EqualError(t, res.Err, "circuit open")
		require.Zero(t, res.StatusCode)
	}
	require.EqualValues(t, 5, srv.hits.Load(), "nothing is sent while the circuit is open")
	require.EqualValues(t, 3, b.metric(t, "switchyard_delivery_rejected_total",
		map[string]string{"pipeline": "pip_test", "destination": "hook", "reason": "circuit_open"}))

	// After the cooldown, one probe goes through; its failure reopens.
	b.clock.Advance(deliver.DefaultBreakerCooldown)
	res := deliverOnce()
	require.Equal(t, http.StatusInternalServerError, res.StatusCode)
	require.EqualValues(t, 6, srv.hits.Load())
	require.ErrorIs(t, deliverOnce().Err, deliver.ErrCircuitOpen)
	require.EqualValues(t, 6, srv.hits.Load())

	// The endpoint recovers: the next probe closes the circuit.
	srv.code.Store(http.StatusOK)
	b.clock.Advance(deliver.DefaultBreakerCooldown - time.Second)
	require.ErrorIs(t, deliverOnce().Err, deliver.ErrCircuitOpen, "still within the cooldown")
	b.clock.Advance(time.Second)
	require.Equal(t, deliver.Delivered, deliverOnce().Outcome)
	require.EqualValues(t, 7, srv.hits.Load())
	require.Zero(t, b.metric(t, "switchyard_breaker_state", labels), "closed")
	for range 3 {
		require.Equal(t, deliver.Delivered, deliverOnce().Outcome)
	}
	require.EqualValues(t, 10, srv.hits.Load())

	require.EqualValues(t, 6, b.metric(t, "switchyard_delivery_attempts_total",
		map[string]string{"pipeline": "pip_test", "destination": "hook", "outcome": "retryable"}))
	require.EqualValues(t, 4, b.metric(t, "switchyard_delivery_attempts_total",
		map[string]string{"pipeline": "pip_test", "destination": "hook", "outcome": "delivered"}))
	require.EqualValues(t, 10, b.metric(t, "switchyard_delivery_attempt_seconds", labels), "one observation per attempt sent")
}

func TestRouterBreakerSingleProbe(t *testing.T) {
	t.Parallel()
	var (
		failing atomic.Bool
		hits    atomic.Int64
		arrived = make(chan struct{}, 1)
		release = make(chan struct{})
	)
	failing.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		hits.Add(1)
		if failing.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		arrived <- struct{}{}
		<-release
	}))
	t.Cleanup(srv.Close)
	b := setupRouter(t)
	dest := webhookDest("hook", srv.URL)
	secret := newSecret(t)
	for range deliver.DefaultBreakerThreshold {
		b.router.Deliver(context.Background(), webhookReq(dest, secret))
	}
	require.ErrorIs(t, b.router.Deliver(context.Background(), webhookReq(dest, secret)).Err, deliver.ErrCircuitOpen)

	failing.Store(false)
	b.clock.Advance(deliver.DefaultBreakerCooldown)
	probe := make(chan deliver.Result, 1)
	go func() { probe <- b.router.Deliver(context.Background(), webhookReq(dest, secret)) }()
	<-arrived
	require.EqualValues(t, 1, b.metric(t, "switchyard_breaker_state", map[string]string{"pipeline": "pip_test", "destination": "hook"}), "half-open")
	// While the probe is out, others are refused.
	for range 3 {
		require.ErrorIs(t, b.router.Deliver(context.Background(), webhookReq(dest, secret)).Err, deliver.ErrCircuitOpen)
	}
	require.EqualValues(t, deliver.DefaultBreakerThreshold+1, hits.Load())
	close(release)
	require.Equal(t, deliver.Delivered, (<-probe).Outcome)
}

func TestRouterCanceledAttemptsDoNotOpenBreaker(t *testing.T) {
	t.Parallel()
	var slow atomic.Bool
	slow.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if slow.Load() {
			<-r.Context().Done()
		}
	}))
	t.Cleanup(srv.Close)
	b := setupRouter(t)
	dest := webhookDest("hook", srv.URL)
	secret := newSecret(t)
	for range deliver.DefaultBreakerThreshold + 2 {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		res := b.router.Deliver(ctx, webhookReq(dest, secret))
		cancel()
		require.Equal(t, deliver.Retryable, res.Outcome)
		require.NotErrorIs(t, res.Err, deliver.ErrCircuitOpen)
	}
	slow.Store(false)
	require.Equal(t, deliver.Delivered, b.router.Deliver(context.Background(), webhookReq(dest, secret)).Outcome)
}

func TestRouterChangedDestinationGetsFreshState(t *testing.T) {
	t.Parallel()
	srv := newStatusServer(t, http.StatusBadGateway)
	b := setupRouter(t)
	dest := webhookDest("hook", srv.URL)
	secret := newSecret(t)
	for range deliver.DefaultBreakerThreshold {
		b.router.Deliver(context.Background(), webhookReq(dest, secret))
	}
	require.ErrorIs(t, b.router.Deliver(context.Background(), webhookReq(dest, secret)).Err, deliver.ErrCircuitOpen)

	// The same destination with new settings starts closed.
	changed := webhookDest("hook", srv.URL)
	changed.GetWebhook().Headers = map[string]string{"X-Fixed": "yes"}
	srv.code.Store(http.StatusOK)
	require.Equal(t, deliver.Delivered, b.router.Deliver(context.Background(), webhookReq(changed, secret)).Outcome)
	// Another pipeline's destination of the same name has its own state.
	other := webhookReq(dest, secret)
	other.PipelineID = "pip_other"
	require.Equal(t, deliver.Delivered, b.router.Deliver(context.Background(), other).Outcome)
	// The old settings' circuit is still open.
	require.ErrorIs(t, b.router.Deliver(context.Background(), webhookReq(dest, secret)).Err, deliver.ErrCircuitOpen)
}

func TestRouterClose(t *testing.T) {
	t.Parallel()
	srv := newStatusServer(t, http.StatusOK)
	b := setupRouter(t)
	dest := webhookDest("hook", srv.URL)
	require.Equal(t, deliver.Delivered, b.router.Deliver(context.Background(), webhookReq(dest, newSecret(t))).Outcome)
	b.router.Close()
	res := b.router.Deliver(context.Background(), webhookReq(dest, newSecret(t)))
	require.Equal(t, deliver.Retryable, res.Outcome)
	require.ErrorIs(t, res.Err, deliver.ErrRouterClosed)
	require.EqualValues(t, 1, srv.hits.Load())
	_, ok := metricValue(t, b.reg, "switchyard_breaker_state", map[string]string{"pipeline": "pip_test", "destination": "hook"})
	require.False(t, ok, "Close drops the gauge series")
}
