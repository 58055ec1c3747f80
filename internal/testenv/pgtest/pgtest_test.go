package pgtest_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-dev/switchyard/internal/testenv/pgtest"
)

func TestMain(m *testing.M) {
	pgtest.Main(m)
}

// setups counts the runs of schema's Setup.
var setups atomic.Int32

var schema = pgtest.Template{
	Name: "pgtest-selftest",
	Setup: func(ctx context.Context, connString string) error {
		setups.Add(1)
		conn, err := pgx.Connect(ctx, connString)
		if err != nil {
			return fmt.Errorf("connecting: %w", err)
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, `CREATE TABLE notes (body text NOT NULL);
			INSERT INTO notes VALUES ('seed')`)
		return err
	},
}

func connect(t *testing.T, connString string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), connString)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

func notes(t *testing.T, conn *pgx.Conn) []string {
	t.Helper()
	rows, err := conn.Query(t.Context(), "SELECT body FROM notes ORDER BY body")
	require.NoError(t, err)
	bodies, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	return bodies
}

func TestParallelTestsGetIsolatedDatabases(t *testing.T) {
	t.Parallel()
	const n = 4
	var (
		mu    sync.Mutex
		names = map[string]bool{}
	)
	t.Run("group", func(t *testing.T) {
		for i := range n {
			t.Run(fmt.Sprint(i), func(t *testing.T) {
				t.Parallel()
				conn := connect(t, pgtest.NewDB(t, schema))
				require.Equal(t, []string{"seed"}, notes(t, conn), "the database is cloned from the migrated template")

				body := fmt.Sprintf("written by %d", i)
				_, err := conn.Exec(t.Context(), "INSERT INTO notes VALUES ($1)", body)
				require.NoError(t, err)
				require.Equal(t, []string{"seed", body}, notes(t, conn), "only this test's write is visible")

				var db string
				require.NoError(t, conn.QueryRow(t.Context(), "SELECT current_database()").Scan(&db))
				mu.Lock()
				names[db] = true
				mu.Unlock()
			})
		}
	})
	require.Len(t, names, n, "every test had its own database")
	require.EqualValues(t, 1, setups.Load(), "the template was set up once for all tests")
}

func TestWriteInOneDatabaseIsInvisibleInAnother(t *testing.T) {
	t.Parallel()
	a := connect(t, pgtest.NewDB(t, schema))
	b := connect(t, pgtest.NewDB(t, schema))

	_, err := a.Exec(t.Context(), "INSERT INTO notes VALUES ('only in a')")
	require.NoError(t, err)
	require.Equal(t, []string{"only in a", "seed"}, notes(t, a))
	require.Equal(t, []string{"seed"}, notes(t, b))
	require.EqualValues(t, 1, setups.Load())
}

func TestDatabaseIsDroppedAtCleanup(t *testing.T) {
	t.Parallel()
	var name string
	t.Run("user", func(t *testing.T) {
		conn := connect(t, pgtest.NewDB(t, schema))
		require.NoError(t, conn.QueryRow(t.Context(), "SELECT current_database()").Scan(&name))
		// The connection stays open: cleanup must drop the database anyway.
	})
	require.NotEmpty(t, name)

	observer := connect(t, pgtest.NewDB(t, pgtest.Template{Name: "empty"}))
	var exists bool
	require.NoError(t, observer.QueryRow(t.Context(),
		"SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)", name).Scan(&exists))
	require.False(t, exists, "database %s outlived its test", name)
}
