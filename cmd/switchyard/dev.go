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
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/switchyard-dev/switchyard/dataplane"
	"github.com/switchyard-dev/switchyard/internal/netguard"
	"github.com/switchyard-dev/switchyard/internal/pgcluster"
)

const (
	// devDatabase is the database `switchyard dev` creates in its private
	// cluster.
	devDatabase = "switchyard"
	// tokenFileName holds the dev operator token inside the data directory.
	tokenFileName = "operator-token"
	// nodeTokenFileName holds the dev node token inside the data directory.
	nodeTokenFileName = "node-token"
	// producerKeyFileName holds the dev producer key inside the data
	// directory (keys are shown once, so dev keeps it).
	producerKeyFileName = "producer-key"
	// operatorTokenPrefix marks generated operator tokens, so they are easy
	// to tell from API key tokens ("sy_...").
	operatorTokenPrefix = "syop_"
	// nodeTokenPrefix marks generated node tokens.
	nodeTokenPrefix = "synode_"
	// postgresStopTimeout bounds the shutdown of the private cluster.
	postgresStopTimeout = 30 * time.Second
	// devKafkaPartitions is the partition count of topics the embedded Kafka
	// creates on its own.
	devKafkaPartitions = 3
	// bootstrapTimeout bounds the creation of the dev objects.
	bootstrapTimeout = 30 * time.Second
)

// The objects `switchyard dev` creates on first start.
const (
	devRegionName = "local"
	devTenantName = "dev"
	devTopicName  = "events"
	devKeyName    = "dev-producer"
)

