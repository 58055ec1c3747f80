package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// syncBuffer is a bytes.Buffer safe for one writer and concurrent readers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// requirePostgresBinaries skips the test when the PostgreSQL server binaries
// are missing, except in CI, which installs them and must not skip.
func requirePostgresBinaries(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("initdb"); err == nil {
		return
	}
	if m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb"); len(m) > 0 {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatal("PostgreSQL server binaries (initdb) not found; CI must install them")
	}
	t.Skip("PostgreSQL server binaries (initdb) not found; install postgresql to run this test")
}

// freeTCPPort returns a port on 127.0.0.1 that was free a moment ago.
func freeTCPPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	return port
}

// devRun is one in-process `switchyard dev`.
type devRun struct {
	stdout, stderr *syncBuffer
	cancel         context.CancelFunc
	exited         chan struct{} // closed when the command has returned
	err            error         // what it returned; read after exited
	base           string
}

// startDev runs `switchyard dev` with args in a goroutine and waits until
// /readyz answers 200.
func startDev(t *testing.T, httpPort int, args ...string) *devRun {
	t.Helper()
	r := &devRun{
		stdout: &syncBuffer{},
		stderr: &syncBuffer{},
		exited: make(chan struct{}),
		base:   fmt.Sprintf("http://127.0.0.1:%d", httpPort),
	}
	// An empty environment: a DATABASE_URL meant for other tests must not
	// send dev to an outside database.
	root := newRootCommand(r.stdout, r.stderr, envMap(nil))
	root.SetArgs(append([]string{"dev", "--listen", fmt.Sprintf("127.0.0.1:%d", httpPort)}, args...))
	ctx, cancel := context.WithCancel(t.Context())
	r.cancel = cancel
	go func() {
		r.err = root.ExecuteContext(ctx)
		close(r.exited)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.exited:
		case <-time.After(time.Minute):
		}
	})

	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		select {
		case <-r.exited:
			t.Fatalf("dev exited before it was ready: %v\nstderr:\n%s", r.err, r.stderr.String())
		default:
		}
		resp, err := client.Get(r.base + "/readyz")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("dev not ready after 2m (last error %v)\nstderr:\n%s", err, r.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return r
}

// stop cancels the run and waits for it to return.
func (r *devRun) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	select {
	case <-r.exited:
		require.NoError(t, r.err, "stderr:\n%s", r.stderr.String())
	case <-time.After(time.Minute):
		t.Fatalf("dev did not stop within a minute\nstderr:\n%s", r.stderr.String())
	}
}

// call posts a Connect JSON request and decodes the JSON answer.
func (r *devRun) call(t *testing.T, token, procedure, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, r.base+procedure, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var out map[string]any
	require.NoError(t, json.Unmarshal(raw, &out), "body: %s", raw)
	return resp.StatusCode, out
}

// requireRefused checks that nothing accepts TCP connections on port.
func requireRefused(t *testing.T, port int, what string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
	if err == nil {
		_ = conn.Close()
		t.Fatalf("%s on port %d still accepts connections", what, port)
	}
}

func TestDevRunsControlPlaneOnPrivatePostgres(t *testing.T) {
	t.Parallel()
	requirePostgresBinaries(t)

	// Not t.TempDir: when the test runs as root, Postgres runs as the
	// postgres user, which must be able to traverse every parent directory.
	base, err := os.MkdirTemp("", "switchyard-dev-test-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(base) })
	require.NoError(t, os.Chmod(base, 0o755))
	dataDir := filepath.Join(base, "data")

	httpPort, pgPort := freeTCPPort(t), freeTCPPort(t)
	args := []string{"--data-dir", dataDir, "--postgres-port", fmt.Sprint(pgPort), "--log-level", "warn",
		"--ingest-listen", "127.0.0.1:0"}

	run := startDev(t, httpPort, args...)

	// The token is generated on the first run and kept, readable by the
	// owner only.
	tokenPath := filepath.Join(dataDir, tokenFileName)
	fi, err := os.Stat(tokenPath)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	raw, err := os.ReadFile(tokenPath)
	require.NoError(t, err)
	token := strings.TrimSpace(string(raw))
	require.True(t, strings.HasPrefix(token, operatorTokenPrefix))

	// The banner shows the URL, the token and commands to paste.
	require.Eventually(t, func() bool { return strings.Contains(run.stdout.String(), "Press Ctrl-C") }, 10*time.Second, 10*time.Millisecond)
	banner := run.stdout.String()
	require.Contains(t, banner, run.base)
	require.Contains(t, banner, "Bearer "+token)
	require.Contains(t, banner, run.base+"/switchyard.v1.TenantService/CreateTenant")
	require.Contains(t, banner, fmt.Sprintf("grpcurl -plaintext -H 'authorization: Bearer %s' 127.0.0.1:%d list", token, httpPort))

	// Liveness.
	resp, err := http.Get(run.base + "/healthz")
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusOK, resp.StatusCode)

	// The data plane: a producer key kept in the data directory, the dev
	// tenant and topic, and an event published with the banner's curl line
	// (CloudEvents, binary mode) delivered to a webhook through a pipeline.
	deliverThroughDev(t, run, token, dataDir)

	// Without the token: unauthenticated.
	code, body := run.call(t, "", "/switchyard.v1.TenantService/CreateTenant", `{"tenant":{"name":"acme"}}`)
	require.Equal(t, http.StatusUnauthorized, code, "%v", body)
	require.Equal(t, "unauthenticated", body["code"])

	// With it: a tenant, over plain HTTP and JSON.
	code, body = run.call(t, token, "/switchyard.v1.TenantService/CreateTenant", `{"tenant":{"name":"acme"}}`)
	require.Equal(t, http.StatusOK, code, "%v", body)
	tenant, ok := body["tenant"].(map[string]any)
	require.True(t, ok, "%v", body)
	require.Equal(t, "acme", tenant["name"])
	tenantID, _ := tenant["id"].(string)
	require.True(t, strings.HasPrefix(tenantID, "ten_"), "id %q", tenantID)

	run.stop(t)
	requireRefused(t, pgPort, "Postgres")
	requireRefused(t, httpPort, "the control plane")

	// A second run reuses the cluster, the data and the token.
	httpPort2 := freeTCPPort(t)
	run2 := startDev(t, httpPort2, args...)
	raw2, err := os.ReadFile(tokenPath)
	require.NoError(t, err)
	require.Equal(t, string(raw), string(raw2))
	code, body = run2.call(t, token, "/switchyard.v1.TenantService/GetTenant", fmt.Sprintf(`{"id":%q}`, tenantID))
	require.Equal(t, http.StatusOK, code, "%v", body)
	require.Equal(t, "acme", body["tenant"].(map[string]any)["name"])
	run2.stop(t)
	requireRefused(t, pgPort, "Postgres")
}

