package e2e

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard-dev/switchyard/internal/netguard"
	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
)

// lockedBuffer is a bytes.Buffer safe for concurrent writes and reads.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// buildSwitchyard builds the switchyard binary into dir.
func buildSwitchyard(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "switchyard")
	start := time.Now()
	cmd := exec.CommandContext(t.Context(), "go", "build", "-o", bin, "github.com/switchyard-dev/switchyard/cmd/switchyard")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	t.Logf("built %s in %v", bin, time.Since(start).Round(time.Millisecond))
	return bin
}

// nodeProcess is a `switchyard dataplane` subprocess.
type nodeProcess struct {
	cmd    *exec.Cmd
	addr   string
	stderr *lockedBuffer
	exited chan struct{}
}

// startNodeProcess starts `switchyard dataplane` for the env's region and
// waits until /readyz answers 200.
func (e *env) startNodeProcess(bin string) *nodeProcess {
	e.t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(e.t, err)
	addr := l.Addr().String()
	require.NoError(e.t, l.Close())

	var delays []string
	for _, tier := range e.tiers {
		delays = append(delays, tier.Delay.String())
	}
	p := &nodeProcess{addr: addr, stderr: &lockedBuffer{}, exited: make(chan struct{})}
	p.cmd = exec.Command(bin, "dataplane",
		"--control-plane", e.cpURL,
		"--region", e.region.GetName(),
		"--kafka-brokers", strings.Join(e.brokers, ","),
		"--listen", addr,
		"--retry-tiers", strings.Join(delays, ","),
		"--retry-namespace", e.ns,
		"--allow-loopback-webhooks",
		"--kafka-session-timeout", "6s",
		"--log-format", "text", "--log-level", "warn",
	)
	// The token through the environment, as operators should pass it.
	p.cmd.Env = append(os.Environ(), "SWITCHYARD_NODE_TOKEN="+nodeToken)
	p.cmd.Stdout = p.stderr
	p.cmd.Stderr = p.stderr
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(e.t, p.cmd.Start())
	go func() {
		_ = p.cmd.Wait()
		close(p.exited)
	}()
	e.t.Cleanup(func() {
		p.kill()
		if e.t.Failed() {
			e.t.Logf("switchyard dataplane (pid %d) output:\n%s", p.cmd.Process.Pid, p.stderr.String())
		}
	})

	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-p.exited:
			e.t.Fatalf("switchyard dataplane exited during start-up:\n%s", p.stderr.String())
		default:
		}
		resp, err := e.hc.Get("http://" + addr + "/readyz")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("switchyard dataplane not ready within 30s:\n%s", p.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *nodeProcess) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

// TestKillNodeMidDelivery kills a data-plane process with SIGKILL while a
// slow receiver is taking its deliveries, starts it again, and counts: every
// event is delivered (lost = 0); some may be delivered twice.
func TestKillNodeMidDelivery(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{webhookPolicy: netguard.Policy{AllowLoopback: true}})
	bin := buildSwitchyard(t, t.TempDir())
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	start := time.Now()

	const total = 3000
	topic := e.createTopic("jobs", 4)
	s := newSink(t)
	s.delay = 10 * time.Millisecond
	p := e.createPipeline(&v1.Pipeline{
		Name: "slow", TopicId: topic.GetId(),
		Destinations: []*v1.Destination{webhook("hook", s.url(), 16)},
		RetryPolicy:  fastRetries(20),
	})
	s.secret = secretOf(p, "hook")
	first := e.startNodeProcess(bin)

	events := makeEvents("kill", total, 31)
	e.publishAll(ctx, e.ingestClient(first.addr, e.producerKey), "jobs", events, 200)
	want := idSet(events, nil)

	// Kill while deliveries are under way.
	for s.tally(want).unique < total/2 {
		require.NoError(t, ctx.Err(), "deliveries did not start: %s", s.tally(want))
		time.Sleep(5 * time.Millisecond)
	}
	first.kill()
	atKill := s.tally(want)
	t.Logf("SIGKILL at %s (after %v)", atKill, time.Since(start).Round(time.Millisecond))
	require.Less(t, atKill.unique, total, "the kill came too late to prove anything")

	restart := time.Now()
	e.startNodeProcess(bin)
	d, _ := ctx.Deadline()
	got := s.waitAll(t, "slow", want, time.Until(d))
	t.Logf("after restart: %s; restart to all delivered %v; total %v", got, time.Since(restart).Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	require.Zero(t, got.missing)
	require.Zero(t, got.unexpected)
}
