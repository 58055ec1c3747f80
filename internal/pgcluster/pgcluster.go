// Package pgcluster starts and stops a private PostgreSQL cluster from the
// PostgreSQL binaries installed on the machine.
//
// `switchyard dev` keeps one cluster in a persistent directory across runs;
// tests start a throw-away cluster in a temporary directory with durability
// turned off. The server listens on 127.0.0.1 only and trusts every local
// connection, so a cluster is for development and tests, never production.
//
// When the calling process runs as root, initdb and postgres run as an
// unprivileged OS user (Config.RunAs), because PostgreSQL refuses to run as
// root.
package pgcluster

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// Config says where and how to run a cluster.
type Config struct {
	// Dir is the cluster directory: data in Dir/data, the server log in
	// Dir/postgres.log and the Unix socket in Dir (or in a short temporary
	// directory when Dir is too long for a socket path).
	Dir string
	// Port is the TCP port on 127.0.0.1; 0 picks a free one.
	Port int
	// RunAs is the OS user that runs initdb and postgres when the calling
	// process is root; default "postgres".
	RunAs string
	// Durable keeps PostgreSQL's crash safety. False (for tests) turns off
	// fsync, synchronous_commit and full_page_writes.
	Durable bool
	// Logger receives progress messages; optional.
	Logger *slog.Logger
}

// Cluster is a running PostgreSQL server started by Start.
type Cluster struct {
	cfg        Config
	port       int
	sockDir    string
	ownSockDir bool // sockDir is a temporary directory to remove at Stop
	logPath    string
	logFile    *os.File
	logStart   int64 // offset in the log where this run's output begins

	pid     int
	exited  chan struct{} // closed when the postgres process has exited
	exitErr error         // set before exited is closed

	stopOnce sync.Once
	stopErr  error
}

// maxSocketPath bounds the length of the Unix socket path (sun_path holds
// 108 bytes on Linux, 104 on BSDs).
const maxSocketPath = 100

// startAttempts bounds retries when a port picked as free is taken before
// postgres binds it.
const startAttempts = 3

// readyTimeout bounds the wait for a started server to accept connections
// when ctx has no earlier deadline.
const readyTimeout = 60 * time.Second

// Start starts a cluster in cfg.Dir, running initdb first when Dir/data holds
// no cluster yet (an existing one is reused), and returns once the server
// accepts connections. The server is stopped with Stop; it is also killed
// when the calling process dies.
//
// Start locks the goroutine that starts postgres to its OS thread and keeps
// that goroutine (and thread) until postgres exits, because Linux delivers the
// parent-death signal when the thread that started a child exits, not the
// process.
func Start(ctx context.Context, cfg Config) (*Cluster, error) {
	cfg.RunAs = cmp.Or(cfg.RunAs, "postgres")
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Dir == "" {
		return nil, errors.New("pgcluster: Config.Dir is empty")
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("pgcluster: resolving %s: %w", cfg.Dir, err)
	}
	cfg.Dir = dir

	bins, err := findBinaries()
	if err != nil {
		return nil, err
	}
	cred, err := credentialFor(cfg.RunAs)
	if err != nil {
		return nil, err
	}
	// Parents are created searchable so that RunAs can reach Dir.
	if err := os.MkdirAll(filepath.Dir(cfg.Dir), 0o755); err != nil {
		return nil, fmt.Errorf("pgcluster: creating %s: %w", filepath.Dir(cfg.Dir), err)
	}
	if err := os.Mkdir(cfg.Dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("pgcluster: creating %s: %w", cfg.Dir, err)
	}
	if cred != nil {
		if err := checkTraverse(cfg.Dir, cfg.RunAs, cred); err != nil {
			return nil, err
		}
		if err := chownTree(cfg.Dir, cred); err != nil {
			return nil, err
		}
	}

	c := &Cluster{cfg: cfg, logPath: filepath.Join(cfg.Dir, "postgres.log")}
	if err := c.prepareSocketDir(cred); err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			c.removeSocketDir()
		}
	}()

	if err := c.initdb(ctx, bins.initdb, cred); err != nil {
		return nil, err
	}

	shmDeadline := time.Now().Add(shmWait)
	for portAttempt := 1; ; {
		port := cfg.Port
		if port == 0 {
			if port, err = freePort(); err != nil {
				return nil, err
			}
		}
		c.port = port
		err = c.start(ctx, bins.postgres, cred)
		switch {
		case err == nil:
		case errors.Is(err, errShmInUse) && time.Now().Before(shmDeadline):
			// The processes of a server whose postmaster was killed leave
			// when they notice its death; until then they hold its shared
			// memory and a new server refuses to start.
			cfg.Logger.Debug("shared memory of a previous server still in use, retrying")
			select {
			case <-ctx.Done():
				return nil, fmt.Errorf("pgcluster: waiting for a previous server to go: %w (%w)", ctx.Err(), err)
			case <-time.After(100 * time.Millisecond):
			}
			continue
		case errors.Is(err, errPortInUse) && cfg.Port == 0 && portAttempt < startAttempts:
			cfg.Logger.Debug("postgres port taken, retrying", "port", port)
			portAttempt++
			continue
		default:
			return nil, err
		}
		break
	}
	ok = true
	cfg.Logger.Info("postgres started", "dir", cfg.Dir, "port", c.port, "pid", c.pid)
	return c, nil
}