// bannerField returns the first word after label on a banner line.
func bannerField(t *testing.T, banner, label string) string {
	t.Helper()
	for line := range strings.SplitSeq(banner, "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), label); ok {
			if f := strings.Fields(rest); len(f) > 0 {
				return f[0]
			}
		}
	}
	t.Fatalf("no %q line in the banner:\n%s", label, banner)
	return ""
}

// deliverThroughDev creates a pipeline from the dev topic to a local
// webhook, publishes an event as the banner shows, and waits for it.
func deliverThroughDev(t *testing.T, run *devRun, token, dataDir string) {
	t.Helper()
	banner := run.stdout.String()
	ingest := bannerField(t, banner, "Data plane")
	require.True(t, strings.HasPrefix(ingest, "http://127.0.0.1:"), "ingest URL %q", ingest)
	tenantID := bannerField(t, banner, `Tenant "dev"`)
	topicID := bannerField(t, banner, `Topic "events"`)
	keyPath := filepath.Join(dataDir, producerKeyFileName)
	fi, err := os.Stat(keyPath)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	raw, err := os.ReadFile(keyPath)
	require.NoError(t, err)
	key := strings.TrimSpace(string(raw))
	require.Contains(t, banner, "Authorization: Bearer "+key)
	require.Contains(t, banner, ingest+"/ce/events")

	got := make(chan http.Header, 4)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h := r.Header.Clone()
		h.Set("X-Body", string(body))
		select {
		case got <- h:
		default:
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer hook.Close()

	code, body := run.call(t, token, "/switchyard.v1.PipelineService/CreatePipeline", fmt.Sprintf(
		`{"tenant_id":%q,"pipeline":{"name":"to-test","topic_id":%q,"destinations":[{"name":"hook","webhook":{"url":%q}}]}}`,
		tenantID, topicID, hook.URL+"/hook"))
	require.Equal(t, http.StatusOK, code, "%v", body)

	// The pipeline reads events published after it was created; the node
	// starts its worker when the configuration reaches it, so publish until
	// one arrives.
	client := &http.Client{Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	deadline := time.Now().Add(45 * time.Second)
	for i := 0; ; i++ {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, ingest+"/ce/events", strings.NewReader(`{"hello":"world"}`))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("ce-specversion", "1.0")
		req.Header.Set("ce-type", "com.example.hello")
		req.Header.Set("ce-source", "/dev-test")
		req.Header.Set("ce-id", fmt.Sprintf("hello-%d", i))
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		require.Equal(t, http.StatusAccepted, resp.StatusCode)
		select {
		case h := <-got:
			require.Equal(t, "com.example.hello", h.Get("Ce-Type"))
			require.Equal(t, `{"hello":"world"}`, h.Get("X-Body"))
			require.True(t, strings.HasPrefix(h.Get("Webhook-Id"), "hello-"))
			require.True(t, strings.HasPrefix(h.Get("Webhook-Signature"), "v1,"))
			return
		case <-time.After(time.Second):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no event delivered through dev within 45s\nstderr:\n%s", run.stderr.String())
		}
	}
}
