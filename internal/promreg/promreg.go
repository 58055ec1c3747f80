// Package promreg registers Prometheus collectors so that several
// components (or two servers in one process, as tests run them) can share a
// registry: registering a collector whose name is taken returns the one
// already there.
package promreg

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Register registers c with reg and returns it, or returns the collector of
// the same kind already registered under its name. Any other registration
// error is a programming mistake (a clash of names with different labels)
// and panics.
func Register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	err := reg.Register(c)
	if err == nil {
		return c
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing
		}
	}
	panic("registering metrics: " + err.Error())
}
