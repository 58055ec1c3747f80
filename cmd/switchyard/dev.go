package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"text/template"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/spf13/cobra"

	"github.com/switchyard-dev/switchyard/internal/netguard"
	"github.com/switchyard-dev/switchyard/internal/pgcluster"
)

const (
	// devDatabase is the database `switchyard dev` creates in its private
	// cluster.
	devDatabase = "switchyard"
	// tokenFileName holds the dev operator token inside the data directory.
	tokenFileName = "operator-token"
	// operatorTokenPrefix marks generated operator tokens, so they are easy
	// to tell from API key tokens ("sy_...").
	operatorTokenPrefix = "syop_"
	// postgresStopTimeout bounds the shutdown of the private cluster.
	postgresStopTimeout = 30 * time.Second
)

// newDevCommand builds `switchyard dev`.
func newDevCommand() *cobra.Command {
	var cfg DevConfig
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run Postgres and the control plane in one process, for development",
		Long: "Run everything a laptop needs in one process: Postgres (a private cluster started from\n" +
			"the local PostgreSQL binaries under --data-dir, or the database at --database-url), the\n" +
			"control plane on --listen with webhooks to loopback allowed, and an operator token that\n" +
			"is generated on the first run and kept in --data-dir. State survives restarts; delete\n" +
			"the data directory to start afresh. Ctrl-C stops everything, Postgres included.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg = cfg.withDefaults()
			if err := cfg.validate(); err != nil {
				return err
			}
			return runDev(cmd.Context(), cfg, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	fs := cmd.Flags()
	addHTTPFlags(fs, &cfg.HTTP)
	fs.StringVar(&cfg.DataDir, "data-dir", defaultDataDir, "directory keeping the private Postgres cluster and the operator token between runs")
	bindEnv(fs, "data-dir", "SWITCHYARD_DATA_DIR")
	addDatabaseFlag(fs, &cfg.DatabaseURL, "use this Postgres instead of starting a private cluster")
	fs.IntVar(&cfg.PostgresPort, "postgres-port", 0, "TCP port of the private Postgres cluster on 127.0.0.1 (0 picks a free one)")
	bindEnv(fs, "postgres-port", "SWITCHYARD_POSTGRES_PORT")
	fs.StringVar(&cfg.OperatorToken, "operator-token", "", "use this operator token instead of the one generated and kept in the data directory")
	bindEnv(fs, "operator-token", "SWITCHYARD_OPERATOR_TOKEN")
	addLogFlags(fs, &cfg.Log, logFormatText)
	return cmd
}

// runDev runs the dev environment until ctx is done. The banner with URLs,
// the token and example commands goes to out, logs to logw.
func runDev(ctx context.Context, cfg DevConfig, out, logw io.Writer) (err error) {
	logger := cfg.Log.newLogger(logw)

	// Others may traverse the data directory (the private cluster runs as
	// the postgres user when we are root) but not list it.
	if err := os.MkdirAll(cfg.DataDir, 0o711); err != nil {
		return fmt.Errorf("creating data directory: %w", err)
	}
	tokenPath := filepath.Join(cfg.DataDir, tokenFileName)
	token := cfg.OperatorToken
	if token == "" {
		if token, err = loadOrCreateToken(tokenPath); err != nil {
			return err
		}
	} else {
		tokenPath = ""
	}

	dbURL, dbNote := cfg.DatabaseURL, "from --database-url"
	if dbURL == "" {
		cluster, err := pgcluster.Start(ctx, pgcluster.Config{
			Dir:     filepath.Join(cfg.DataDir, "postgres"),
			Port:    cfg.PostgresPort,
			Durable: true,
			Logger:  logger,
		})
		if err != nil {
			return fmt.Errorf("starting private Postgres: %w", err)
		}
		defer func() {
			stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), postgresStopTimeout)
			defer cancel()
			if stopErr := cluster.Stop(stopCtx); stopErr != nil {
				err = errors.Join(err, fmt.Errorf("stopping private Postgres: %w", stopErr))
			}
		}()
		if err := ensureDatabase(ctx, cluster.ConnString("postgres"), devDatabase); err != nil {
			return err
		}
		dbURL, dbNote = cluster.ConnString(devDatabase), "private cluster in "+cluster.Dir()
	}

	pool, err := openDatabase(ctx, dbURL, logger)
	if err != nil {
		return err
	}
	defer pool.Close()

	banner := devBanner{
		Database:  redactURL(dbURL),
		DBNote:    dbNote,
		Token:     token,
		TokenPath: tokenPath,
	}
	return serveControlPlane(ctx, serveParams{
		HTTP:          cfg.HTTP,
		Pool:          pool,
		OperatorToken: token,
		WebhookPolicy: netguard.Policy{AllowLoopback: true},
		Logger:        logger,
		OnListening: func(addr net.Addr) {
			banner.Addr = dialableAddr(addr)
			if err := banner.write(out); err != nil {
				logger.Warn("writing banner", "err", err)
			}
		},
	})
}

