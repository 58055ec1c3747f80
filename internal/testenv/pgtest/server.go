package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/switchyard-dev/switchyard/internal/pgcluster"
)

// server is a PostgreSQL server the tests create databases on.
type server struct {
	cluster *pgcluster.Cluster // nil for an external server
	dir     string             // the private cluster's directory
	dsn     string             // connects to the maintenance database
	admin   *pgxpool.Pool      // on the maintenance database
	prefix  string             // unique per server, starts every database name
	seq     atomic.Int64

	mu        sync.Mutex
	templates map[string]*template
}

// template is a template database, created once.
type template struct {
	once sync.Once
	db   string
	err  error
}

// pidFile, in a private cluster's directory, holds the pid of the test
// binary that owns it, so later runs can remove the directories of dead ones.
const pidFile = "owner.pid"

// staleAge is the age after which a cluster directory without an owner is
// removed.
const staleAge = 10 * time.Minute

// baseDir holds the private clusters of all test binaries. It is short, so
// the Unix socket path fits, and searchable by the PostgreSQL user.
func baseDir() string { return filepath.Join(os.TempDir(), "switchyard-pgtest") }

// startPrivate starts a non-durable cluster in a new directory under
// baseDir, first removing the directories of test binaries that died.
func startPrivate(ctx context.Context) (_ *server, err error) {
	base := baseDir()
	if err := os.MkdirAll(base, 0o755); err != nil {
		return nil, fmt.Errorf("creating %s: %w", base, err)
	}
	if err := os.Chmod(base, 0o755); err != nil { // against a restrictive umask
		return nil, fmt.Errorf("chmod %s: %w", base, err)
	}
	sweep(base)
	dir, err := os.MkdirTemp(base, "")
	if err != nil {
		return nil, fmt.Errorf("creating cluster directory: %w", err)
	}
	defer func() {
		if err != nil {
			_ = os.RemoveAll(dir)
		}
	}()
	if err := os.WriteFile(filepath.Join(dir, pidFile), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return nil, fmt.Errorf("writing pid file: %w", err)
	}
	c, err := pgcluster.Start(ctx, pgcluster.Config{Dir: dir})
	if err != nil {
		return nil, err
	}
	s, err := open(ctx, c.ConnString("postgres"))
	if err != nil {
		_ = c.Stop(ctx)
		return nil, err
	}
	s.cluster, s.dir = c, dir
	return s, nil
}

// sweep removes the cluster directories under base whose test binary is no
// longer running. Their servers died with it (see pgcluster.Start).
func sweep(base string) {
	entries, err := os.ReadDir(base)
	if err != nil {
		return
	}
	for _, e := range entries {
		dir := filepath.Join(base, e.Name())
		if e.IsDir() && ownerGone(dir) {
			_ = os.RemoveAll(dir)
		}
	}
}

// ownerGone reports whether the test binary that made dir has exited, or,
// when dir has no pid file, whether dir is old.
func ownerGone(dir string) bool {
	b, err := os.ReadFile(filepath.Join(dir, pidFile))
	if err != nil {
		fi, err := os.Stat(dir)
		return err == nil && time.Since(fi.ModTime()) > staleAge
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return true
	}
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

// openExternal uses the existing server at dsn.
func openExternal(ctx context.Context, dsn string) (*server, error) {
	if _, err := withDatabase(dsn, "postgres"); err != nil {
		return nil, fmt.Errorf("%s: %w", EnvDatabaseURL, err)
	}
	s, err := open(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", EnvDatabaseURL, err)
	}
	return s, nil
}

// open connects to the maintenance database at dsn.
func open(ctx context.Context, dsn string) (*server, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("parsing connection string: %w", err)
	}
	cfg.MaxConns = 4
	admin, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connecting: %w", err)
	}
	if err := admin.Ping(ctx); err != nil {
		admin.Close()
		return nil, fmt.Errorf("connecting: %w", err)
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	return &server{
		dsn:       dsn,
		admin:     admin,
		prefix:    "sy" + hex.EncodeToString(b[:]),
		templates: map[string]*template{},
	}, nil
}

// newDB creates a database cloned from tmpl and returns its connection
// string and a function that drops it.
func (s *server) newDB(ctx context.Context, tmpl Template) (string, func(context.Context) error, error) {
	tpl, err := s.template(ctx, tmpl)
	if err != nil {
		return "", nil, err
	}
	db := fmt.Sprintf("%s_test_%d", s.prefix, s.seq.Add(1))
	sql := "CREATE DATABASE " + ident(db) + " TEMPLATE " + ident(tpl)
	for attempt := 1; ; attempt++ {
		_, err = s.admin.Exec(ctx, sql)
		// Cloning fails while anything is connected to the template; the
		// template admits no connections, but one may linger from Setup.
		if err == nil || !isObjectInUse(err) || attempt == 50 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		return "", nil, fmt.Errorf("creating database %s from template %q: %w", db, tmpl.Name, err)
	}
	drop := func(ctx context.Context) error {
		if _, err := s.admin.Exec(ctx, "DROP DATABASE IF EXISTS "+ident(db)+" WITH (FORCE)"); err != nil {
			return fmt.Errorf("dropping database %s: %w", db, err)
		}
		return nil
	}
	cs, err := withDatabase(s.dsn, db)
	if err != nil {
		_ = drop(ctx)
		return "", nil, err
	}
	return cs, drop, nil
}

