package pipeline

import (
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/switchyard-dev/switchyard/dataplane/deliver"
	"github.com/switchyard-dev/switchyard/dataplane/snapshot"
	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
)

func TestWatermarkRandomOrder(t *testing.T) {
	t.Parallel()
	rnd := rand.New(rand.NewPCG(1, 2))
	for round := range 200 {
		var w watermark
		_, ok := w.commit()
		require.False(t, ok, "nothing to commit before any record")
		n := 1 + rnd.IntN(3000)
		// Offsets with gaps (compaction, transaction markers).
		offsets := make([]int64, n)
		tickets := make([]uint64, n)
		off := int64(rnd.IntN(100))
		for i := range n {
			offsets[i] = off
			tickets[i] = w.add(off, 3)
			off += 1 + int64(rnd.IntN(3))
		}
		// done[i] tells whether offsets[i] is final; low is the first
		// index not final, so offsets[low] is the smallest incomplete one.
		done := make([]bool, n)
		low := 0
		order := rnd.Perm(n)
		var last int64 = -1
		for step, i := range order {
			w.done(tickets[i])
			if rnd.IntN(10) == 0 {
				w.done(tickets[i]) // repeated marks are ignored
			}
			done[i] = true
			for low < n && done[low] {
				low++
			}
			eo, ok := w.commit()
			require.True(t, ok)
			require.GreaterOrEqual(t, eo.Offset, last, "round %d step %d: the watermark went back", round, step)
			last = eo.Offset
			if low < n {
				require.LessOrEqual(t, eo.Offset, offsets[low], "round %d: committed past an incomplete record", round)
				require.Equal(t, offsets[low], eo.Offset, "round %d: the watermark stops at the first incomplete record", round)
			}
			if step%97 == 0 {
				require.Equal(t, n-step-1, w.pending())
			}
		}
		eo, _ := w.commit()
		require.Equal(t, offsets[n-1]+1, eo.Offset, "all final: commit after the last record")
		require.EqualValues(t, 3, eo.Epoch)
	}
}

func TestWatermarkInterleaved(t *testing.T) {
	t.Parallel()
	// Records keep arriving while others finish: the tracker compacts.
	rnd := rand.New(rand.NewPCG(3, 4))
	var w watermark
	var open []uint64
	openOff := map[uint64]int64{}
	var next int64
	for range 50000 {
		if rnd.IntN(2) == 0 || len(open) == 0 {
			tk := w.add(next, 0)
			open = append(open, tk)
			openOff[tk] = next
			next++
			continue
		}
		i := rnd.IntN(len(open))
		tk := open[i]
		open = append(open[:i], open[i+1:]...)
		w.done(tk)
		delete(openOff, tk)
		eo, _ := w.commit()
		if rnd.IntN(50) != 0 {
			continue
		}
		for _, o := range openOff {
			require.LessOrEqual(t, eo.Offset, o)
		}
	}
	for _, tk := range open {
		w.done(tk)
	}
	eo, _ := w.commit()
	require.Equal(t, next, eo.Offset)
	require.Equal(t, 0, w.pending())
}