// newDevCommand builds `switchyard dev`.
func newDevCommand() *cobra.Command {
	var cfg DevConfig
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run Postgres, Kafka, the control plane and a data-plane node in one process, for development",
		Long: "Run everything a laptop needs in one process: Postgres (a private cluster started from\n" +
			"the local PostgreSQL binaries under --data-dir, or the database at --database-url), an\n" +
			"embedded Kafka (kept under --data-dir) unless --kafka-brokers is given, the control plane\n" +
			"on --listen and a data-plane node on --ingest-listen, with webhooks to loopback allowed.\n" +
			"On first start it creates a region \"local\", a tenant \"dev\" with a topic \"events\" and a\n" +
			"producer key; the tokens and the key are kept in --data-dir. State survives restarts;\n" +
			"delete the data directory to start afresh. Ctrl-C stops everything, Postgres included.",
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
	fs.StringVar(&cfg.DataDir, "data-dir", defaultDataDir, "directory keeping the private Postgres cluster, the embedded Kafka, the tokens and the producer key between runs")
	bindEnv(fs, "data-dir", "SWITCHYARD_DATA_DIR")
	addDatabaseFlag(fs, &cfg.DatabaseURL, "use this Postgres instead of starting a private cluster")
	fs.IntVar(&cfg.PostgresPort, "postgres-port", 0, "TCP port of the private Postgres cluster on 127.0.0.1 (0 picks a free one)")
	bindEnv(fs, "postgres-port", "SWITCHYARD_POSTGRES_PORT")
	fs.StringVar(&cfg.OperatorToken, "operator-token", "", "use this operator token instead of the one generated and kept in the data directory")
	bindEnv(fs, "operator-token", "SWITCHYARD_OPERATOR_TOKEN")
	fs.StringSliceVar(&cfg.KafkaBrokers, "kafka-brokers", nil, "use this Kafka (host:port, comma-separated) instead of the embedded one")
	bindEnv(fs, "kafka-brokers", "SWITCHYARD_KAFKA_BROKERS")
	fs.StringVar(&cfg.IngestListen, "ingest-listen", defaultDataPlaneListen, "address of the data plane: ingest, /metrics, /healthz, /readyz (port 0 picks one)")
	bindEnv(fs, "ingest-listen", "SWITCHYARD_INGEST_LISTEN")
	fs.BoolVar(&cfg.Ledger, "ledger", true, "copy the delivery outcomes of the ack log into the Postgres ledger")
	bindEnv(fs, "ledger", "SWITCHYARD_LEDGER")
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
		if token, err = loadOrCreateToken(tokenPath, operatorTokenPrefix, validateOperatorToken); err != nil {
			return err
		}
	} else {
		tokenPath = ""
	}
	nodeToken, err := loadOrCreateToken(filepath.Join(cfg.DataDir, nodeTokenFileName), nodeTokenPrefix, validateNodeToken)
	if err != nil {
		return err
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

	// Kafka: the brokers given, or an embedded one keeping its data in the
	// data directory.
	var brokers []string
	for _, b := range cfg.KafkaBrokers {
		if b = strings.TrimSpace(b); b != "" {
			brokers = append(brokers, b)
		}
	}
	kafkaNote := "from --kafka-brokers"
	if len(brokers) == 0 {
		kafkaDir := filepath.Join(cfg.DataDir, "kafka")
		cluster, err := kfake.NewCluster(
			kfake.NumBrokers(1),
			kfake.DefaultNumPartitions(devKafkaPartitions),
			kfake.DataDir(kafkaDir),
		)
		if err != nil {
			return fmt.Errorf("starting embedded Kafka: %w", err)
		}
		// Closed last among the services, after the node has committed.
		defer cluster.Close()
		brokers = cluster.ListenAddrs()
		kafkaNote = "embedded (franz-go kfake), data in " + kafkaDir
	}

	pool, err := openDatabase(ctx, dbURL, logger)
	if err != nil {
		return err
	}
	defer pool.Close()

	// The control plane runs until the data plane has stopped, so that the
	// node's last calls are answered.
	cpCtx, stopCP := context.WithCancel(context.WithoutCancel(ctx))
	defer stopCP()
	listening := make(chan net.Addr, 1)
	cpDone := make(chan error, 1)
	go func() {
		cpDone <- serveControlPlane(cpCtx, serveParams{
			HTTP:          cfg.HTTP,
			Pool:          pool,
			OperatorToken: token,
			NodeToken:     nodeToken,
			WebhookPolicy: netguard.Policy{AllowLoopback: true},
			Logger:        logger,
			OnListening:   func(addr net.Addr) { listening <- addr },
			Ledger:        cfg.Ledger,
		})
	}()
	cpStopped := false
	waitCP := func() error {
		if cpStopped {
			return nil
		}
		stopCP()
		cpStopped = true
		return <-cpDone
	}
	defer func() { err = errors.Join(err, waitCP()) }()

	var cpAddr string
	select {
	case addr := <-listening:
		cpAddr = dialableAddr(addr)
	case cerr := <-cpDone:
		cpStopped = true
		return cerr
	case <-ctx.Done():
		return nil
	}
	cpURL := "http://" + cpAddr

	bootCtx, cancelBoot := context.WithTimeout(ctx, bootstrapTimeout)
	objs, err := bootstrapDev(bootCtx, cpURL, token, brokers, filepath.Join(cfg.DataDir, producerKeyFileName))
	cancelBoot()
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("creating the dev region, tenant, topic and key: %w", err)
	}

	node, err := dataplane.New(dataplane.Config{
		ControlPlaneURL: cpURL,
		Token:           nodeToken,
		Region:          devRegionName,
		Brokers:         brokers,
		Listen:          cfg.IngestListen,
		DataDir:         filepath.Join(cfg.DataDir, "node"),
		Version:         buildVersion(),
		WebhookPolicy:   netguard.Policy{AllowLoopback: true},
		ShutdownTimeout: cfg.HTTP.ShutdownTimeout,
		Logger:          logger.With("role", "dataplane"),
	})
	if err != nil {
		return err
	}
	nodeDone := make(chan error, 1)
	go func() { nodeDone <- node.Run(ctx) }()
	nodeStopped := false
	defer func() {
		if !nodeStopped {
			err = errors.Join(err, <-nodeDone)
		}
	}()

	select {
	case <-node.Ready():
	case nerr := <-nodeDone:
		nodeStopped = true
		if nerr == nil && ctx.Err() == nil {
			nerr = errors.New("the data plane stopped during start-up")
		}
		return nerr
	case cerr := <-cpDone:
		cpStopped = true
		return errors.Join(errors.New("the control plane stopped"), cerr)
	}

	banner := devBanner{
		Addr:        cpAddr,
		Ingest:      node.Addr(),
		Database:    redactURL(dbURL),
		DBNote:      dbNote,
		Kafka:       strings.Join(brokers, ","),
		KafkaNote:   kafkaNote,
		Token:       token,
		TokenPath:   tokenPath,
		ProducerKey: objs.ProducerKey,
		KeyPath:     filepath.Join(cfg.DataDir, producerKeyFileName),
		TenantID:    objs.TenantID,
		TopicID:     objs.TopicID,
		Topic:       devTopicName,
	}
	if err := banner.write(out); err != nil {
		logger.Warn("writing banner", "err", err)
	}

	select {
	case <-ctx.Done():
	case nerr := <-nodeDone:
		nodeStopped = true
		if nerr == nil {
			nerr = errors.New("the data plane stopped unexpectedly")
		}
		return nerr
	case cerr := <-cpDone:
		cpStopped = true
		return errors.Join(errors.New("the control plane stopped unexpectedly"), cerr)
	}
	// Data plane first (it drains ingest and commits), then the control
	// plane, then Kafka and Postgres (deferred).
	nodeStopped = true
	if nerr := <-nodeDone; nerr != nil {
		err = errors.Join(err, nerr)
	}
	return errors.Join(err, waitCP())
}