// template returns the name of tmpl's template database, creating it on
// first use. Concurrent callers wait for one creation; its error is
// remembered.
func (s *server) template(ctx context.Context, tmpl Template) (string, error) {
	if tmpl.Name == "" {
		return "", errors.New("template has no name")
	}
	s.mu.Lock()
	tp, ok := s.templates[tmpl.Name]
	if !ok {
		// The number keeps names apart that sanitize to the same text.
		tp = &template{db: fmt.Sprintf("%s_tpl%d_%s", s.prefix, len(s.templates)+1, sanitize(tmpl.Name))}
		s.templates[tmpl.Name] = tp
	}
	s.mu.Unlock()
	tp.once.Do(func() {
		if err := s.createTemplate(ctx, tp.db, tmpl); err != nil {
			tp.err = fmt.Errorf("template %q: %w", tmpl.Name, err)
		}
	})
	return tp.db, tp.err
}

func (s *server) createTemplate(ctx context.Context, db string, tmpl Template) error {
	if _, err := s.admin.Exec(ctx, "CREATE DATABASE "+ident(db)); err != nil {
		return fmt.Errorf("creating database %s: %w", db, err)
	}
	err := func() error {
		if tmpl.Setup != nil {
			cs, err := withDatabase(s.dsn, db)
			if err != nil {
				return err
			}
			if err := tmpl.Setup(ctx, cs); err != nil {
				return fmt.Errorf("setup: %w", err)
			}
		}
		// Connections left open by Setup would block every clone.
		if _, err := s.admin.Exec(ctx,
			"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", db); err != nil {
			return fmt.Errorf("closing setup connections: %w", err)
		}
		if _, err := s.admin.Exec(ctx, "ALTER DATABASE "+ident(db)+" WITH IS_TEMPLATE true ALLOW_CONNECTIONS false"); err != nil {
			return fmt.Errorf("marking %s a template: %w", db, err)
		}
		return nil
	}()
	if err != nil {
		_ = dropTemplate(ctx, s.admin, db)
		return err
	}
	return nil
}

// close drops the templates (an external server keeps nothing of the run),
// closes the connections and stops a private cluster.
func (s *server) close(ctx context.Context) error {
	var errs []error
	if s.cluster == nil {
		s.mu.Lock()
		for _, tp := range s.templates {
			if tp.err == nil {
				errs = append(errs, dropTemplate(ctx, s.admin, tp.db))
			}
		}
		s.mu.Unlock()
	}
	s.admin.Close()
	if s.cluster != nil {
		errs = append(errs, s.cluster.Stop(ctx))
		if err := os.RemoveAll(s.dir); err != nil {
			errs = append(errs, fmt.Errorf("removing cluster directory: %w", err))
		}
	}
	return errors.Join(errs...)
}

func dropTemplate(ctx context.Context, admin *pgxpool.Pool, db string) error {
	if _, err := admin.Exec(ctx, "ALTER DATABASE "+ident(db)+" WITH IS_TEMPLATE false"); err != nil {
		return fmt.Errorf("dropping template %s: %w", db, err)
	}
	if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+ident(db)+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("dropping template %s: %w", db, err)
	}
	return nil
}

// withDatabase returns the connection URL dsn (postgres://...) with its
// database replaced by db.
func withDatabase(dsn, db string) (string, error) {
	if !strings.HasPrefix(dsn, "postgres://") && !strings.HasPrefix(dsn, "postgresql://") {
		return "", errors.New("the connection string must be a URL (postgres://user@host:port/db?...)")
	}
	before, err := pgconn.ParseConfig(dsn)
	if err != nil {
		return "", fmt.Errorf("parsing connection URL: %w", err)
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return "", fmt.Errorf("parsing connection URL: %w", err)
	}
	u.Path, u.RawPath = "/"+db, ""
	out := u.String()
	// net/url and pgx read some odd URLs differently: make sure pgx reads
	// the same server and user, and db.
	after, err := pgconn.ParseConfig(out)
	if err != nil || after.Database != db || after.Host != before.Host || after.Port != before.Port ||
		after.User != before.User || after.Password != before.Password {
		return "", fmt.Errorf("cannot replace the database in the connection URL %q", u.Redacted())
	}
	return out, nil
}

// ident quotes a database name for SQL.
func ident(name string) string { return pgx.Identifier{name}.Sanitize() }

// sanitize maps a template name to lower-case letters, digits and
// underscores, short enough for PostgreSQL's 63-byte names.
func sanitize(name string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
		if b.Len() == 40 {
			break
		}
	}
	return b.String()
}

// isObjectInUse reports PostgreSQL's object_in_use error (55006).
func isObjectInUse(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "55006"
}
