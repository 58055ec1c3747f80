package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/switchyard-dev/switchyard/controlplane"
	"github.com/switchyard-dev/switchyard/controlplane/ledger"
	"github.com/switchyard-dev/switchyard/controlplane/store/pgstore"
	"github.com/switchyard-dev/switchyard/internal/netguard"
)

// readinessTimeout bounds the database ping of /readyz.
const readinessTimeout = 2 * time.Second

// serveParams is what serveControlPlane needs.
type serveParams struct {
	HTTP          HTTPConfig
	Pool          *pgxpool.Pool
	OperatorToken string
	NodeToken     string
	WebhookPolicy netguard.Policy
	Logger        *slog.Logger
	// OnListening, when set, is called with the bound address once the
	// server accepts connections.
	OnListening func(addr net.Addr)
	// Ledger runs the delivery ledger: the ack logs of every region copied
	// into Postgres.
	Ledger bool
}

// serveControlPlane serves the control plane's services, /metrics, /healthz
// and /readyz on p.HTTP.Listen until ctx is done, then shuts down gracefully.
func serveControlPlane(ctx context.Context, p serveParams) error {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	cp, err := controlplane.New(controlplane.Config{
		Metrics:       controlplane.NewMetrics(reg),
		Store:         pgstore.New(p.Pool),
		OperatorToken: p.OperatorToken,
		NodeToken:     p.NodeToken,
		Logger:        p.Logger,
		WebhookPolicy: p.WebhookPolicy,
		Events:        ledger.NewReader(p.Pool),
	})
	if err != nil {
		return fmt.Errorf("creating control plane: %w", err)
	}
	// Close ends the configuration streams to nodes, so that the shutdown
	// below does not wait for them.
	defer cp.Close()

	if p.Ledger {
		l, err := ledger.New(ledger.Config{
			Pool:     p.Pool,
			Regions:  pgstore.New(p.Pool),
			Registry: reg,
			Logger:   p.Logger.With("component", "ledger"),
		})
		if err != nil {
			return fmt.Errorf("creating the ledger: %w", err)
		}
		ledgerCtx, stopLedger := context.WithCancel(context.WithoutCancel(ctx))
		ledgerDone := make(chan error, 2)
		go func() { ledgerDone <- l.Run(ledgerCtx) }()
		// Retention: old history is pruned by the tenants' policies.
		go func() { ledgerDone <- l.RunRetention(ledgerCtx, ledger.DefaultRetentionInterval) }()
		// The ledger stops after the server: acks it has not written stay
		// in Kafka for the next run.
		defer func() {
			stopLedger()
			for range 2 {
				if err := <-ledgerDone; err != nil {
					p.Logger.Error("ledger stopped with an error", "err", err)
				}
			}
		}()
	}

	var draining atomic.Bool
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeStatus(w, http.StatusOK, "ok", "")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if draining.Load() {
			writeStatus(w, http.StatusServiceUnavailable, "draining", "shutting down")
			return
		}
		pingCtx, cancel := context.WithTimeout(r.Context(), readinessTimeout)
		defer cancel()
		if err := p.Pool.Ping(pingCtx); err != nil {
			p.Logger.Warn("readiness check failed", "err", err)
			writeStatus(w, http.StatusServiceUnavailable, "unavailable", "database unreachable")
			return
		}
		writeStatus(w, http.StatusOK, "ok", "")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.Handle("/", cp.Handler())

	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	// gRPC clients such as grpcurl -plaintext speak HTTP/2 without TLS.
	protocols.SetUnencryptedHTTP2(true)
	srv := &http.Server{
		Handler:           mux,
		Protocols:         protocols,
		ReadHeaderTimeout: p.HTTP.ReadHeaderTimeout,
		IdleTimeout:       p.HTTP.IdleTimeout,
		MaxHeaderBytes:    1 << 20,
		ErrorLog:          slog.NewLogLogger(p.Logger.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}

	ln, err := new(net.ListenConfig).Listen(ctx, "tcp", p.HTTP.Listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", p.HTTP.Listen, err)
	}
	p.Logger.Info("control plane listening", "addr", ln.Addr().String(), "services", cp.ServiceNames())

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	if p.OnListening != nil {
		p.OnListening(ln.Addr())
	}

	select {
	case err := <-serveErr:
		return fmt.Errorf("serving HTTP: %w", err)
	case <-ctx.Done():
	}

	draining.Store(true)
	cp.Close()
	p.Logger.Info("shutting down control plane", "timeout", p.HTTP.ShutdownTimeout.String())
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.HTTP.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		// Long-lived streams outlived the grace period: cut them.
		p.Logger.Warn("graceful shutdown incomplete; closing connections", "err", err)
		if cerr := srv.Close(); cerr != nil {
			return fmt.Errorf("closing HTTP server: %w", cerr)
		}
	}
	if err := <-serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serving HTTP: %w", err)
	}
	p.Logger.Info("control plane stopped")
	return nil
}

// writeStatus writes a small JSON health document.
func writeStatus(w http.ResponseWriter, code int, status, detail string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	body := map[string]string{"status": status}
	if detail != "" {
		body["detail"] = detail
	}
	_ = json.NewEncoder(w).Encode(body)
}

// openDatabase applies the migrations to databaseURL and returns a pool that
// has answered a ping.
func openDatabase(ctx context.Context, databaseURL string, logger *slog.Logger) (*pgxpool.Pool, error) {
	start := time.Now()
	if err := pgstore.Migrate(ctx, databaseURL); err != nil {
		return nil, fmt.Errorf("migrating database: %w", err)
	}
	logger.Info("database migrated", "took", time.Since(start).Round(time.Millisecond).String())
	pool, err := pgxpool.New(ctx, databaseURL)
	if err != nil {
		return nil, fmt.Errorf("opening database pool: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("pinging database: %w", err)
	}
	return pool, nil
}
