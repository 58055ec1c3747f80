package main

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/switchyard-dev/switchyard/internal/netguard"
)

// Defaults shared by the commands.
const (
	defaultListen            = "127.0.0.1:8080"
	defaultShutdownTimeout   = 15 * time.Second
	defaultReadHeaderTimeout = 10 * time.Second
	defaultIdleTimeout       = 2 * time.Minute
	defaultDataDir           = ".switchyard"
	// minOperatorTokenLen is the shortest operator token accepted; generated
	// tokens are much longer.
	minOperatorTokenLen = 16
)

// Log formats.
const (
	logFormatJSON = "json"
	logFormatText = "text"
)

// LogConfig selects how the process logs.
type LogConfig struct {
	// Format is "json" (one object per line) or "text" (key=value).
	Format string
	// Level is "debug", "info", "warn" or "error".
	Level string
}

// withDefaults fills zero values: JSON at info level.
func (c LogConfig) withDefaults() LogConfig {
	c.Format = cmp.Or(c.Format, logFormatJSON)
	c.Level = cmp.Or(c.Level, "info")
	return c
}

// validate checks the format and level.
func (c LogConfig) validate() error {
	switch c.Format {
	case logFormatJSON, logFormatText:
	default:
		return fmt.Errorf("log format %q: want %s or %s", c.Format, logFormatJSON, logFormatText)
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(c.Level)); err != nil {
		return fmt.Errorf("log level %q: want debug, info, warn or error", c.Level)
	}
	return nil
}

// newLogger returns a logger writing to w as configured. The config must
// have passed validate.
func (c LogConfig) newLogger(w io.Writer) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: lvl}
	if c.Format == logFormatText {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// addLogFlags registers --log-format and --log-level on fs.
func addLogFlags(fs *pflag.FlagSet, c *LogConfig, defaultFormat string) {
	fs.StringVar(&c.Format, "log-format", defaultFormat, "log format: json or text")
	fs.StringVar(&c.Level, "log-level", "info", "log level: debug, info, warn or error")
	bindEnv(fs, "log-format", "SWITCHYARD_LOG_FORMAT")
	bindEnv(fs, "log-level", "SWITCHYARD_LOG_LEVEL")
}

// WebhookConfig says which webhook addresses beyond the public internet the
// control plane accepts.
type WebhookConfig struct {
	// AllowLoopback accepts webhooks to 127.0.0.0/8 and ::1.
	AllowLoopback bool
	// AllowPrivate accepts webhooks to private ranges (RFC 1918, RFC 4193).
	AllowPrivate bool
	// AllowCIDRs accepts webhooks to these networks, e.g. "10.1.0.0/16".
	AllowCIDRs []string
}

// validate checks that every CIDR parses.
func (c WebhookConfig) validate() error {
	_, err := c.policy()
	return err
}

// policy converts the config to a netguard policy.
func (c WebhookConfig) policy() (netguard.Policy, error) {
	p := netguard.Policy{AllowLoopback: c.AllowLoopback, AllowPrivate: c.AllowPrivate}
	for _, s := range c.AllowCIDRs {
		prefix, err := netip.ParsePrefix(strings.TrimSpace(s))
		if err != nil {
			return netguard.Policy{}, fmt.Errorf("webhook allow CIDR %q: %w", s, err)
		}
		p.Allow = append(p.Allow, prefix.Masked())
	}
	return p, nil
}

// HTTPConfig is the control plane's HTTP server.
type HTTPConfig struct {
	// Listen is the TCP address to serve on, host:port. Port 0 picks a free
	// port.
	Listen string
	// ReadHeaderTimeout bounds how long a client may take to send request
	// headers.
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes keep-alive connections idle for this long.
	IdleTimeout time.Duration
	// ShutdownTimeout bounds the graceful shutdown; open streams are cut
	// after it.
	ShutdownTimeout time.Duration
}

// withDefaults fills zero values.
func (c HTTPConfig) withDefaults() HTTPConfig {
	c.Listen = cmp.Or(c.Listen, defaultListen)
	c.ReadHeaderTimeout = cmp.Or(c.ReadHeaderTimeout, defaultReadHeaderTimeout)
	c.IdleTimeout = cmp.Or(c.IdleTimeout, defaultIdleTimeout)
	c.ShutdownTimeout = cmp.Or(c.ShutdownTimeout, defaultShutdownTimeout)
	return c
}

// validate checks the address and timeouts.
func (c HTTPConfig) validate() error {
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("listen address %q: %w", c.Listen, err)
	}
	if c.ReadHeaderTimeout <= 0 || c.IdleTimeout <= 0 || c.ShutdownTimeout <= 0 {
		return errors.New("server timeouts must be positive")
	}
	return nil
}

