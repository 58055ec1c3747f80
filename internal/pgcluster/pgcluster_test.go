package pgcluster

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// clusterDir returns a new cluster directory that Start may give to the
// PostgreSQL user (t.TempDir's parent is private to the test's user).
func clusterDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "pgcluster-test-")
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, os.RemoveAll(dir)) })
	return dir
}

func start(t *testing.T, cfg Config) *Cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := Start(ctx, cfg)
	require.NoError(t, err)
	return c
}

func stop(t *testing.T, c *Cluster) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, c.Stop(ctx))
}

func connect(t *testing.T, connString string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, connString)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

func TestStartConnectStop(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c := start(t, Config{Dir: clusterDir(t)})
	require.NotZero(t, c.Port())
	require.Equal(t, "postgres://postgres@127.0.0.1:"+itoa(c.Port())+"/postgres?sslmode=disable",
		c.ConnString("postgres"))

	conn := connect(t, c.ConnString("postgres"))
	var fsync, version string
	require.NoError(t, conn.QueryRow(ctx, "SHOW fsync").Scan(&fsync))
	require.Equal(t, "off", fsync, "a non-durable cluster runs without fsync")
	require.NoError(t, conn.QueryRow(ctx, "SHOW server_version").Scan(&version))
	t.Logf("PostgreSQL %s on port %d", version, c.Port())
	require.NoError(t, conn.Close(ctx))

	stop(t, c)
	require.NoError(t, c.Stop(ctx), "Stop is idempotent")
	_, err := pgx.Connect(ctx, c.ConnString("postgres"))
	require.Error(t, err, "the server is gone after Stop")
	_, err = os.Stat(filepath.Join(c.Dir(), "data", "postmaster.pid"))
	require.ErrorIs(t, err, os.ErrNotExist, "a clean shutdown removes postmaster.pid")
}

func TestRestartKeepsData(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dir := clusterDir(t)

	c := start(t, Config{Dir: dir, Durable: true})
	conn := connect(t, c.ConnString("postgres"))
	_, err := conn.Exec(ctx, "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('across restarts')")
	require.NoError(t, err)
	require.NoError(t, conn.Close(ctx))
	stop(t, c)

	c = start(t, Config{Dir: dir, Durable: true})
	defer stop(t, c)
	conn = connect(t, c.ConnString("postgres"))
	var v, fsync string
	require.NoError(t, conn.QueryRow(ctx, "SELECT v FROM kept").Scan(&v))
	require.Equal(t, "across restarts", v)
	require.NoError(t, conn.QueryRow(ctx, "SHOW fsync").Scan(&fsync))
	require.Equal(t, "on", fsync, "a durable cluster keeps fsync")
	require.NoError(t, conn.Close(ctx))
}

func TestStartAfterKilledRun(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dir := clusterDir(t)

	c := start(t, Config{Dir: dir, Durable: true})
	conn := connect(t, c.ConnString("postgres"))
	_, err := conn.Exec(ctx, "CREATE TABLE survivor (v int); INSERT INTO survivor VALUES (42)")
	require.NoError(t, err)
	require.NoError(t, conn.Close(ctx))

	require.NoError(t, syscall.Kill(c.pid, syscall.SIGKILL))
	<-c.exited
	_, err = os.Stat(filepath.Join(dir, "data", "postmaster.pid"))
	require.NoError(t, err, "a killed postmaster leaves its pid file behind")
	require.ErrorContains(t, c.Stop(ctx), "already exited")

	c = start(t, Config{Dir: dir, Durable: true, Logger: testLogger(t)})
	defer stop(t, c)
	conn = connect(t, c.ConnString("postgres"))
	var v int
	require.NoError(t, conn.QueryRow(ctx, "SELECT v FROM survivor").Scan(&v))
	require.Equal(t, 42, v)
	require.NoError(t, conn.Close(ctx))
}

// helperDirEnv, when set, makes TestKilledParentTakesServerAlong the helper
// process: it starts a cluster there, reports the server's pid and waits to
// be killed.
const helperDirEnv = "PGCLUSTER_TEST_HELPER_DIR"

func TestKilledParentTakesServerAlong(t *testing.T) {
	if dir := os.Getenv(helperDirEnv); dir != "" {
		c, err := Start(context.Background(), Config{Dir: dir})
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		fmt.Println("ready", c.pid)
		select {} // until killed
	}
	t.Parallel()
	dir := clusterDir(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestKilledParentTakesServerAlong$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperDirEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err)
	var pid int
	_, err = fmt.Sscanf(line, "ready %d", &pid)
	require.NoError(t, err, "helper said %q", line)
	require.NoError(t, syscall.Kill(pid, 0), "the server runs")

	require.NoError(t, cmd.Process.Kill())
	_ = cmd.Wait()
	require.Eventually(t, func() bool { return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) },
		10*time.Second, 20*time.Millisecond, "the server died with its parent")
	_, err = os.Stat(filepath.Join(dir, "data", "postmaster.pid"))
	require.NoError(t, err, "the killed server left its pid file behind")

	c := start(t, Config{Dir: dir, Logger: testLogger(t)})
	conn := connect(t, c.ConnString("postgres"))
	require.NoError(t, conn.Ping(t.Context()))
	require.NoError(t, conn.Close(t.Context()))
	stop(t, c)
}

