package ledger

import (
	"log/slog"
	"os"
)

// testLogger logs to stderr when SWITCHYARD_TEST_LOG is set.
func testLogger() *slog.Logger {
	if os.Getenv("SWITCHYARD_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}
