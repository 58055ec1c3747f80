// Package procstat samples the CPU time and resident memory of processes
// from Linux's /proc, to report what each process of a load test cost.
package procstat

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat;
// 100 on every Linux architecture Go supports.
const clockTicks = 100

// Sample is one reading of a process.
type Sample struct {
	// CPU is the user and system time the process has used since it
	// started.
	CPU time.Duration
	// RSS is its resident set size in bytes.
	RSS int64
}

// Read reads the process pid from /proc.
func Read(pid int) (Sample, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return Sample{}, fmt.Errorf("procstat: %w", err)
	}
	// The command name (field 2) is in parentheses and may hold spaces:
	// count fields after the last ')'.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return Sample{}, fmt.Errorf("procstat: malformed /proc/%d/stat", pid)
	}
	fields := strings.Fields(string(stat[i+1:]))
	// fields[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(fields) < 13 {
		return Sample{}, fmt.Errorf("procstat: short /proc/%d/stat", pid)
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		return Sample{}, fmt.Errorf("procstat: malformed times in /proc/%d/stat", pid)
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Sample{}, fmt.Errorf("procstat: %w", err)
	}
	s := Sample{CPU: time.Duration(utime+stime) * time.Second / clockTicks}
	for line := range strings.SplitSeq(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return Sample{}, fmt.Errorf("procstat: malformed VmRSS in /proc/%d/status", pid)
			}
			s.RSS = kb << 10
			break
		}
	}
	return s, nil
}

// Usage is what one process used over a sampling window.
type Usage struct {
	// Name says which process it is, e.g. "dataplane-1".
	Name string `json:"name"`
	// PID is the last process id seen (a restarted process has a new one).
	PID int `json:"pid"`
	// CPUCores is the average CPU used, in cores (1.0 = one core busy).
	CPUCores float64 `json:"cpu_cores"`
	// PeakRSSMiB is the largest resident set size sampled, in MiB.
	PeakRSSMiB float64 `json:"peak_rss_mib"`
	// Restarts counts the times the process id changed during the window.
	Restarts int `json:"restarts,omitempty"`
}

// Sampler reads a set of processes at an interval between Start and Stop.
// A process is named and found through a function, so a restarted process
// (a new pid under the same name) is followed.
type Sampler struct {
	interval time.Duration

	mu      sync.Mutex
	targets []*target
	start   time.Time
	stop    chan struct{}
	done    chan struct{}
}

type target struct {
	name     string
	pid      func() int
	lastPID  int
	lastCPU  time.Duration
	used     time.Duration
	peakRSS  int64
	restarts int
}

// NewSampler returns a sampler reading every interval (0 means 500 ms).
func NewSampler(interval time.Duration) *Sampler {
	if interval <= 0 {
		interval = 500 * time.Millisecond
	}
	return &Sampler{interval: interval}
}

// Watch adds a process: pid returns its current id, or 0 while it does
// not run. Call before Start.
func (s *Sampler) Watch(name string, pid func() int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.targets = append(s.targets, &target{name: name, pid: pid})
}

// Start takes a first reading and samples in the background until Stop.
func (s *Sampler) Start() {
	s.mu.Lock()
	s.start = time.Now()
	s.stop, s.done = make(chan struct{}), make(chan struct{})
	for _, t := range s.targets {
		t.lastPID = t.pid()
		if t.lastPID > 0 {
			if smp, err := Read(t.lastPID); err == nil {
				t.lastCPU, t.peakRSS = smp.CPU, smp.RSS
			} else {
				t.lastPID = 0
			}
		}
	}
	s.mu.Unlock()
	go s.loop()
}

func (s *Sampler) loop() {
	defer close(s.done)
	tick := time.NewTicker(s.interval)
	defer tick.Stop()
	for {
		select {
		case <-s.stop:
			s.sample()
			return
		case <-tick.C:
			s.sample()
		}
	}
}

func (s *Sampler) sample() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.targets {
		pid := t.pid()
		if pid <= 0 {
			continue
		}
		smp, err := Read(pid)
		if err != nil {
			continue // exited between pid() and the read
		}
		if pid != t.lastPID {
			// A new process: everything it used, it used in the window
			// (the time of the dead one since its last sample is lost).
			if t.lastPID != 0 {
				t.restarts++
			}
			t.lastPID, t.lastCPU = pid, 0
		}
		t.used += smp.CPU - t.lastCPU
		t.lastCPU = smp.CPU
		t.peakRSS = max(t.peakRSS, smp.RSS)
	}
}

// Stop takes a last reading and returns each process's usage since Start.
func (s *Sampler) Stop() []Usage {
	close(s.stop)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	wall := time.Since(s.start).Seconds()
	out := make([]Usage, 0, len(s.targets))
	for _, t := range s.targets {
		out = append(out, Usage{
			Name: t.name, PID: t.lastPID, CPUCores: t.used.Seconds() / wall,
			PeakRSSMiB: float64(t.peakRSS) / (1 << 20), Restarts: t.restarts,
		})
	}
	return out
}
