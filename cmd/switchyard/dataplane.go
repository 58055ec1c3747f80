package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/switchyard-dev/switchyard/dataplane"
	"github.com/switchyard-dev/switchyard/dataplane/pipeline"
	"github.com/switchyard-dev/switchyard/internal/kafkaname"
)

// newDataPlaneCommand builds `switchyard dataplane`.
func newDataPlaneCommand() *cobra.Command {
	var cfg DataPlaneConfig
	cmd := &cobra.Command{
		Use:   "dataplane",
		Short: "Run a data-plane node: ingest, pipeline workers and delivery for one region",
		Long: "Run a data-plane node for one region. It registers with the control plane, follows its\n" +
			"configuration stream, creates the region's Kafka topics, accepts events (Connect\n" +
			"IngestService and CloudEvents over HTTP at /ce/<topic>) and runs the pipelines: filter,\n" +
			"transform, deliver to webhooks and Kafka, retry through delay tiers, dead-letter.\n" +
			"It serves /metrics, /healthz and /readyz beside ingest. SIGINT or SIGTERM stops it\n" +
			"gracefully: ingest stops first, then the workers finish their attempts and commit.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg = cfg.withDefaults()
			if err := cfg.validate(); err != nil {
				return err
			}
			return runDataPlane(cmd.Context(), cfg, cmd)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&cfg.ControlPlaneURL, "control-plane", defaultControlPlaneURL, "base URL of the control plane")
	bindEnv(fs, "control-plane", "SWITCHYARD_CONTROL_PLANE_URL")
	fs.StringVar(&cfg.Token, "token", "", "node token given to the control plane with --node-token (or its operator token) (required)")
	bindEnv(fs, "token", "SWITCHYARD_NODE_TOKEN")
	fs.StringVar(&cfg.Region, "region", "", "region to serve, by id (reg_...) or name (required)")
	bindEnv(fs, "region", "SWITCHYARD_REGION")
	fs.StringSliceVar(&cfg.KafkaBrokers, "kafka-brokers", nil, "Kafka seed brokers (host:port, comma-separated); default: the region's kafka_brokers")
	bindEnv(fs, "kafka-brokers", "SWITCHYARD_KAFKA_BROKERS")
	fs.DurationVar(&cfg.KafkaSessionTimeout, "kafka-session-timeout", 0, "consumer-group session timeout: how soon the partitions of a node that died move to the others (0: 45s; the broker allows 6s to 30m by default)")
	bindEnv(fs, "kafka-session-timeout", "SWITCHYARD_KAFKA_SESSION_TIMEOUT")
	fs.StringVar(&cfg.HTTP.Listen, "listen", defaultDataPlaneListen, "address to serve ingest, /metrics, /healthz and /readyz on (host:port; port 0 picks one)")
	bindEnv(fs, "listen", "SWITCHYARD_LISTEN")
	fs.DurationVar(&cfg.HTTP.ShutdownTimeout, "shutdown-timeout", defaultShutdownTimeout, "how long each stage of a graceful shutdown may take")
	bindEnv(fs, "shutdown-timeout", "SWITCHYARD_SHUTDOWN_TIMEOUT")
	fs.StringVar(&cfg.DataDir, "data-dir", "", "directory keeping the last configuration snapshot, so the node can start while the control plane is down (empty: keep none)")
	bindEnv(fs, "data-dir", "SWITCHYARD_DATA_DIR")
	fs.StringVar(&cfg.IngestURL, "ingest-url", "", "URL reported to the control plane as where this node accepts events (default: http:// and the listen address)")
	bindEnv(fs, "ingest-url", "SWITCHYARD_INGEST_URL")
	fs.DurationSliceVar(&cfg.RetryTiers, "retry-tiers", nil, "delays of the retry tiers, shortest first (default 5s,30s,5m,30m,2h)")
	bindEnv(fs, "retry-tiers", "SWITCHYARD_RETRY_TIERS")
	fs.StringVar(&cfg.RetryNamespace, "retry-namespace", "", "suffix of the retry tiers' topics and consumer groups, for installations sharing a Kafka cluster")
	bindEnv(fs, "retry-namespace", "SWITCHYARD_RETRY_NAMESPACE")
	fs.BoolVar(&cfg.Webhooks.AllowPrivate, "allow-private-webhooks", false, "let deliveries reach private networks (10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7)")
	bindEnv(fs, "allow-private-webhooks", "SWITCHYARD_ALLOW_PRIVATE_WEBHOOKS")
	fs.BoolVar(&cfg.Webhooks.AllowLoopback, "allow-loopback-webhooks", false, "let deliveries reach loopback addresses (127/8, ::1)")
	bindEnv(fs, "allow-loopback-webhooks", "SWITCHYARD_ALLOW_LOOPBACK_WEBHOOKS")
	fs.StringSliceVar(&cfg.Webhooks.AllowCIDRs, "allow-webhook-cidr", nil, "let deliveries reach these networks (comma-separated CIDRs, repeatable)")
	bindEnv(fs, "allow-webhook-cidr", "SWITCHYARD_ALLOW_WEBHOOK_CIDRS")
	addLogFlags(fs, &cfg.Log, logFormatJSON)
	return cmd
}

// retryTiers builds the pipeline's retry tiers from delays and a namespace;
// no delays means the defaults.
func retryTiers(delays []time.Duration, namespace string) []pipeline.Tier {
	if len(delays) == 0 && namespace == "" {
		return nil
	}
	if len(delays) == 0 {
		delays = kafkaname.RetryTiers
	}
	suffix := ""
	if namespace != "" {
		suffix = "." + namespace
	}
	tiers := make([]pipeline.Tier, len(delays))
	for i, d := range delays {
		tiers[i] = pipeline.Tier{Delay: d, Topic: kafkaname.RetryTopic(d) + suffix, Group: kafkaname.RetryGroup(d) + suffix}
	}
	return tiers
}

// runDataPlane runs a node until ctx is done.
func runDataPlane(ctx context.Context, cfg DataPlaneConfig, cmd *cobra.Command) error {
	logger := cfg.Log.newLogger(cmd.ErrOrStderr())
	policy, err := cfg.Webhooks.policy()
	if err != nil {
		return err
	}
	var brokers []string
	for _, b := range cfg.KafkaBrokers {
		if b = strings.TrimSpace(b); b != "" {
			brokers = append(brokers, b)
		}
	}
	var kafkaOpts []kgo.Opt
	if cfg.KafkaSessionTimeout > 0 {
		kafkaOpts = append(kafkaOpts, kgo.SessionTimeout(cfg.KafkaSessionTimeout))
	}
	node, err := dataplane.New(dataplane.Config{
		ControlPlaneURL: strings.TrimRight(cfg.ControlPlaneURL, "/"),
		Token:           cfg.Token,
		Region:          cfg.Region,
		Brokers:         brokers,
		KafkaOpts:       kafkaOpts,
		Listen:          cfg.HTTP.Listen,
		IngestURL:       cfg.IngestURL,
		DataDir:         cfg.DataDir,
		Version:         buildVersion(),
		WebhookPolicy:   policy,
		Tiers:           retryTiers(cfg.RetryTiers, cfg.RetryNamespace),
		ShutdownTimeout: cfg.HTTP.ShutdownTimeout,
		Logger:          logger,
	})
	if err != nil {
		return err
	}
	logger.Info("starting data plane", slog.String("version", buildVersion()), slog.String("region", cfg.Region))
	if err := node.Run(ctx); err != nil {
		return fmt.Errorf("data plane: %w", err)
	}
	return nil
}
