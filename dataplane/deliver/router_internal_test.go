package deliver

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-dev/switchyard/internal/netguard"
	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
)

func TestBreakerIgnoresStaleOutcomes(t *testing.T) {
	t.Parallel()
	var states []breakerState
	b := newBreaker(2, 0.5, time.Minute, func(s breakerState) { states = append(states, s) })
	now := time.Unix(1000, 0)

	slow, ok := b.allow(now) // an attempt that will answer late
	require.True(t, ok)
	for range 2 {
		g, ok := b.allow(now)
		require.True(t, ok)
		b.record(g, true, false, now)
	}
	require.True(t, b.open(now))
	_, ok = b.allow(now.Add(59 * time.Second))
	require.False(t, ok)

	probe, ok := b.allow(now.Add(time.Minute))
	require.True(t, ok)
	require.True(t, b.open(now.Add(time.Minute)), "one probe at a time")
	b.record(probe, false, false, now.Add(time.Minute))
	require.False(t, b.open(now.Add(time.Minute)))

	// The late failure belongs to a closed generation: ignored.
	b.record(slow, true, false, now.Add(time.Minute))
	g, _ := b.allow(now.Add(time.Minute))
	b.record(g, true, false, now.Add(time.Minute))
	require.False(t, b.open(now.Add(time.Minute)), "one failure of the new generation does not open")
	require.Equal(t, []breakerState{breakerOpen, breakerHalfOpen, breakerClosed}, states)
}

func TestBreakerJudgesTheFailureRate(t *testing.T) {
	t.Parallel()
	t.Run("a minority of failures in runs keeps it closed", func(t *testing.T) {
		b := newBreaker(5, 0.5, time.Minute, nil)
		now := time.Unix(1000, 0)
		// 2,000 attempts over 20 s, each hundred with a run of 8 failures
		// in a row: a consecutive-failure breaker would open at once.
		for i := range 2000 {
			at := now.Add(time.Duration(i) * 10 * time.Millisecond)
			g, ok := b.allow(at)
			require.True(t, ok, "attempt %d refused", i)
			b.record(g, i%100 >= 92, false, at)
		}
	})
	t.Run("half failing opens once the threshold is reached", func(t *testing.T) {
		b := newBreaker(5, 0.5, time.Minute, nil)
		now := time.Unix(1000, 0)
		for i := range 9 {
			g, _ := b.allow(now)
			b.record(g, i%2 == 1, false, now)
			require.False(t, b.open(now), "after %d attempts (%d failed)", i+1, (i+1)/2)
		}
		g, _ := b.allow(now)
		b.record(g, true, false, now) // 5 of 10 failed
		require.True(t, b.open(now))
	})
	t.Run("failures older than the window do not count", func(t *testing.T) {
		b := newBreaker(5, 0.5, time.Minute, nil)
		now := time.Unix(1000, 0)
		for range 4 {
			g, _ := b.allow(now)
			b.record(g, true, false, now)
		}
		later := now.Add(BreakerWindow + time.Second)
		g, _ := b.allow(later)
		b.record(g, true, false, later)
		require.False(t, b.open(later), "1 failure in the window")
		for range 4 {
			g, _ := b.allow(later)
			b.record(g, true, false, later)
		}
		require.True(t, b.open(later), "5 failures in the window, none succeeded")
	})
	t.Run("a dead receiver after many successes opens within the window", func(t *testing.T) {
		b := newBreaker(5, 0.5, time.Minute, nil)
		now := time.Unix(1000, 0)
		for i := range 1000 {
			at := now.Add(time.Duration(i) * time.Millisecond)
			g, _ := b.allow(at)
			b.record(g, false, false, at)
		}
		var opened time.Duration
		for i := range 20000 {
			d := time.Second + time.Duration(i)*time.Millisecond
			g, ok := b.allow(now.Add(d))
			if !ok {
				opened = d
				break
			}
			b.record(g, true, false, now.Add(d))
		}
		require.NotZero(t, opened, "never opened")
		require.Less(t, opened, 3*time.Second, "opened %v after the failures began", opened-time.Second)
	})
}

func TestBreakerNeutralProbeFreesTheSlot(t *testing.T) {
	t.Parallel()
	b := newBreaker(1, 0.5, time.Second, nil)
	now := time.Unix(1000, 0)
	g, _ := b.allow(now)
	b.record(g, true, false, now)
	require.True(t, b.open(now))

	later := now.Add(time.Second)
	probe, ok := b.allow(later)
	require.True(t, ok)
	_, ok = b.allow(later)
	require.False(t, ok)
	b.record(probe, true, true, later) // the caller gave up: no verdict
	probe, ok = b.allow(later)
	require.True(t, ok, "another attempt may probe")
	b.record(probe, true, false, later)
	require.True(t, b.open(later))
}

