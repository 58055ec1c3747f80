package procstat_test

import (
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/loadtest/procstat"
)

func TestReadSelf(t *testing.T) {
	t.Parallel()
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	s, err := procstat.Read(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if s.RSS <= 0 {
		t.Fatalf("RSS %d", s.RSS)
	}
}

// A busy loop shows as CPU used by this process.
func TestSamplerSeesBusyProcess(t *testing.T) {
	t.Parallel()
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	s := procstat.NewSampler(50 * time.Millisecond)
	s.Watch("self", os.Getpid)
	s.Watch("absent", func() int { return 0 })
	s.Start()
	deadline := time.Now().Add(300 * time.Millisecond)
	x := 0
	for time.Now().Before(deadline) {
		x++
	}
	u := s.Stop()
	if len(u) != 2 || u[0].Name != "self" || u[1].Name != "absent" {
		t.Fatalf("usage %+v", u)
	}
	if u[0].CPUCores < 0.2 || u[0].PeakRSSMiB <= 0 {
		t.Fatalf("busy loop (%d turns) measured as %+v", x, u[0])
	}
	if u[1].CPUCores != 0 || u[1].PID != 0 {
		t.Fatalf("absent process measured as %+v", u[1])
	}
}
