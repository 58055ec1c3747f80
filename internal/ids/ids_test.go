package ids

import (
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestNewIsWellFormedAndOrdered(t *testing.T) {
	t.Parallel()
	var all []string
	for range 10000 {
		id := New(Tenant)
		require.NoError(t, Check(Tenant, id))
		all = append(all, id)
	}
	require.True(t, slices.IsSorted(all), "identifiers made in sequence must sort in sequence")
	require.Len(t, all[0], len("ten_")+26)
	require.Equal(t, len(all), len(slices.Compact(slices.Clone(all))), "identifiers must be unique")
}

func TestTimeRoundTrip(t *testing.T) {
	t.Parallel()
	before := time.Now().Add(-time.Millisecond)
	id := New(Topic)
	got, err := Time(id)
	require.NoError(t, err)
	require.WithinDuration(t, before, got, 2*time.Second)
}

func TestCheckRejects(t *testing.T) {
	t.Parallel()
	good := New(Pipeline)
	for _, bad := range []string{
		"", "pip_", "pip", good[:len(good)-1], good + "0", "top" + good[3:],
		"pip_" + "8" + good[5:], "pip_" + "i" + good[5:], "PIP" + good[3:],
	} {
		require.ErrorIs(t, Check(Pipeline, bad), ErrInvalid, "%q", bad)
	}
}

func FuzzCheck(f *testing.F) {
	f.Add("ten", New(Tenant))
	f.Add("top", "top_zzzzzzzzzzzzzzzzzzzzzzzzzz")
	f.Fuzz(func(t *testing.T, prefix, id string) {
		if Check(prefix, id) == nil {
			if _, err := Time(id); err != nil {
				t.Fatalf("Check accepted %q but Time refused it: %v", id, err)
			}
		}
	})
}

func TestNewUUIDv7Format(t *testing.T) {
	t.Parallel()
	u := NewUUIDv7()
	require.Regexp(t, `^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`, u)
}

func BenchmarkNewUUIDv7(b *testing.B) {
	for b.Loop() {
		_ = NewUUIDv7()
	}
}
