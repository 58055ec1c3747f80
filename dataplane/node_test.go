package dataplane

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard-dev/switchyard/dataplane/pipeline"
)

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	good := Config{ControlPlaneURL: "http://127.0.0.1:8080", Token: "node-token-0123456789", Region: "local"}
	n, err := New(good)
	require.NoError(t, err)
	require.Equal(t, DefaultListen, n.cfg.Listen)
	require.Equal(t, pipeline.DefaultTiers(), n.cfg.Tiers)
	require.Empty(t, n.Addr(), "nothing is bound before Run")

	tests := []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"no control plane", func(c *Config) { c.ControlPlaneURL = "" }, "control-plane URL is required"},
		{"bad control plane", func(c *Config) { c.ControlPlaneURL = "ftp://x" }, "want http(s)://host"},
		{"no token", func(c *Config) { c.Token = "" }, "node token is required"},
		{"no region", func(c *Config) { c.Region = "" }, "region (id or name) is required"},
		{"bad listen", func(c *Config) { c.Listen = "8081" }, "listen address"},
		{"bad broker", func(c *Config) { c.Brokers = []string{"kafka"} }, `Kafka broker "kafka"`},
		{"bad tier", func(c *Config) { c.Tiers = []pipeline.Tier{{Delay: time.Second}} }, "retry tier 0"},
		{"bad breaker", func(c *Config) { c.BreakerThreshold = -1 }, "breaker"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := good
			tc.edit(&cfg)
			_, err := New(cfg)
			require.ErrorContains(t, err, tc.want)
		})
	}
}