func policy(attempts uint32, maxAge, initial, maxB time.Duration, mult float64, j v1.Jitter) retryPolicy {
	return policyOf(&v1.RetryPolicy{MaxAttempts: attempts, MaxAge: durationpb.New(maxAge),
		InitialBackoff: durationpb.New(initial), MaxBackoff: durationpb.New(maxB), Multiplier: mult, Jitter: j})
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	one := func() float64 { return 0.999999999 }
	zero := func() float64 { return 0 }
	half := func() float64 { return 0.5 }
	s := time.Second
	for _, tc := range []struct {
		name    string
		p       retryPolicy
		attempt int
		rnd     func() float64
		want    time.Duration
	}{
		{"none first", policy(10, time.Hour, s, time.Minute, 2, v1.Jitter_JITTER_NONE), 1, zero, s},
		{"none grows", policy(10, time.Hour, s, time.Minute, 2, v1.Jitter_JITTER_NONE), 4, zero, 8 * s},
		{"none capped", policy(10, time.Hour, s, time.Minute, 2, v1.Jitter_JITTER_NONE), 20, zero, time.Minute},
		{"huge attempt capped", policy(100, time.Hour, s, time.Minute, 10, v1.Jitter_JITTER_NONE), 1000, zero, time.Minute},
		{"multiplier 1", policy(10, time.Hour, s, time.Minute, 1, v1.Jitter_JITTER_NONE), 7, zero, s},
		{"full low", policy(10, time.Hour, s, time.Minute, 2, v1.Jitter_JITTER_FULL), 3, zero, 0},
		{"full mid", policy(10, time.Hour, s, time.Minute, 2, v1.Jitter_JITTER_FULL), 3, half, 2 * s},
		{"equal low", policy(10, time.Hour, s, time.Minute, 2, v1.Jitter_JITTER_EQUAL), 3, zero, 2 * s},
		{"equal high", policy(10, time.Hour, s, time.Minute, 2, v1.Jitter_JITTER_EQUAL), 3, one, 4 * s},
		{"unspecified is full", policy(10, time.Hour, s, time.Minute, 2, v1.Jitter_JITTER_UNSPECIFIED), 2, half, s},
		{"defaults", policyOf(nil), 2, zero, 0},
		{"defaults none", policyOf(&v1.RetryPolicy{Jitter: v1.Jitter_JITTER_NONE}), 2, zero, 10 * s},
	} {
		got := tc.p.backoff(tc.attempt, tc.rnd)
		require.InDelta(t, float64(tc.want), float64(got), float64(time.Millisecond), tc.name)
	}

	// Jitter bounds over many draws.
	rnd := rand.New(rand.NewPCG(5, 6))
	full := policy(10, time.Hour, s, time.Minute, 2, v1.Jitter_JITTER_FULL)
	equal := policy(10, time.Hour, s, time.Minute, 2, v1.Jitter_JITTER_EQUAL)
	for range 10000 {
		a := 1 + rnd.IntN(12)
		b := min(time.Minute, s<<(a-1))
		f := full.backoff(a, rnd.Float64)
		require.True(t, f >= 0 && f <= b, "full jitter %s outside [0, %s]", f, b)
		e := equal.backoff(a, rnd.Float64)
		require.True(t, e >= b/2 && e <= b, "equal jitter %s outside [%s, %s]", e, b/2, b)
	}
}

func TestNext(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	zero := func() float64 { return 0 }
	p := policy(5, time.Hour, time.Second, time.Minute, 2, v1.Jitter_JITTER_NONE)
	for _, tc := range []struct {
		name       string
		attempt    int
		first      time.Time
		retryAfter time.Duration
		want       time.Duration
		reason     string
	}{
		{"first failure", 1, now, 0, time.Second, ""},
		{"retry-after longer wins", 1, now, 30 * time.Second, 30 * time.Second, ""},
		{"retry-after shorter ignored", 3, now, time.Second, 4 * time.Second, ""},
		{"retry-after capped at max_backoff", 1, now, 10 * time.Hour, time.Minute, ""},
		{"last attempt", 5, now, 0, 0, ReasonMaxAttempts},
		{"beyond attempts", 7, now, 0, 0, ReasonMaxAttempts},
		{"next try after max_age", 2, now.Add(-time.Hour + time.Second), 0, 0, ReasonMaxAge},
		{"next try exactly at max_age", 2, now.Add(-time.Hour + 2*time.Second), 0, 2 * time.Second, ""},
		{"capped retry-after beyond max_age", 1, now.Add(-59*time.Minute - 30*time.Second), 5 * time.Minute, 0, ReasonMaxAge},
	} {
		d, reason := p.next(tc.attempt, tc.first, now, tc.retryAfter, zero)
		require.Equal(t, tc.reason, reason, tc.name)
		require.Equal(t, tc.want, d, tc.name)
	}
	// max_attempts 1: no retry at all.
	_, reason := policy(1, time.Hour, time.Second, time.Minute, 2, v1.Jitter_JITTER_NONE).next(1, now, now, 0, zero)
	require.Equal(t, ReasonMaxAttempts, reason)
}

