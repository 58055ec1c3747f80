package storetest

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/switchyard-dev/switchyard/controlplane/store"
)

// ids of a list of messages with an Id.
func idsOf[M interface{ GetId() string }](ms []M) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.GetId()
	}
	return out
}

// pageThrough creates 25 objects, then pages through them 7 at a time,
// creating one more object between pages, and checks that every object
// that existed at the start is seen exactly once, in id order.
func pageThrough(t *testing.T, create func(i int) string, list func(after string, limit int) []string) {
	t.Helper()
	initial := map[string]bool{}
	for i := range 25 {
		initial[create(i)] = true
	}
	seen := map[string]int{}
	var all []string
	after := ""
	pages := 0
	for n := 25; ; n++ {
		page := list(after, 7)
		pages++
		require.LessOrEqual(t, len(page), 7)
		for _, id := range page {
			seen[id]++
			if len(all) > 0 {
				require.Greater(t, id, all[len(all)-1], "ids out of order")
			}
			all = append(all, id)
		}
		if len(page) < 7 {
			break
		}
		after = page[len(page)-1]
		create(n) // insert between pages
		require.Less(t, pages, 20, "paging does not end")
	}
	for id := range initial {
		require.Equal(t, 1, seen[id], "object %s seen %d times", id, seen[id])
	}
	for id, n := range seen {
		require.Equal(t, 1, n, "object %s repeated", id)
	}
	require.GreaterOrEqual(t, pages, 4)
}

func testPagination(t *testing.T, s store.Store) {
	tn := mkTenant(t, s, "paging")
	top := mkTopic(t, s, tn.Id, "paging")
	// Objects of another tenant must not show up in tenant-scoped pages.
	other := mkTenant(t, s, "other")
	otherTop := mkTopic(t, s, other.Id, "other")

	t.Run("tenants", func(t *testing.T) {
		pageThrough(t, func(i int) string { return mkTenant(t, s, fmt.Sprintf("t%02d", i)).Id },
			func(after string, limit int) []string {
				l, err := s.ListTenants(ctx(t), store.ListParams{AfterID: after, Limit: limit})
				require.NoError(t, err)
				return idsOf(l)
			})
	})
	t.Run("regions", func(t *testing.T) {
		pageThrough(t, func(i int) string { return mkRegion(t, s, fmt.Sprintf("r%02d", i)).Id },
			func(after string, limit int) []string {
				l, err := s.ListRegions(ctx(t), store.ListParams{AfterID: after, Limit: limit})
				require.NoError(t, err)
				return idsOf(l)
			})
	})
	t.Run("topics", func(t *testing.T) {
		pageThrough(t, func(i int) string {
			mkTopic(t, s, other.Id, fmt.Sprintf("o%02d", i))
			return mkTopic(t, s, tn.Id, fmt.Sprintf("t%02d", i)).Id
		}, func(after string, limit int) []string {
			l, err := s.ListTopics(ctx(t), store.ListParams{TenantID: tn.Id, AfterID: after, Limit: limit})
			require.NoError(t, err)
			for _, tp := range l {
				require.Equal(t, tn.Id, tp.TenantId)
			}
			return idsOf(l)
		})
	})
	t.Run("pipelines", func(t *testing.T) {
		pageThrough(t, func(i int) string {
			mkPipeline(t, s, other.Id, otherTop.Id, fmt.Sprintf("o%02d", i))
			p, _ := mkPipeline(t, s, tn.Id, top.Id, fmt.Sprintf("p%02d", i))
			return p.Id
		}, func(after string, limit int) []string {
			l, err := s.ListPipelines(ctx(t), store.ListParams{TenantID: tn.Id, TopicID: top.Id, AfterID: after, Limit: limit})
			require.NoError(t, err)
			for _, p := range l {
				require.Equal(t, tn.Id, p.TenantId)
				require.Len(t, hookOf(t, p, "hook").SigningSecrets, 1)
			}
			return idsOf(l)
		})
	})
	t.Run("api keys", func(t *testing.T) {
		pageThrough(t, func(i int) string {
			mkAPIKey(t, s, other.Id, fmt.Sprintf("o%02d", i))
			return mkAPIKey(t, s, tn.Id, fmt.Sprintf("k%02d", i)).Id
		}, func(after string, limit int) []string {
			l, err := s.ListAPIKeys(ctx(t), store.ListParams{TenantID: tn.Id, AfterID: after, Limit: limit})
			require.NoError(t, err)
			for _, k := range l {
				require.Equal(t, tn.Id, k.TenantId)
			}
			return idsOf(l)
		})
	})
}

func testTenantScoping(t *testing.T, s store.Store) {
	a := mkTenant(t, s, "a")
	b := mkTenant(t, s, "b")
	topA := mkTopic(t, s, a.Id, "orders")
	topA2 := mkTopic(t, s, a.Id, "refunds")
	topB := mkTopic(t, s, b.Id, "orders")
	pA, _ := mkPipeline(t, s, a.Id, topA.Id, "ship")
	pA2, _ := mkPipeline(t, s, a.Id, topA2.Id, "refund")
	pB, _ := mkPipeline(t, s, b.Id, topB.Id, "ship")
	kA := mkAPIKey(t, s, a.Id, "admin")
	kB := mkAPIKey(t, s, b.Id, "admin")

	all := store.ListParams{Limit: 100}
	scoped := func(tenantID string) store.ListParams { p := all; p.TenantID = tenantID; return p }

	topics, err := s.ListTopics(ctx(t), scoped(a.Id))
	require.NoError(t, err)
	require.Equal(t, []string{topA.Id, topA2.Id}, idsOf(topics))
	topics, err = s.ListTopics(ctx(t), scoped(b.Id))
	require.NoError(t, err)
	require.Equal(t, []string{topB.Id}, idsOf(topics))

	ps, err := s.ListPipelines(ctx(t), scoped(a.Id))
	require.NoError(t, err)
	require.Equal(t, []string{pA.Id, pA2.Id}, idsOf(ps))
	ps, err = s.ListPipelines(ctx(t), scoped(b.Id))
	require.NoError(t, err)
	require.Equal(t, []string{pB.Id}, idsOf(ps))
	// A topic of tenant b under tenant a lists nothing.
	p := scoped(a.Id)
	p.TopicID = topB.Id
	ps, err = s.ListPipelines(ctx(t), p)
	require.NoError(t, err)
	require.Empty(t, ps)

	keys, err := s.ListAPIKeys(ctx(t), scoped(a.Id))
	require.NoError(t, err)
	require.Equal(t, []string{kA.Id}, idsOf(keys))
	keys, err = s.ListAPIKeys(ctx(t), scoped(b.Id))
	require.NoError(t, err)
	require.Equal(t, []string{kB.Id}, idsOf(keys))

	// Tenant-owned lists need a tenant.
	_, err = s.ListTopics(ctx(t), all)
	require.Error(t, err)
	_, err = s.ListPipelines(ctx(t), all)
	require.Error(t, err)
	_, err = s.ListAPIKeys(ctx(t), all)
	require.Error(t, err)

	audit, err := s.ListAudit(ctx(t), store.AuditFilter{TenantID: b.Id, Limit: 100})
	require.NoError(t, err)
	require.Len(t, audit, 4) // tenant, topic, pipeline, key
	for _, e := range audit {
		require.Equal(t, b.Id, e.TenantID)
	}
}
