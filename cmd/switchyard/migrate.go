package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/switchyard-dev/switchyard/controlplane/store/pgstore"
)

// newMigrateCommand builds `switchyard migrate`.
func newMigrateCommand() *cobra.Command {
	var cfg MigrateConfig
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply the control plane's database migrations and exit",
		Long: "Apply every pending migration of the control plane's schema and exit. Safe to run\n" +
			"concurrently and repeatedly: applied migrations are skipped and an advisory lock\n" +
			"serialises runs. `switchyard controlplane` runs the same migrations at start.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg = cfg.withDefaults()
			if err := cfg.validate(); err != nil {
				return err
			}
			return runMigrate(cmd.Context(), cfg, cmd)
		},
	}
	fs := cmd.Flags()
	addDatabaseFlag(fs, &cfg.DatabaseURL, "Postgres connection string, e.g. postgres://user:pass@host:5432/switchyard")
	addLogFlags(fs, &cfg.Log, logFormatJSON)
	return cmd
}

// runMigrate applies the migrations.
func runMigrate(ctx context.Context, cfg MigrateConfig, cmd *cobra.Command) error {
	logger := cfg.Log.newLogger(cmd.ErrOrStderr())
	start := time.Now()
	if err := pgstore.Migrate(ctx, cfg.DatabaseURL); err != nil {
		return fmt.Errorf("migrating database: %w", err)
	}
	logger.Info("database migrated", "took", time.Since(start).Round(time.Millisecond).String())
	return nil
}
