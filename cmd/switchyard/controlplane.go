package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
)

// newControlPlaneCommand builds `switchyard controlplane`.
func newControlPlaneCommand() *cobra.Command {
	var cfg ControlPlaneConfig
	cmd := &cobra.Command{
		Use:   "controlplane",
		Short: "Serve the control plane's Connect, gRPC and gRPC-Web API over Postgres",
		Long: "Serve the control plane: tenants, regions, topics, pipelines, API keys, data-plane nodes\n" +
			"and the event ledger, as Connect, gRPC and gRPC-Web on one port (HTTP/1.1 and cleartext\n" +
			"HTTP/2), with gRPC health and reflection. GET /healthz answers while the process runs;\n" +
			"GET /readyz answers 200 only while the database does. Migrations run at start.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg = cfg.withDefaults()
			if err := cfg.validate(); err != nil {
				return err
			}
			return runControlPlane(cmd.Context(), cfg, cmd)
		},
	}
	fs := cmd.Flags()
	addHTTPFlags(fs, &cfg.HTTP)
	addDatabaseFlag(fs, &cfg.DatabaseURL, "Postgres connection string, e.g. postgres://user:pass@host:5432/switchyard")
	fs.StringVar(&cfg.OperatorToken, "operator-token", "", "bearer token of operators, who may act on every tenant (required)")
	bindEnv(fs, "operator-token", "SWITCHYARD_OPERATOR_TOKEN")
	fs.StringVar(&cfg.NodeToken, "node-token", "", "bearer token of data-plane nodes, who may only register and watch the configuration (empty: nodes use the operator token)")
	bindEnv(fs, "node-token", "SWITCHYARD_NODE_TOKEN")
	fs.BoolVar(&cfg.Webhooks.AllowPrivate, "allow-private-webhooks", false, "accept webhook URLs on private networks (10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7)")
	bindEnv(fs, "allow-private-webhooks", "SWITCHYARD_ALLOW_PRIVATE_WEBHOOKS")
	fs.BoolVar(&cfg.Webhooks.AllowLoopback, "allow-loopback-webhooks", false, "accept webhook URLs on loopback addresses (127/8, ::1, localhost)")
	bindEnv(fs, "allow-loopback-webhooks", "SWITCHYARD_ALLOW_LOOPBACK_WEBHOOKS")
	fs.StringSliceVar(&cfg.Webhooks.AllowCIDRs, "allow-webhook-cidr", nil, "accept webhook URLs in these networks (comma-separated CIDRs, repeatable)")
	bindEnv(fs, "allow-webhook-cidr", "SWITCHYARD_ALLOW_WEBHOOK_CIDRS")
	fs.BoolVar(&cfg.Ledger, "ledger", true, "copy the delivery outcomes of every region's ack log into the Postgres ledger")
	bindEnv(fs, "ledger", "SWITCHYARD_LEDGER")
	addLogFlags(fs, &cfg.Log, logFormatJSON)
	return cmd
}

// runControlPlane migrates the database and serves until ctx is done.
func runControlPlane(ctx context.Context, cfg ControlPlaneConfig, cmd *cobra.Command) error {
	logger := cfg.Log.newLogger(cmd.ErrOrStderr())
	policy, err := cfg.Webhooks.policy()
	if err != nil {
		return err
	}
	pool, err := openDatabase(ctx, cfg.DatabaseURL, logger)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := serveControlPlane(ctx, serveParams{
		HTTP:          cfg.HTTP,
		Pool:          pool,
		OperatorToken: cfg.OperatorToken,
		NodeToken:     cfg.NodeToken,
		WebhookPolicy: policy,
		Logger:        logger,
		Ledger:        cfg.Ledger,
	}); err != nil {
		return fmt.Errorf("control plane: %w", err)
	}
	return nil
}