// ConnString returns a URL connecting as the superuser "postgres" to the
// named database over TCP.
func (c *Cluster) ConnString(database string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.port, database)
}

// Port returns the TCP port the server listens on.
func (c *Cluster) Port() int { return c.port }

// Dir returns the cluster directory.
func (c *Cluster) Dir() string { return c.cfg.Dir }

// Stop shuts the server down in fast mode (SIGINT: open transactions are
// rolled back) and waits for it to exit. If ctx ends first, the server is
// killed (its children follow when they notice). Stop may be called more
// than once; later calls return the first call's result.
func (c *Cluster) Stop(ctx context.Context) error {
	c.stopOnce.Do(func() { c.stopErr = c.stop(ctx) })
	return c.stopErr
}

func (c *Cluster) stop(ctx context.Context) error {
	defer c.removeSocketDir()
	defer c.logFile.Close()
	select {
	case <-c.exited:
		return fmt.Errorf("pgcluster: postgres had already exited (%v)%s", c.exitErr, c.logTail())
	default:
	}
	if err := syscall.Kill(c.pid, syscall.SIGINT); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("pgcluster: signalling postgres (pid %d): %w", c.pid, err)
	}
	select {
	case <-c.exited:
	case <-ctx.Done():
		_ = syscall.Kill(-c.pid, syscall.SIGKILL)
		<-c.exited
		return fmt.Errorf("pgcluster: postgres did not shut down in time, killed: %w", ctx.Err())
	}
	if c.exitErr != nil {
		return fmt.Errorf("pgcluster: postgres shut down with %w%s", c.exitErr, c.logTail())
	}
	c.cfg.Logger.Info("postgres stopped", "dir", c.cfg.Dir)
	return nil
}

// initdb creates the cluster unless Dir/data already holds one.
func (c *Cluster) initdb(ctx context.Context, bin string, cred *syscall.Credential) error {
	data := filepath.Join(c.cfg.Dir, "data")
	if _, err := os.Stat(filepath.Join(data, "PG_VERSION")); err == nil {
		c.cfg.Logger.Debug("reusing cluster", "data", data)
		return nil
	}
	// A data directory without PG_VERSION is what an interrupted initdb
	// leaves behind; initdb refuses a non-empty directory.
	if err := os.RemoveAll(data); err != nil {
		return fmt.Errorf("pgcluster: removing incomplete data directory: %w", err)
	}
	start := time.Now()
	cmd := exec.CommandContext(ctx, bin, "-D", data, "-U", "postgres", "-A", "trust",
		"-E", "UTF8", "--locale=C", "-N")
	cmd.Dir = c.cfg.Dir
	cmd.Env = childEnv()
	cmd.SysProcAttr = sysProcAttr(cred)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	runtime.LockOSThread() // see Start about Pdeathsig
	err := cmd.Run()
	runtime.UnlockOSThread()
	if err != nil {
		return fmt.Errorf("pgcluster: initdb %s: %w\n%s", data, err, strings.TrimSpace(out.String()))
	}
	c.cfg.Logger.Debug("initdb done", "data", data, "took", time.Since(start))
	return nil
}

// Causes of a failed start that another attempt can cure.
var (
	errPortInUse = errors.New("port in use")
	errShmInUse  = errors.New("shared memory of a previous server in use")
)

// shmWait bounds the retries while processes of a killed server still hold
// its shared memory. (Each PostgreSQL child runs in its own session, so they
// cannot be killed as a group.)
const shmWait = 10 * time.Second