// addHTTPFlags registers --listen and --shutdown-timeout on fs.
func addHTTPFlags(fs *pflag.FlagSet, c *HTTPConfig) {
	fs.StringVar(&c.Listen, "listen", defaultListen, "address to serve the API, health and readiness on (host:port; port 0 picks one)")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", defaultShutdownTimeout, "how long a graceful shutdown may take before open streams are cut")
	bindEnv(fs, "listen", "SWITCHYARD_LISTEN")
	bindEnv(fs, "shutdown-timeout", "SWITCHYARD_SHUTDOWN_TIMEOUT")
}

// addDatabaseFlag registers --database-url on fs; it falls back to
// DATABASE_URL when SWITCHYARD_DATABASE_URL is unset.
func addDatabaseFlag(fs *pflag.FlagSet, dst *string, usage string) {
	fs.StringVar(dst, "database-url", "", usage)
	bindEnv(fs, "database-url", "SWITCHYARD_DATABASE_URL", "DATABASE_URL")
}

// validateOperatorToken checks an operator token's shape.
func validateOperatorToken(token string) error {
	switch {
	case token == "":
		return errors.New("an operator token is required (--operator-token or SWITCHYARD_OPERATOR_TOKEN)")
	case len(token) < minOperatorTokenLen:
		return fmt.Errorf("the operator token must be at least %d characters long", minOperatorTokenLen)
	case strings.ContainsAny(token, " \t\r\n"):
		return errors.New("the operator token must not contain whitespace")
	}
	return nil
}

// ControlPlaneConfig configures `switchyard controlplane`.
type ControlPlaneConfig struct {
	// DatabaseURL is the Postgres connection string (URL or key=value).
	DatabaseURL string
	// OperatorToken is the bearer token of operators (all tenants).
	OperatorToken string
	// HTTP is the server.
	HTTP HTTPConfig
	// NodeToken is the bearer token of data-plane nodes; empty lets nodes
	// use the operator token.
	NodeToken string
	// Webhooks widens which webhook addresses are accepted.
	Webhooks WebhookConfig
	// Ledger runs the delivery ledger (flag --ledger, on by default).
	Ledger bool
	// Log configures logging.
	Log LogConfig
}

// withDefaults fills zero values.
func (c ControlPlaneConfig) withDefaults() ControlPlaneConfig {
	c.HTTP = c.HTTP.withDefaults()
	c.Log = c.Log.withDefaults()
	return c
}

// validate checks the whole config and reports the first problem.
func (c ControlPlaneConfig) validate() error {
	if c.DatabaseURL == "" {
		return errors.New("a database URL is required (--database-url, SWITCHYARD_DATABASE_URL or DATABASE_URL)")
	}
	if err := validateOperatorToken(c.OperatorToken); err != nil {
		return err
	}
	if c.NodeToken != "" {
		if err := validateNodeToken(c.NodeToken); err != nil {
			return err
		}
		if c.NodeToken == c.OperatorToken {
			return errors.New("the node token must differ from the operator token")
		}
	}
	return errors.Join(c.HTTP.validate(), c.Webhooks.validate(), c.Log.validate())
}

// validateNodeToken checks a node token's shape.
func validateNodeToken(token string) error {
	switch {
	case token == "":
		return errors.New("a node token is required (--token or SWITCHYARD_NODE_TOKEN)")
	case len(token) < minOperatorTokenLen:
		return fmt.Errorf("the node token must be at least %d characters long", minOperatorTokenLen)
	case strings.ContainsAny(token, " \t\r\n"):
		return errors.New("the node token must not contain whitespace")
	}
	return nil
}

// MigrateConfig configures `switchyard migrate`.
type MigrateConfig struct {
	// DatabaseURL is the Postgres connection string.
	DatabaseURL string
	// Log configures logging.
	Log LogConfig
}

// withDefaults fills zero values.
func (c MigrateConfig) withDefaults() MigrateConfig {
	c.Log = c.Log.withDefaults()
	return c
}

// validate checks the config.
func (c MigrateConfig) validate() error {
	if c.DatabaseURL == "" {
		return errors.New("a database URL is required (--database-url, SWITCHYARD_DATABASE_URL or DATABASE_URL)")
	}
	return c.Log.validate()
}

// DevConfig configures `switchyard dev`.
type DevConfig struct {
	// DataDir keeps the private Postgres cluster, the embedded Kafka's
	// data, the tokens and the producer key between runs.
	DataDir string
	// DatabaseURL, when set, is used instead of a private cluster.
	DatabaseURL string
	// PostgresPort is the private cluster's port; 0 picks a free one.
	PostgresPort int
	// OperatorToken, when set, replaces the token kept in DataDir.
	OperatorToken string
	// KafkaBrokers, when set, are used instead of an embedded Kafka.
	KafkaBrokers []string
	// IngestListen is the data plane's address (ingest, metrics, health).
	IngestListen string
	// HTTP is the control plane's server.
	HTTP HTTPConfig
	// Ledger runs the delivery ledger (flag --ledger, on by default).
	Ledger bool
	// Log configures logging; text by default.
	Log LogConfig
}

