package pgstore_test

import (
	"context"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-dev/switchyard/controlplane/store"
	"github.com/switchyard-dev/switchyard/controlplane/store/pgstore"
	"github.com/switchyard-dev/switchyard/controlplane/store/storetest"
	"github.com/switchyard-dev/switchyard/internal/testenv/pgtest"
	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// migrated is a database with the store's schema.
var migrated = pgtest.Template{Name: "pgstore", Setup: pgstore.Migrate}

// empty is a database with nothing in it.
var empty = pgtest.Template{Name: "empty"}

func TestStore(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) store.Store {
		pool, err := pgxpool.New(t.Context(), pgtest.NewDB(t, migrated))
		require.NoError(t, err)
		t.Cleanup(pool.Close)
		return pgstore.New(pool)
	})
}

func TestMigrate(t *testing.T) {
	t.Parallel()
	conn := pgtest.NewDB(t, empty)
	ctx := t.Context()

	require.NoError(t, pgstore.Migrate(ctx, conn))
	tables := func() []string {
		c, err := pgx.Connect(ctx, conn)
		require.NoError(t, err)
		defer func() { require.NoError(t, c.Close(context.Background())) }()
		rows, err := c.Query(ctx, `SELECT table_name::text FROM information_schema.tables
			WHERE table_schema = 'public' ORDER BY table_name`)
		require.NoError(t, err)
		names, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		return names
	}
	want := []string{"api_keys", "audit_log", "config_version", "deliveries", "events", "nodes", "operations", "pipelines",
		"regions", "schema_migrations", "tenants", "topics", "webhook_secrets"}
	require.Equal(t, want, tables())

	applied := func() []int64 {
		c, err := pgx.Connect(ctx, conn)
		require.NoError(t, err)
		defer func() { require.NoError(t, c.Close(context.Background())) }()
		rows, err := c.Query(ctx, "SELECT version FROM schema_migrations ORDER BY version")
		require.NoError(t, err)
		vs, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		require.NoError(t, err)
		return vs
	}
	first := applied()
	require.Equal(t, []int64{1, 2, 3, 4, 5}, first)

	// Again: nothing to do, nothing changes.
	require.NoError(t, pgstore.Migrate(ctx, conn))
	require.Equal(t, first, applied())
	require.Equal(t, want, tables())

	// The store works on the migrated database.
	pool, err := pgxpool.New(ctx, conn)
	require.NoError(t, err)
	defer pool.Close()
	v, err := pgstore.New(pool).ConfigVersion(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(0), v)
}

func TestMigrateConcurrently(t *testing.T) {
	t.Parallel()
	conn := pgtest.NewDB(t, empty)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = pgstore.Migrate(t.Context(), conn)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	c, err := pgx.Connect(t.Context(), conn)
	require.NoError(t, err)
	defer func() { require.NoError(t, c.Close(context.Background())) }()
	var n int
	require.NoError(t, c.QueryRow(t.Context(), "SELECT count(*) FROM schema_migrations").Scan(&n))
	require.Equal(t, 5, n)
}

func TestNotify(t *testing.T) {
	t.Parallel()
	conn := pgtest.NewDB(t, migrated)
	ctx := t.Context()
	listener, err := pgx.Connect(ctx, conn)
	require.NoError(t, err)
	defer func() { require.NoError(t, listener.Close(context.Background())) }()
	_, err = listener.Exec(ctx, "LISTEN "+pgstore.NotifyChannel)
	require.NoError(t, err)

	pool, err := pgxpool.New(ctx, conn)
	require.NoError(t, err)
	defer pool.Close()
	s := pgstore.New(pool)
	_, err = s.CreateRegion(ctx, store.Actor{Kind: store.ActorSystem, ID: "test"}, &v1.Region{Name: "eu", KafkaBrokers: []string{"k:9092"}})
	require.NoError(t, err)
	_, err = s.CreateRegion(ctx, store.Actor{Kind: store.ActorSystem, ID: "test"}, &v1.Region{Name: "us", KafkaBrokers: []string{"k:9092"}})
	require.NoError(t, err)

	for _, want := range []string{"1", "2"} {
		n, err := listener.WaitForNotification(ctx)
		require.NoError(t, err)
		require.Equal(t, pgstore.NotifyChannel, n.Channel)
		require.Equal(t, want, n.Payload)
	}
}
