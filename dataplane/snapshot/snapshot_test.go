package snapshot

import (
	"testing"

	"github.com/stretchr/testify/require"

	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
)

func TestIndexes(t *testing.T) {
	t.Parallel()
	s := New(&v1.ConfigSnapshot{
		Version:   7,
		Regions:   []*v1.Region{{Id: "reg_1", Name: "local"}},
		Tenants:   []*v1.Tenant{{Id: "ten_1", Name: "acme"}},
		Topics:    []*v1.Topic{{Id: "top_1", TenantId: "ten_1", Name: "orders"}, {Id: "top_2", TenantId: "ten_2", Name: "orders"}},
		Pipelines: []*v1.Pipeline{{Id: "pip_1", TopicId: "top_1"}, {Id: "pip_2", TopicId: "top_1"}},
		ApiKeys:   []*v1.ApiKeyCredential{{Id: "key_1", TenantId: "ten_1"}},
		SigningSecrets: []*v1.SigningSecrets{
			{PipelineId: "pip_1", Destination: "hook", Secrets: []string{"whsec_new", "whsec_old"}},
		},
	})
	require.EqualValues(t, 7, s.Version())
	top, ok := s.TopicByName("ten_2", "orders")
	require.True(t, ok)
	require.Equal(t, "top_2", top.GetId())
	_, ok = s.TopicByName("ten_3", "orders")
	require.False(t, ok)
	require.Len(t, s.PipelinesOfTopic("top_1"), 2)
	require.Empty(t, s.PipelinesOfTopic("top_2"))
	require.Equal(t, []string{"whsec_new", "whsec_old"}, s.SigningSecrets("pip_1", "hook"))
	r, ok := s.RegionByName("local")
	require.True(t, ok)
	require.Equal(t, "reg_1", r.GetId())
	k, ok := s.APIKey("key_1")
	require.True(t, ok)
	require.Equal(t, "ten_1", k.GetTenantId())
}

func TestHolder(t *testing.T) {
	t.Parallel()
	var h Holder
	require.EqualValues(t, 0, h.Current().Version())
	var seen []int64
	h.Subscribe(func(s *Snapshot) { seen = append(seen, s.Version()) })
	require.True(t, h.Set(New(&v1.ConfigSnapshot{Version: 2})))
	require.False(t, h.Set(New(&v1.ConfigSnapshot{Version: 1})), "older snapshots are ignored")
	require.True(t, h.Set(New(&v1.ConfigSnapshot{Version: 3})))
	require.Equal(t, []int64{2, 3}, seen)
	var late []int64
	h.Subscribe(func(s *Snapshot) { late = append(late, s.Version()) })
	require.Equal(t, []int64{3}, late, "a new subscriber gets the current snapshot at once")
}