// withDefaults fills zero values.
func (c DevConfig) withDefaults() DevConfig {
	c.DataDir = cmp.Or(c.DataDir, defaultDataDir)
	c.IngestListen = cmp.Or(c.IngestListen, defaultDataPlaneListen)
	c.HTTP = c.HTTP.withDefaults()
	c.Log.Format = cmp.Or(c.Log.Format, logFormatText)
	c.Log = c.Log.withDefaults()
	return c
}

// validate checks the config.
func (c DevConfig) validate() error {
	if c.DataDir == "" {
		return errors.New("a data directory is required (--data-dir)")
	}
	if c.PostgresPort < 0 || c.PostgresPort > 65535 {
		return fmt.Errorf("postgres port %d out of range", c.PostgresPort)
	}
	if c.OperatorToken != "" {
		if err := validateOperatorToken(c.OperatorToken); err != nil {
			return err
		}
	}
	if _, _, err := net.SplitHostPort(c.IngestListen); err != nil {
		return fmt.Errorf("ingest listen address %q: %w", c.IngestListen, err)
	}
	for _, b := range c.KafkaBrokers {
		if _, _, err := net.SplitHostPort(strings.TrimSpace(b)); err != nil {
			return fmt.Errorf("Kafka broker %q: want host:port", b)
		}
	}
	return errors.Join(c.HTTP.validate(), c.Log.validate())
}

// Defaults of `switchyard dataplane`.
const (
	defaultDataPlaneListen = "127.0.0.1:8081"
	defaultControlPlaneURL = "http://127.0.0.1:8080"
)

// DataPlaneConfig configures `switchyard dataplane`.
type DataPlaneConfig struct {
	// ControlPlaneURL is the control plane's base URL.
	ControlPlaneURL string
	// Token is the node token (or the operator token).
	Token string
	// Region is the region served, by id or name.
	Region string
	// KafkaBrokers override the region's kafka_brokers.
	KafkaBrokers []string
	// KafkaSessionTimeout is the consumer-group session timeout: how long
	// the group waits for a node that stopped heartbeating before moving its
	// partitions. 0 means franz-go's default (45 s).
	KafkaSessionTimeout time.Duration
	// DataDir keeps the last configuration snapshot; empty keeps none.
	DataDir string
	// IngestURL is the URL reported to the control plane; empty means the
	// listen address.
	IngestURL string
	// RetryTiers are the retry delay tiers; empty means the defaults.
	RetryTiers []time.Duration
	// RetryNamespace, when set, suffixes the retry tiers' topics and
	// groups, so that several installations can share a Kafka cluster.
	RetryNamespace string
	// HTTP is the server of ingest, metrics and health.
	HTTP HTTPConfig
	// Webhooks widens which webhook addresses deliveries may reach.
	Webhooks WebhookConfig
	// Log configures logging.
	Log LogConfig
}

// withDefaults fills zero values.
func (c DataPlaneConfig) withDefaults() DataPlaneConfig {
	c.ControlPlaneURL = cmp.Or(c.ControlPlaneURL, defaultControlPlaneURL)
	c.HTTP.Listen = cmp.Or(c.HTTP.Listen, defaultDataPlaneListen)
	c.HTTP = c.HTTP.withDefaults()
	c.Log = c.Log.withDefaults()
	return c
}

// validate checks the config.
func (c DataPlaneConfig) validate() error {
	var errs []error
	if err := validateNodeToken(c.Token); err != nil {
		errs = append(errs, err)
	}
	if c.Region == "" {
		errs = append(errs, errors.New("a region is required (--region or SWITCHYARD_REGION): its id or name"))
	}
	for _, b := range c.KafkaBrokers {
		if _, _, err := net.SplitHostPort(strings.TrimSpace(b)); err != nil {
			errs = append(errs, fmt.Errorf("Kafka broker %q: want host:port", b))
		}
	}
	if c.KafkaSessionTimeout < 0 {
		errs = append(errs, errors.New("the Kafka session timeout must not be negative"))
	}
	for _, d := range c.RetryTiers {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("retry tier %v: must be positive", d))
		}
	}
	if c.RetryNamespace != "" && strings.Trim(c.RetryNamespace, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") != "" {
		errs = append(errs, fmt.Errorf("retry namespace %q: use letters, digits, '-' and '_'", c.RetryNamespace))
	}
	return errors.Join(append(errs, c.HTTP.validate(), c.Webhooks.validate(), c.Log.validate())...)
}