// start starts postgres on c.port and waits until it accepts connections.
func (c *Cluster) start(ctx context.Context, bin string, cred *syscall.Credential) error {
	logFile, err := os.OpenFile(c.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("pgcluster: opening server log: %w", err)
	}
	if cred != nil {
		if err := logFile.Chown(int(cred.Uid), int(cred.Gid)); err != nil {
			logFile.Close()
			return fmt.Errorf("pgcluster: chown server log: %w", err)
		}
	}
	if fi, err := logFile.Stat(); err == nil {
		c.logStart = fi.Size()
	}
	c.logFile = logFile

	args := []string{
		"-D", filepath.Join(c.cfg.Dir, "data"),
		"-k", c.sockDir,
		"-p", strconv.Itoa(c.port),
		"-c", "listen_addresses=127.0.0.1",
	}
	if !c.cfg.Durable {
		args = append(args, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = c.cfg.Dir
	cmd.Env = childEnv()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = sysProcAttr(cred)

	c.exited = make(chan struct{})
	started := make(chan error, 1)
	go func() {
		// The thread that starts postgres must live as long as postgres:
		// Pdeathsig fires when that thread exits. This goroutine keeps the
		// thread locked and never unlocks it, so the runtime ends the thread
		// only after postgres has exited.
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		c.exitErr = cmd.Wait()
		close(c.exited)
	}()
	if err := <-started; err != nil {
		logFile.Close()
		return fmt.Errorf("pgcluster: starting %s: %w", bin, err)
	}
	c.pid = cmd.Process.Pid

	if err := c.waitReady(ctx); err != nil {
		_ = syscall.Kill(-c.pid, syscall.SIGKILL)
		<-c.exited
		tail := c.logTail()
		logFile.Close()
		switch {
		case strings.Contains(tail, "Address already in use"):
			err = fmt.Errorf("%w: %w", errPortInUse, err)
		case strings.Contains(tail, "pre-existing shared memory block"):
			err = fmt.Errorf("%w: %w", errShmInUse, err)
		}
		return fmt.Errorf("pgcluster: postgres on port %d did not start: %w%s", c.port, err, tail)
	}
	return nil
}

// waitReady polls until the server accepts a connection, the server exits or
// ctx (bounded by readyTimeout) ends.
func (c *Cluster) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var lastErr error
	for {
		attempt, cancelAttempt := context.WithTimeout(ctx, 2*time.Second)
		go func() { // give up on the attempt as soon as the server exits
			select {
			case <-c.exited:
				cancelAttempt()
			case <-attempt.Done():
			}
		}()
		conn, err := pgconn.Connect(attempt, c.ConnString("postgres"))
		cancelAttempt()
		if err == nil {
			return conn.Close(ctx)
		}
		lastErr = err
		select {
		case <-c.exited:
			return fmt.Errorf("postgres exited: %v", c.exitErr)
		case <-ctx.Done():
			return fmt.Errorf("%w (last connection error: %v)", ctx.Err(), lastErr)
		case <-tick.C:
		}
	}
}

// logTail returns the end of this run's server log, prefixed for appending
// to an error message, or "" when there is none.
func (c *Cluster) logTail() string {
	f, err := os.Open(c.logPath)
	if err != nil {
		return ""
	}
	defer f.Close()
	const maxTail = 4 << 10
	fi, err := f.Stat()
	if err != nil {
		return ""
	}
	from := max(c.logStart, fi.Size()-maxTail)
	if _, err := f.Seek(from, io.SeekStart); err != nil {
		return ""
	}
	b, err := io.ReadAll(f)
	if err != nil || len(bytes.TrimSpace(b)) == 0 {
		return ""
	}
	return "\n" + c.logPath + ":\n" + strings.TrimRight(string(b), "\n")
}

// prepareSocketDir picks the socket directory: Dir when the socket path fits,
// a new short temporary directory otherwise.
func (c *Cluster) prepareSocketDir(cred *syscall.Credential) error {
	if len(filepath.Join(c.cfg.Dir, ".s.PGSQL.65535.lock")) < maxSocketPath {
		c.sockDir = c.cfg.Dir
		return nil
	}
	base := "/tmp"
	if fi, err := os.Stat(base); err != nil || !fi.IsDir() {
		base = os.TempDir()
	}
	d, err := os.MkdirTemp(base, "pgsock")
	if err != nil {
		return fmt.Errorf("pgcluster: creating socket directory: %w", err)
	}
	if cred != nil {
		if err := os.Chown(d, int(cred.Uid), int(cred.Gid)); err != nil {
			os.Remove(d)
			return fmt.Errorf("pgcluster: chown socket directory: %w", err)
		}
	}
	c.sockDir, c.ownSockDir = d, true
	return nil
}

func (c *Cluster) removeSocketDir() {
	if c.ownSockDir {
		_ = os.RemoveAll(c.sockDir)
	}
}

// freePort asks the kernel for a free TCP port on 127.0.0.1.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgcluster: finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// childEnv is the environment of initdb and postgres: the caller's, without
// the PG* variables that would override the explicit arguments.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PG") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "LC_ALL=C")
}