// loadOrCreateToken returns the operator token kept at path, generating and
// saving one (mode 0600) when the file does not exist.
func loadOrCreateToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		token := strings.TrimSpace(string(b))
		if err := validateOperatorToken(token); err != nil {
			return "", fmt.Errorf("operator token in %s: %w (delete the file to get a new one)", path, err)
		}
		return token, nil
	case !errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("reading operator token: %w", err)
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", fmt.Errorf("generating operator token: %w", err)
	}
	token := operatorTokenPrefix + base64.RawURLEncoding.EncodeToString(raw[:])
	// O_EXCL: two dev processes starting at once must not both write.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("saving operator token: %w", err)
	}
	if _, err := f.WriteString(token + "\n"); err != nil {
		f.Close()
		return "", fmt.Errorf("saving operator token: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("saving operator token: %w", err)
	}
	return token, nil
}

// ensureDatabase creates database name through the maintenance connection
// adminURL unless it exists.
func ensureDatabase(ctx context.Context, adminURL, name string) error {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return fmt.Errorf("connecting to Postgres: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return fmt.Errorf("looking up database %s: %w", name, err)
	}
	if exists {
		return nil
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return fmt.Errorf("creating database %s: %w", name, err)
	}
	return nil
}

// redactURL hides the password of a URL-form connection string.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" {
		return "(connection string)"
	}
	return u.Redacted()
}

// dialableAddr turns a listener address into one a client on this machine
// can dial: an unspecified host (0.0.0.0, ::) becomes loopback.
func dialableAddr(addr net.Addr) string {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok {
		return addr.String()
	}
	ip := tcp.IP
	if ip == nil || ip.IsUnspecified() {
		ip = net.IPv4(127, 0, 0, 1)
	}
	return net.JoinHostPort(ip.String(), fmt.Sprint(tcp.Port))
}

// devBanner is what `switchyard dev` prints once it serves.
type devBanner struct {
	Addr      string
	Database  string
	DBNote    string
	Token     string
	TokenPath string
}

var devBannerTemplate = template.Must(template.New("banner").Parse(`
Switchyard dev is ready.

  Control plane   http://{{.Addr}}   (Connect, gRPC and gRPC-Web; /healthz, /readyz)
  Postgres        {{.Database}}   ({{.DBNote}})
  Operator token  {{.Token}}{{if .TokenPath}}   (kept in {{.TokenPath}}){{end}}

Create a tenant:
  curl -sS -H 'Authorization: Bearer {{.Token}}' -H 'Content-Type: application/json' http://{{.Addr}}/switchyard.v1.TenantService/CreateTenant -d '{"tenant":{"name":"acme"}}'

List tenants:
  curl -sS -H 'Authorization: Bearer {{.Token}}' -H 'Content-Type: application/json' http://{{.Addr}}/switchyard.v1.TenantService/ListTenants -d '{}'

List the services with grpcurl:
  grpcurl -plaintext -H 'authorization: Bearer {{.Token}}' {{.Addr}} list

Webhooks to loopback addresses are allowed. Press Ctrl-C to stop (Postgres too).

`))

// write renders the banner to w.
func (b devBanner) write(w io.Writer) error {
	if err := devBannerTemplate.Execute(w, b); err != nil {
		return fmt.Errorf("rendering banner: %w", err)
	}
	return nil
}
