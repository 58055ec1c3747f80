package kafkaname

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestNames(t *testing.T) {
	t.Parallel()
	require.Equal(t, "sy.ten_a.top_b", TenantTopic("ten_a", "top_b"))
	require.Equal(t, "sy.ten_a.pip_c", ConsumerGroup("ten_a", "pip_c"))
	require.Equal(t, "sy.ten_a.pip_c.dlq", DeadLetterTopic("ten_a", "pip_c"))
	require.Equal(t, "sy._retry.5s", RetryTopic(5*time.Second))
	require.Equal(t, "sy._retry.30m", RetryTopic(30*time.Minute))
	require.Equal(t, "sy._retry.2h", RetryTopic(2*time.Hour))
	require.Equal(t, "sy._retry.250ms", RetryTopic(250*time.Millisecond))
}

func TestTierFor(t *testing.T) {
	t.Parallel()
	require.Equal(t, 5*time.Second, TierFor(0))
	require.Equal(t, 5*time.Second, TierFor(5*time.Second))
	require.Equal(t, 30*time.Second, TierFor(6*time.Second))
	require.Equal(t, 2*time.Hour, TierFor(24*time.Hour))
}