type reasonErr struct{}

func (reasonErr) Error() string  { return "refused" }
func (reasonErr) Reason() string { return "address_refused" }

func TestPermanentReason(t *testing.T) {
	t.Parallel()
	require.Equal(t, ReasonNonRetryableStatus, permanentReason(deliver.Result{Outcome: deliver.Permanent, StatusCode: 410}))
	require.Equal(t, "address_refused", permanentReason(deliver.Result{Outcome: deliver.Permanent, Err: errors.Join(reasonErr{})}))
	require.Equal(t, ReasonPermanentError, permanentReason(deliver.Result{Outcome: deliver.Permanent, Err: errors.New("x")}))
}

func TestTierFor(t *testing.T) {
	t.Parallel()
	tiers := DefaultTiers()
	require.Equal(t, 5*time.Second, tierFor(tiers, 0).Delay)
	require.Equal(t, 5*time.Second, tierFor(tiers, 5*time.Second).Delay)
	require.Equal(t, 30*time.Second, tierFor(tiers, 6*time.Second).Delay)
	require.Equal(t, 2*time.Hour, tierFor(tiers, 24*time.Hour).Delay)
	require.Equal(t, "sy._retry.5s", tiers[0].Topic)
	require.Equal(t, "sy._retry.5s", tiers[0].Group)
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	_, err := New(Config{})
	require.ErrorContains(t, err, "Brokers is required")
	require.ErrorContains(t, err, "Snapshots is required")
	require.ErrorContains(t, err, "RegionID is required")
	require.ErrorContains(t, err, "Deliverer is required")
	require.ErrorContains(t, err, "Producer is required")
	_, err = New(Config{Tiers: []Tier{{Delay: time.Second, Topic: "a", Group: "a"}, {Delay: time.Second, Topic: "b", Group: "b"}, {Topic: "c"}}})
	require.ErrorContains(t, err, "two tiers have the delay 1s")
	require.ErrorContains(t, err, "Delay, Topic and Group are required")
}

func TestDesired(t *testing.T) {
	t.Parallel()
	r := &Runner{cfg: Config{RegionID: "reg_a"}}
	dest := []*v1.Destination{{Name: "d"}}
	snap := snapshot.New(&v1.ConfigSnapshot{
		Topics: []*v1.Topic{{Id: "top_a", TenantId: "ten", RegionId: "reg_a", KafkaTopic: "ka"}, {Id: "top_b", RegionId: "reg_b"}},
		Pipelines: []*v1.Pipeline{
			{Id: "pip_run", TopicId: "top_a", Destinations: dest},
			{Id: "pip_paused", TopicId: "top_a", Destinations: dest, Paused: true},
			{Id: "pip_other_region", TopicId: "top_b", Destinations: dest},
			{Id: "pip_no_topic", TopicId: "top_x", Destinations: dest},
			{Id: "pip_no_dest", TopicId: "top_a"},
		},
	})
	want := r.desired(snap)
	require.Len(t, want, 1)
	require.Equal(t, "ka", want["pip_run"].kafkaTopic)
	h := want["pip_run"].hash
	snap2 := snapshot.New(&v1.ConfigSnapshot{
		Topics:    []*v1.Topic{{Id: "top_a", TenantId: "ten", RegionId: "reg_a", KafkaTopic: "ka"}},
		Pipelines: []*v1.Pipeline{{Id: "pip_run", TopicId: "top_a", Destinations: dest, Ordering: v1.OrderingMode_ORDERING_MODE_KEY}},
	})
	require.NotEqual(t, h, r.desired(snap2)["pip_run"].hash, "a changed pipeline restarts")
}
