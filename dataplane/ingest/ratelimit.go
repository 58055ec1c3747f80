package ingest

import (
	"fmt"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/switchyard-dev/switchyard/dataplane/snapshot"
)

// quotas are a tenant's ingest quotas with the defaults filled in.
type quotas struct {
	eventsPerSecond int
	burst           int
	maxEventBytes   int
}

// quotasOf returns the quotas of tenantID in snap; a tenant missing from the
// snapshot gets the defaults.
func quotasOf(snap *snapshot.Snapshot, tenantID string) quotas {
	var q quotas
	if t, ok := snap.Tenant(tenantID); ok {
		tq := t.GetQuotas()
		q = quotas{
			eventsPerSecond: int(tq.GetEventsPerSecond()),
			burst:           int(tq.GetBurst()),
			maxEventBytes:   int(tq.GetMaxEventBytes()),
		}
	}
	if q.eventsPerSecond <= 0 {
		q.eventsPerSecond = DefaultEventsPerSecond
	}
	if q.burst <= 0 {
		q.burst = q.eventsPerSecond
	}
	if q.maxEventBytes <= 0 {
		q.maxEventBytes = DefaultMaxEventBytes
	}
	q.maxEventBytes = min(q.maxEventBytes, MaxEventBytesLimit)
	return q
}

// rateLimitError refuses a batch the tenant's token bucket cannot admit.
type rateLimitError struct {
	// n is the number of events refused.
	n int
	// retryAfter is when the batch would fit; 0 when it never can (larger
	// than the burst).
	retryAfter time.Duration
	// burst is the tenant's burst.
	burst int
}

// Error implements error.
func (e *rateLimitError) Error() string {
	if e.retryAfter <= 0 {
		return fmt.Sprintf("a batch of %d events exceeds the tenant's burst of %d events: send smaller batches", e.n, e.burst)
	}
	return fmt.Sprintf("rate limit exceeded: %d events do not fit the tenant's quota now; retry in %s", e.n, e.retryAfter)
}

// tenantLimiter is the token bucket of one tenant and the quota it was built
// from.
type tenantLimiter struct {
	eventsPerSecond int
	burst           int
	lim             *rate.Limiter
}

// limiterSet holds a token bucket per tenant. A bucket is rebuilt when its
// tenant's quota changes; buckets of tenants gone from the snapshot are
// dropped when a new snapshot is seen.
type limiterSet struct {
	mu       sync.Mutex
	version  int64
	byTenant map[string]*tenantLimiter
}

// admit takes n tokens from tenantID's bucket at now, or returns a
// *rateLimitError and takes none.
func (l *limiterSet) admit(snap *snapshot.Snapshot, tenantID string, q quotas, n int, now time.Time) error {
	if n > q.burst {
		return &rateLimitError{n: n, burst: q.burst}
	}
	lim := l.limiter(snap, tenantID, q)
	r := lim.ReserveN(now, n)
	if !r.OK() {
		return &rateLimitError{n: n, burst: q.burst}
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return &rateLimitError{n: n, retryAfter: d, burst: q.burst}
	}
	return nil
}

// limiter returns tenantID's bucket for quota q, building it when missing or
// when the quota changed.
func (l *limiterSet) limiter(snap *snapshot.Snapshot, tenantID string, q quotas) *rate.Limiter {
	l.mu.Lock()
	defer l.mu.Unlock()
	if v := snap.Version(); v != l.version {
		l.version = v
		for id := range l.byTenant {
			if _, ok := snap.Tenant(id); !ok && id != tenantID {
				delete(l.byTenant, id)
			}
		}
	}
	tl := l.byTenant[tenantID]
	if tl == nil || tl.eventsPerSecond != q.eventsPerSecond || tl.burst != q.burst {
		tl = &tenantLimiter{
			eventsPerSecond: q.eventsPerSecond,
			burst:           q.burst,
			lim:             rate.NewLimiter(rate.Limit(q.eventsPerSecond), q.burst),
		}
		l.byTenant[tenantID] = tl
	}
	return tl.lim
}