// loadOrCreateToken returns the token kept at path, checked with validate,
// generating one (prefix and 43 random characters) and saving it (mode 0600)
// when the file does not exist.
func loadOrCreateToken(path, prefix string, validate func(string) error) (string, error) {
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		token := strings.TrimSpace(string(b))
		if err := validate(token); err != nil {
			return "", fmt.Errorf("token in %s: %w (delete the file to get a new one)", path, err)
		}
		return token, nil
	case !errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("reading token: %w", err)
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", fmt.Errorf("generating token: %w", err)
	}
	token := prefix + base64.RawURLEncoding.EncodeToString(raw[:])
	// O_EXCL: two dev processes starting at once must not both write.
	if err := writeSecretFile(path, token, os.O_EXCL); err != nil {
		return "", err
	}
	return token, nil
}

// writeSecretFile writes value and a newline to path with mode 0600. flag
// adds to O_WRONLY|O_CREATE (O_EXCL or O_TRUNC).
func writeSecretFile(path, value string, flag int) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|flag, 0o600)
	if err != nil {
		return fmt.Errorf("saving %s: %w", filepath.Base(path), err)
	}
	if _, err := f.WriteString(value + "\n"); err != nil {
		f.Close()
		return fmt.Errorf("saving %s: %w", filepath.Base(path), err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("saving %s: %w", filepath.Base(path), err)
	}
	return nil
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
	Addr        string
	Ingest      string
	Database    string
	DBNote      string
	Kafka       string
	KafkaNote   string
	Token       string
	TokenPath   string
	ProducerKey string
	KeyPath     string
	TenantID    string
	TopicID     string
	Topic       string
}

var devBannerTemplate = template.Must(template.New("banner").Parse(`
Switchyard dev is ready.

  Control plane   http://{{.Addr}}   (Connect, gRPC and gRPC-Web; /healthz, /readyz)
  Data plane      http://{{.Ingest}}   (ingest: Connect and CloudEvents at /ce/<topic>; /metrics, /healthz, /readyz)
  Postgres        {{.Database}}   ({{.DBNote}})
  Kafka           {{.Kafka}}   ({{.KafkaNote}})
  Operator token  {{.Token}}{{if .TokenPath}}   (kept in {{.TokenPath}}){{end}}
  Tenant "dev"    {{.TenantID}}
  Topic "{{.Topic}}"  {{.TopicID}}   (region "local")
  Producer key    {{.ProducerKey}}   (kept in {{.KeyPath}})

Publish an event (CloudEvents, binary mode):
  curl -sS -X POST http://{{.Ingest}}/ce/{{.Topic}} -H 'Authorization: Bearer {{.ProducerKey}}' -H 'ce-specversion: 1.0' -H 'ce-type: com.example.hello' -H 'ce-source: /curl' -H 'ce-id: hello-1' -H 'Content-Type: application/json' -d '{"hello":"world"}'

Deliver the topic's events to a webhook (replace the URL with your receiver's):
  curl -sS -H 'Authorization: Bearer {{.Token}}' -H 'Content-Type: application/json' http://{{.Addr}}/switchyard.v1.PipelineService/CreatePipeline -d '{"tenant_id":"{{.TenantID}}","pipeline":{"name":"to-webhook","topic_id":"{{.TopicID}}","destinations":[{"name":"hook","webhook":{"url":"http://127.0.0.1:9000/hook"}}]}}'

Create a tenant:
  curl -sS -H 'Authorization: Bearer {{.Token}}' -H 'Content-Type: application/json' http://{{.Addr}}/switchyard.v1.TenantService/CreateTenant -d '{"tenant":{"name":"acme"}}'

List tenants:
  curl -sS -H 'Authorization: Bearer {{.Token}}' -H 'Content-Type: application/json' http://{{.Addr}}/switchyard.v1.TenantService/ListTenants -d '{}'

List the services with grpcurl:
  grpcurl -plaintext -H 'authorization: Bearer {{.Token}}' {{.Addr}} list

Webhooks to loopback addresses are allowed. Press Ctrl-C to stop (Postgres and Kafka too).

`))

// write renders the banner to w.
func (b devBanner) write(w io.Writer) error {
	if err := devBannerTemplate.Execute(w, b); err != nil {
		return fmt.Errorf("rendering banner: %w", err)
	}
	return nil
}
