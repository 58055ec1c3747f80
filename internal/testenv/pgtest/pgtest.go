// Package pgtest gives each test a fresh, migrated PostgreSQL database.
//
// A test binary starts one private cluster (package pgcluster, durability off)
// the first time a test asks for a database, or uses the server named by
// DATABASE_URL when that is set. Each Template is created once per test
// binary by running its Setup (migrations, seed data) on an empty database;
// NewDB then clones it with CREATE DATABASE ... TEMPLATE, which takes tens of
// milliseconds, so every test can afford its own database.
//
// Use Main in TestMain so the cluster is stopped when the tests end:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
//	var schema = pgtest.Template{Name: "controlplane", Setup: migrate}
//
//	func TestX(t *testing.T) {
//		t.Parallel()
//		pool, err := pgxpool.New(t.Context(), pgtest.NewDB(t, schema))
//		...
//	}
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/switchyard-dev/switchyard/internal/pgcluster"
)

// EnvDatabaseURL names the environment variable that points the tests at an
// existing PostgreSQL server instead of a private cluster: a URL
// (postgres://user:password@host:port/db?sslmode=...) whose user may create
// databases. Databases and templates made there carry a random per-run
// prefix and are dropped by their test's cleanup and by Main.
const EnvDatabaseURL = "DATABASE_URL"

// Template describes a database that test databases are cloned from.
type Template struct {
	// Name identifies the template within a test binary, e.g. "controlplane".
	// Templates with the same Name are the same template.
	Name string
	// Setup prepares the template database at connString, e.g. runs the
	// migrations. It runs once per test binary and must close its
	// connections before it returns. Nil leaves the database empty.
	Setup func(ctx context.Context, connString string) error
}

// setupTimeout bounds starting the server and running a template's Setup.
const setupTimeout = 5 * time.Minute

// The server shared by the tests of this binary, made on first use.
var (
	shared    *server
	sharedErr error
	sharedMu  sync.Mutex
)

// NewDB returns the connection string of a new database cloned from tmpl,
// creating the template first if this is its first use. The database is
// dropped when the test ends (connections still open are terminated). NewDB
// fails the test when no server can be had, e.g. when the PostgreSQL binaries
// are missing.
func NewDB(t testing.TB, tmpl Template) string {
	t.Helper()
	srv, err := sharedServer()
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	connString, drop, err := srv.newDB(ctx, tmpl)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := drop(ctx); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})
	return connString
}

// Main runs the tests, then drops the templates, stops the cluster, checks
// that no goroutines leaked (with goleak and leakOpts, when the tests passed)
// and exits with the tests' status. Call it from TestMain.
func Main(m *testing.M, leakOpts ...goleak.Option) {
	code := m.Run()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	err := closeShared(ctx)
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "pgtest: %v\n", err)
		code = max(code, 1)
	}
	if code == 0 {
		if err := goleak.Find(leakOpts...); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: errors on successful test run: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// sharedServer returns the binary's server, starting it on first use. A
// failure is remembered, so every test reports it without trying again.
func sharedServer() (*server, error) {
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if shared != nil || sharedErr != nil {
		return shared, sharedErr
	}
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	if dsn := os.Getenv(EnvDatabaseURL); dsn != "" {
		shared, sharedErr = openExternal(ctx, dsn)
	} else {
		shared, sharedErr = startPrivate(ctx)
		if errors.Is(sharedErr, pgcluster.ErrNoBinaries) {
			sharedErr = fmt.Errorf("%w; or set %s to use an existing server", sharedErr, EnvDatabaseURL)
		}
	}
	return shared, sharedErr
}

// closeShared closes the binary's server, if one was made.
func closeShared(ctx context.Context) error {
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if shared == nil {
		return nil
	}
	err := shared.close(ctx)
	shared, sharedErr = nil, errors.New("the server was closed by Main")
	return err
}