func TestLongDirUsesShortSocketDir(t *testing.T) {
	t.Parallel()
	parent := clusterDir(t)
	require.NoError(t, os.Chmod(parent, 0o755))
	dir := filepath.Join(parent, strings.Repeat("d", 60), strings.Repeat("e", 60))
	c := start(t, Config{Dir: dir})
	require.NotEqual(t, dir, c.sockDir)
	require.Less(t, len(filepath.Join(c.sockDir, ".s.PGSQL.65535")), maxSocketPath)
	_, err := os.Stat(filepath.Join(c.sockDir, ".s.PGSQL."+itoa(c.Port())))
	require.NoError(t, err, "the socket lives in the short directory")

	conn := connect(t, c.ConnString("postgres"))
	require.NoError(t, conn.Ping(t.Context()))
	require.NoError(t, conn.Close(t.Context()))
	stop(t, c)
	_, err = os.Stat(c.sockDir)
	require.ErrorIs(t, err, os.ErrNotExist, "Stop removes the socket directory")
}

func TestStartErrorIncludesServerLog(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port

	_, err = Start(t.Context(), Config{Dir: clusterDir(t), Port: port})
	require.Error(t, err)
	require.ErrorContains(t, err, "postgres.log")
	require.ErrorContains(t, err, "could not bind IPv4 address")
	t.Log(err)
}

func TestUnreachableDir(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("only root hands the cluster to another user")
	}
	private := t.TempDir() // mode 0700, owned by root
	require.NoError(t, os.Chmod(private, 0o700))
	_, err := Start(t.Context(), Config{Dir: filepath.Join(private, "pg")})
	require.ErrorContains(t, err, `user "postgres" cannot reach`)
	require.ErrorContains(t, err, private)
}

func TestCanSearch(t *testing.T) {
	t.Parallel()
	cred := &syscall.Credential{Uid: 101, Gid: 104, Groups: []uint32{103}}
	for _, tc := range []struct {
		mode     os.FileMode
		uid, gid uint32
		want     bool
	}{
		{0o700, 101, 0, true},
		{0o070, 101, 104, false}, // the owner bits apply to the owner
		{0o710, 0, 104, true},
		{0o710, 0, 103, true},
		{0o700, 0, 104, false},
		{0o701, 0, 0, true},
		{0o750, 0, 0, false},
	} {
		require.Equal(t, tc.want, canSearch(tc.mode, tc.uid, tc.gid, cred), "%v %d:%d", tc.mode, tc.uid, tc.gid)
	}
}

// The tests below replace the package's binary lookup, so they do not run
// in parallel: the parallel tests above resume only after they finish.

func TestMissingBinaries(t *testing.T) {
	withLookup(t, func(string) (string, error) { return "", errors.New("not found") },
		filepath.Join(t.TempDir(), "*", "bin"))

	_, err := Start(t.Context(), Config{Dir: clusterDir(t)})
	require.ErrorIs(t, err, ErrNoBinaries)
	require.ErrorContains(t, err, "apt-get install -y postgresql")
	require.ErrorContains(t, err, "initdb")
}

func TestBinariesFallBackToNewestVersionDir(t *testing.T) {
	root := t.TempDir()
	for _, v := range []string{"9", "14", "15", "16"} {
		bin := filepath.Join(root, v, "bin")
		require.NoError(t, os.MkdirAll(bin, 0o755))
		mode := os.FileMode(0o755)
		if v == "16" {
			mode = 0o644 // not executable: skipped
		}
		for _, name := range []string{"initdb", "postgres"} {
			require.NoError(t, os.WriteFile(filepath.Join(bin, name), []byte("#!/bin/sh\n"), mode))
		}
	}
	withLookup(t, func(string) (string, error) { return "", errors.New("not found") },
		filepath.Join(root, "*", "bin"))

	b, err := findBinaries()
	require.NoError(t, err)
	require.Equal(t, filepath.Join(root, "15", "bin", "initdb"), b.initdb)
	require.Equal(t, filepath.Join(root, "15", "bin", "postgres"), b.postgres)
}

func withLookup(t *testing.T, look func(string) (string, error), glob string) {
	t.Helper()
	oldLook, oldGlob := lookPath, binDirGlob
	lookPath, binDirGlob = look, glob
	t.Cleanup(func() { lookPath, binDirGlob = oldLook, oldGlob })
}

// testLogger logs to t.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func itoa(i int) string { return strconv.Itoa(i) }
