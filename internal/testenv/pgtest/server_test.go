package pgtest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-dev/switchyard/internal/pgcluster"
)

// TestExternalServer drives the DATABASE_URL path against a server of its
// own: databases and templates get unique names and are all dropped.
func TestExternalServer(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dir, err := os.MkdirTemp("", "pgtest-external-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	c, err := pgcluster.Start(ctx, pgcluster.Config{Dir: dir})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, c.Stop(context.Background())) })

	s, err := openExternal(ctx, c.ConnString("postgres"))
	require.NoError(t, err)
	closed := false
	t.Cleanup(func() {
		if !closed {
			_ = s.close(context.Background())
		}
	})

	tmpl := Template{Name: "External Template!", Setup: func(ctx context.Context, cs string) error {
		conn, err := pgx.Connect(ctx, cs)
		if err != nil {
			return err
		}
		// Left open on purpose: the template must still be cloneable.
		_, err = conn.Exec(ctx, "CREATE TABLE marker (v int); INSERT INTO marker VALUES (7)")
		return err
	}}
	cs1, drop1, err := s.newDB(ctx, tmpl)
	require.NoError(t, err)
	cs2, drop2, err := s.newDB(ctx, tmpl)
	require.NoError(t, err)
	require.NotEqual(t, cs1, cs2)

	for _, cs := range []string{cs1, cs2} {
		conn, err := pgx.Connect(ctx, cs)
		require.NoError(t, err)
		var v int
		require.NoError(t, conn.QueryRow(ctx, "SELECT v FROM marker").Scan(&v))
		require.Equal(t, 7, v)
		require.NoError(t, conn.Close(ctx))
	}

	admin, err := pgx.Connect(ctx, c.ConnString("postgres"))
	require.NoError(t, err)
	defer admin.Close(ctx)
	ours := func() []string {
		rows, err := admin.Query(ctx, "SELECT datname FROM pg_database WHERE datname LIKE $1 || '%' ORDER BY 1", s.prefix)
		require.NoError(t, err)
		names, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		return names
	}
	require.Equal(t, []string{s.prefix + "_test_1", s.prefix + "_test_2", s.prefix + "_tpl1_external_template_"}, ours())

	require.NoError(t, drop1(ctx))
	require.NoError(t, drop2(ctx))
	require.NoError(t, s.close(ctx))
	closed = true
	require.Empty(t, ours(), "nothing of the run is left on the server")
}

func TestSetupErrorIsRememberedAndReported(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dir, err := os.MkdirTemp("", "pgtest-setuperr-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	c, err := pgcluster.Start(ctx, pgcluster.Config{Dir: dir})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, c.Stop(context.Background())) })
	s, err := openExternal(ctx, c.ConnString("postgres"))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.close(context.Background())) })

	var calls atomic.Int32
	broken := Template{Name: "broken", Setup: func(context.Context, string) error {
		calls.Add(1)
		return errors.New("migration 3 failed")
	}}
	for range 2 {
		_, _, err := s.newDB(ctx, broken)
		require.ErrorContains(t, err, `template "broken": setup: migration 3 failed`)
	}
	require.EqualValues(t, 1, calls.Load())

	_, _, err = s.newDB(ctx, Template{})
	require.ErrorContains(t, err, "template has no name")
}

func TestWithDatabase(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"postgres://u:p@h:5432/app?sslmode=disable", "postgres://u:p@h:5432/x?sslmode=disable"},
		{"postgresql://h", "postgresql://h/x"},
	} {
		got, err := withDatabase(tc.in, "x")
		require.NoError(t, err)
		require.Equal(t, tc.want, got)
		cfg, err := pgx.ParseConfig(got)
		require.NoError(t, err)
		require.Equal(t, "x", cfg.Database)
	}
	_, err := withDatabase("host=h dbname=app", "x")
	require.ErrorContains(t, err, "must be a URL")
}

func TestSanitize(t *testing.T) {
	t.Parallel()
	require.Equal(t, "control_plane_v2", sanitize("Control-Plane v2"))
	require.Len(t, sanitize(string(make([]byte, 100))), 40)
}

func TestSweepRemovesDirectoriesOfDeadRuns(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	mk := func(name, pid string, age time.Duration) string {
		d := filepath.Join(base, name)
		require.NoError(t, os.Mkdir(d, 0o755))
		if pid != "" {
			require.NoError(t, os.WriteFile(filepath.Join(d, pidFile), []byte(pid), 0o644))
		}
		old := time.Now().Add(-age)
		require.NoError(t, os.Chtimes(d, old, old))
		return d
	}
	alive := mk("alive", strconv.Itoa(os.Getpid()), time.Hour)
	dead := mk("dead", strconv.Itoa(deadPid(t)), 0)
	young := mk("young", "", 0)
	orphan := mk("orphan", "", time.Hour)

	sweep(base)
	require.DirExists(t, alive)
	require.DirExists(t, young, "a run may not have written its pid file yet")
	require.NoDirExists(t, dead)
	require.NoDirExists(t, orphan)
}

// deadPid returns the pid of a process that has exited and been reaped.
func deadPid(t *testing.T) int {
	t.Helper()
	p, err := os.StartProcess("/bin/true", []string{"true"}, &os.ProcAttr{})
	require.NoError(t, err)
	_, err = p.Wait()
	require.NoError(t, err)
	return p.Pid
}

// FuzzWithDatabase checks that a connection URL pgx accepts, when not
// refused, keeps its settings with its database replaced.
func FuzzWithDatabase(f *testing.F) {
	for _, s := range []string{
		"postgres://u:p@h:5432/app?sslmode=disable",
		"postgresql://h1:5432,h2:5433/app",
		"host=h user=u dbname=app",
		"host=h password='a b' dbname='my db'",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, dsn string) {
		before, err := pgx.ParseConfig(dsn)
		if err != nil {
			return
		}
		out, err := withDatabase(dsn, "sy_x_1")
		if !strings.HasPrefix(dsn, "postgres://") && !strings.HasPrefix(dsn, "postgresql://") {
			require.Error(t, err)
			return
		}
		if err != nil {
			// pgx is more lenient than net/url; refusing is fine, changing
			// the meaning is not.
			return
		}
		after, err := pgx.ParseConfig(out)
		require.NoError(t, err, "from %q", dsn)
		require.Equal(t, "sy_x_1", after.Database)
		require.Equal(t, before.Host, after.Host)
		require.Equal(t, before.Port, after.Port)
		require.Equal(t, before.User, after.User)
		require.Equal(t, before.Password, after.Password)
	})
}
