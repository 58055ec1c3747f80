package harness

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// Process is a `switchyard` subprocess serving HTTP: the control plane or a
// data-plane node. It can be killed with SIGKILL and started again on the
// same address.
type Process struct {
	name    string
	bin     string
	args    []string
	env     []string
	addr    string
	logPath string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

// Name says which process it is, e.g. "dataplane-1".
func (p *Process) Name() string { return p.name }

// URL is the base URL the process serves on.
func (p *Process) URL() string { return "http://" + p.addr }

// LogPath is the file the process's output goes to.
func (p *Process) LogPath() string { return p.logPath }

// PID returns the process id, or 0 when it does not run.
func (p *Process) PID() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return 0
	}
	select {
	case <-p.exited:
		return 0
	default:
		return p.cmd.Process.Pid
	}
}

// start runs the process and waits until GET /readyz answers 200.
func (p *Process) start(ctx context.Context) error {
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("%s: %w", p.name, err)
	}
	cmd := exec.Command(p.bin, p.args...)
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group, and killed with us if we die.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		return fmt.Errorf("%s: %w", p.name, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		_ = logf.Close()
		close(exited)
	}()
	p.mu.Lock()
	p.cmd, p.exited = cmd, exited
	p.mu.Unlock()

	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	hc := &http.Client{Timeout: 2 * time.Second}
	defer hc.CloseIdleConnections()
	for {
		select {
		case <-exited:
			return fmt.Errorf("%s exited during start-up (see %s)", p.name, p.logPath)
		default:
		}
		if res, err := hc.Get(p.URL() + "/readyz"); err == nil {
			_ = res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			p.Kill()
			return fmt.Errorf("%s not ready: %w (see %s)", p.name, ctx.Err(), p.logPath)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Kill sends SIGKILL and waits until the process is gone.
func (p *Process) Kill() {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-exited
}

// Restart starts a process that was killed or stopped again, on the same
// address, and waits until it is ready.
func (p *Process) Restart(ctx context.Context) error {
	if p.PID() != 0 {
		return fmt.Errorf("%s still runs", p.name)
	}
	return p.start(ctx)
}

// Stop sends SIGTERM and waits up to timeout for a graceful exit, then
// kills the process.
func (p *Process) Stop(timeout time.Duration) {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(timeout):
		p.Kill()
	}
}

// freeAddr returns a loopback address with a port nothing listens on.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := l.Addr().String()
	return addr, errors.Join(l.Close())
}
