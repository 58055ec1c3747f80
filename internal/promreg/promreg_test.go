package promreg

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

func TestRegisterReusesTheRegisteredCollector(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	opts := prometheus.CounterOpts{Name: "x_total", Help: "x"}
	first := Register(reg, prometheus.NewCounterVec(opts, []string{"a"}))
	second := Register(reg, prometheus.NewCounterVec(opts, []string{"a"}))
	require.Same(t, first, second)
	require.Panics(t, func() {
		Register(reg, prometheus.NewCounterVec(opts, []string{"b"}))
	}, "the same name with other labels is a mistake")
}