func TestRouterEvictsIdleState(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if r.URL.Path == "/hold" {
			<-release
		}
	}))
	t.Cleanup(srv.Close)
	w, err := NewWebhook(WebhookConfig{Policy: netguard.Policy{AllowLoopback: true}})
	require.NoError(t, err)
	t.Cleanup(w.Close)
	reg := prometheus.NewRegistry()
	r := NewRouter(w, nil, NewMetrics(reg))
	t.Cleanup(r.Close)
	var nowNanos atomic.Int64
	nowNanos.Store(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	r.Now = func() time.Time { return time.Unix(0, nowNanos.Load()) }
	advance := func(d time.Duration) { nowNanos.Add(int64(d)) }

	secret := "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	req := func(pipeline, path string) *Request {
		return &Request{
			TenantID:    "ten_1",
			PipelineID:  pipeline,
			Destination: &v1.Destination{Name: "hook", Kind: &v1.Destination_Webhook{Webhook: &v1.WebhookDestination{Url: srv.URL + path}}},
			Secrets:     []string{secret},
			Event:       &v1.Event{Id: "evt_1", Source: "/s", Type: "t", Data: []byte("{}")},
		}
	}
	series := func(pipeline string) bool {
		mfs, err := reg.Gather()
		require.NoError(t, err)
		for _, mf := range mfs {
			if mf.GetName() != "switchyard_breaker_state" {
				continue
			}
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "pipeline" && l.GetValue() == pipeline {
						return true
					}
				}
			}
		}
		return false
	}
	count := func() int {
		r.mu.Lock()
		defer r.mu.Unlock()
		return len(r.states)
	}

	ctx := context.Background()
	require.Equal(t, Delivered, r.Deliver(ctx, req("pip_a", "/")).Outcome)
	held := make(chan Result, 1)
	go func() { held <- r.Deliver(ctx, req("pip_held", "/hold")) }()
	require.Eventually(t, func() bool { return count() == 2 }, 5*time.Second, time.Millisecond)
	require.True(t, series("pip_a"))

	advance(DefaultIdleAfter + time.Second)
	require.Equal(t, Delivered, r.Deliver(ctx, req("pip_b", "/")).Outcome)
	require.Equal(t, 2, count(), "pip_a dropped, pip_held kept while in use, pip_b added")
	require.False(t, series("pip_a"), "the dropped destination's gauge series are deleted")
	require.True(t, series("pip_b"))
	require.True(t, series("pip_held"))

	close(release)
	require.Equal(t, Delivered, (<-held).Outcome)
	advance(DefaultIdleAfter + time.Second)
	require.Equal(t, Delivered, r.Deliver(ctx, req("pip_c", "/")).Outcome)
	require.Equal(t, 1, count(), "only pip_c remains")
}

func TestDestinationHash(t *testing.T) {
	t.Parallel()
	mk := func() *v1.Destination {
		return &v1.Destination{
			Name: "hook",
			Kind: &v1.Destination_Webhook{Webhook: &v1.WebhookDestination{
				Url: "https://example.com/a", Headers: map[string]string{"A": "1", "B": "2"},
				SigningSecrets: []*v1.SigningSecretInfo{{Id: "s1"}},
			}},
			MaxInFlight: 4,
			RateLimit:   &v1.RateLimit{PerSecond: 10},
		}
	}
	base := destinationHash(&Request{Destination: mk()})
	require.Equal(t, base, destinationHash(&Request{Destination: mk()}), "stable, whatever the map order")

	rotated := mk()
	rotated.GetWebhook().SigningSecrets = append(rotated.GetWebhook().SigningSecrets, &v1.SigningSecretInfo{Id: "s2"})
	require.Equal(t, base, destinationHash(&Request{Destination: rotated}), "a secret rotation keeps the state")

	for name, change := range map[string]func(*v1.Destination){
		"url":      func(d *v1.Destination) { d.GetWebhook().Url += "x" },
		"header":   func(d *v1.Destination) { d.GetWebhook().Headers["B"] = "3" },
		"inflight": func(d *v1.Destination) { d.MaxInFlight = 5 },
		"rate":     func(d *v1.Destination) { d.RateLimit.PerSecond = 11 },
		"burst":    func(d *v1.Destination) { d.RateLimit.Burst = 3 },
		"no rate":  func(d *v1.Destination) { d.RateLimit = nil },
		"kind": func(d *v1.Destination) {
			d.Kind = &v1.Destination_Kafka{Kafka: &v1.KafkaDestination{Topic: "https://example.com/a"}}
		},
	} {
		d := mk()
		change(d)
		require.NotEqual(t, base, destinationHash(&Request{Destination: d}), name)
	}
}
