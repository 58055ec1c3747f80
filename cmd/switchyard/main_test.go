package main

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if a test leaves goroutines behind: every server,
// pool and cluster the commands start must be gone when they return.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
