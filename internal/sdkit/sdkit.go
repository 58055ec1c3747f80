// Package sdkit runs the Go SDK (module sdk) against the real server pieces
// in process: a control plane on a fresh Postgres database and a data-plane
// ingest service over Kafka, kept in step by the config stream. Its tests
// are the SDK's integration tests and its benchmark.
package sdkit

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/switchyard-dev/switchyard/controlplane"
	"github.com/switchyard-dev/switchyard/controlplane/store/pgstore"
	"github.com/switchyard-dev/switchyard/dataplane/confsync"
	"github.com/switchyard-dev/switchyard/dataplane/ingest"
	"github.com/switchyard-dev/switchyard/dataplane/snapshot"
	"github.com/switchyard-dev/switchyard/internal/testenv/pgtest"
	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
	"github.com/switchyard-dev/switchyard/sdk/switchyard"
)

// Tokens of a Stack's control plane.
const (
	OperatorToken = "sdkit-operator-token-0123456789"
	NodeToken     = "sdkit-node-token-0123456789"
)

// RegionName is the region a Stack creates and its node serves.
const RegionName = "local"

// Stack is a control plane and an ingest node, each on its own HTTP server
// (HTTP/1.1 and cleartext HTTP/2), torn down when the test ends.
type Stack struct {
	ControlPlaneURL string
	IngestURL       string
	Brokers         []string
	// Holder is the node's configuration, fed by the config stream.
	Holder *snapshot.Holder
	// Admin is an SDK client of the control plane with the operator token.
	Admin *switchyard.Client
}

// NewStack starts a Stack whose region's Kafka is brokers.
func NewStack(t testing.TB, brokers []string) *Stack {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	logger := slog.New(slog.DiscardHandler)

	pool, err := pgxpool.New(ctx, pgtest.NewDB(t, pgtest.Template{Name: "controlplane", Setup: pgstore.Migrate}))
	if err != nil {
		t.Fatalf("sdkit: %v", err)
	}
	t.Cleanup(pool.Close)
	cp, err := controlplane.New(controlplane.Config{
		Store: pgstore.New(pool), OperatorToken: OperatorToken, NodeToken: NodeToken, Logger: logger,
	})
	if err != nil {
		t.Fatalf("sdkit: %v", err)
	}
	cpURL := serve(t, cp.Handler())
	t.Cleanup(cp.Close) // runs before the server closes: ends config streams

	s := &Stack{ControlPlaneURL: cpURL, Brokers: brokers, Holder: &snapshot.Holder{}}
	s.Admin, err = switchyard.NewClient(cpURL, switchyard.WithToken(OperatorToken))
	if err != nil {
		t.Fatalf("sdkit: %v", err)
	}
	t.Cleanup(s.Admin.Close)
	if _, err := s.Admin.Regions().Create(ctx, &v1.Region{Name: RegionName, KafkaBrokers: brokers}); err != nil {
		t.Fatalf("sdkit: creating the region: %v", err)
	}

	syncer, err := confsync.New(confsync.Config{
		ControlPlaneURL: cpURL, Token: NodeToken, Region: RegionName, Hostname: "sdkit", Logger: logger,
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond,
	}, s.Holder)
	if err != nil {
		t.Fatalf("sdkit: %v", err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := syncer.Run(runCtx); err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("sdkit: config sync: %v", err)
		}
	}()
	t.Cleanup(func() { stop(); <-done })

	producer, err := kgo.NewClient(ingest.NewProducerOpts(brokers)...)
	if err != nil {
		t.Fatalf("sdkit: %v", err)
	}
	t.Cleanup(producer.Close)
	svc, err := ingest.New(ingest.Config{Snapshots: s.Holder, Producer: producer, Logger: logger})
	if err != nil {
		t.Fatalf("sdkit: %v", err)
	}
	mux := http.NewServeMux()
	mux.Handle(svc.Handler())
	mux.Handle("/ce/", svc.CloudEventsHandler())
	s.IngestURL = serve(t, mux)
	return s
}

// WaitConfig waits until the node's snapshot satisfies ok.
func (s *Stack) WaitConfig(ctx context.Context, ok func(*snapshot.Snapshot) bool) error {
	ch := make(chan struct{}, 1)
	s.Holder.Subscribe(func(snap *snapshot.Snapshot) {
		if ok(snap) {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	})
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// serve serves h over HTTP/1.1 and cleartext HTTP/2 until the test ends and
// returns its URL.
func serve(t testing.TB, h http.Handler) string {
	t.Helper()
	hs := httptest.NewUnstartedServer(h)
	p := new(http.Protocols)
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	hs.Config.Protocols = p
	hs.Start()
	t.Cleanup(hs.Close)
	return hs.URL
}
