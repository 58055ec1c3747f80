package sdkit

import (
	"testing"

	"github.com/switchyard-dev/switchyard/internal/testenv/pgtest"
)

// TestMain checks for leaked goroutines (pgtest.Main runs goleak).
func TestMain(m *testing.M) { pgtest.Main(m) }
