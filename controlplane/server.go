// Package controlplane serves Switchyard's control-plane API: the Connect
// services that manage tenants, regions, topics, pipelines and API keys over
// a store.Store, with authentication, authorisation, validation and
// pagination, plus gRPC health checking and server reflection. Its
// DataPlaneService registers data-plane nodes and streams configuration
// snapshots to them. Its EventService answers from the delivery ledger
// (package ledger).
//
// Every RPC is reachable with the Connect, gRPC and gRPC-Web protocols, in
// binary Protobuf or JSON. Serve Handler with HTTP/1.1 and unencrypted
// HTTP/2 (h2c) enabled for gRPC without TLS:
//
//	p := new(http.Protocols)
//	p.SetHTTP1(true)
//	p.SetUnencryptedHTTP2(true)
//	srv := &http.Server{Handler: s.Handler(), Protocols: p}
package controlplane

import (
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"connectrpc.com/grpcreflect"
	"connectrpc.com/validate"

	"github.com/switchyard-dev/switchyard/controlplane/ledger"
	"github.com/switchyard-dev/switchyard/controlplane/store"
	"github.com/switchyard-dev/switchyard/internal/celenv"
	"github.com/switchyard-dev/switchyard/internal/kafkaname"
	"github.com/switchyard-dev/switchyard/internal/netguard"
	"github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1/switchyardv1connect"
)

// minOperatorTokenLen is the shortest operator token accepted.
const minOperatorTokenLen = 16

// maxRequestBytes bounds the size of a request message.
const maxRequestBytes = 4 << 20

// DefaultNodeHeartbeatInterval is how often nodes are told to heartbeat
// when Config.NodeHeartbeatInterval is zero.
const DefaultNodeHeartbeatInterval = 10 * time.Second

// nodeLostAfter is how many heartbeat intervals a node may miss before it
// is listed as lost.
const nodeLostAfter = 3

// Config configures a Server.
type Config struct {
	// Store holds the configuration. Required.
	Store store.Store
	// OperatorToken is the bearer token of operators, who may manage every
	// tenant and region. Required; at least 16 characters.
	OperatorToken string
	// Logger receives errors that are not shown to callers. Default
	// slog.Default().
	Logger *slog.Logger
	// WebhookPolicy decides which webhook URLs pipelines may name. The zero
	// value refuses literal loopback, private, link-local and metadata
	// addresses; a development setup may allow loopback.
	WebhookPolicy netguard.Policy
	// NodeToken is the bearer token of data-plane nodes, who may call only
	// DataPlaneService. Optional (empty: nodes use the operator token); when
	// set, at least 16 characters and different from OperatorToken.
	NodeToken string
	// NodeHeartbeatInterval is how often nodes are told to call Heartbeat; a
	// node that misses three is listed as lost. Default
	// DefaultNodeHeartbeatInterval.
	NodeHeartbeatInterval time.Duration
	// Metrics, when set, counts and times every RPC (see NewMetrics).
	Metrics *Metrics
	// Events, when set, answers EventService's ledger queries; without it
	// they answer Unimplemented.
	Events *ledger.Reader
	// RedriveTopic is the retry-tier topic, in each region, to which
	// RedriveDeadLetters publishes dead letters for the data plane to
	// deliver again. Default the shortest tier,
	// kafkaname.RetryTopic(kafkaname.RetryTiers[0]).
	RedriveTopic string
}

// withDefaults returns a copy of c with zero values filled in.
func (c Config) withDefaults() Config {
	c.Logger = cmp.Or(c.Logger, slog.Default())
	c.NodeHeartbeatInterval = cmp.Or(c.NodeHeartbeatInterval, DefaultNodeHeartbeatInterval)
	c.RedriveTopic = cmp.Or(c.RedriveTopic, kafkaname.RetryTopic(kafkaname.RetryTiers[0]))
	return c
}

// validate reports what is wrong with c.
func (c Config) validate() error {
	var errs []error
	if c.Store == nil {
		errs = append(errs, errors.New("Store is required"))
	}
	if len(c.OperatorToken) < minOperatorTokenLen {
		errs = append(errs, fmt.Errorf("OperatorToken must be at least %d characters", minOperatorTokenLen))
	}
	if c.NodeToken != "" {
		if len(c.NodeToken) < minOperatorTokenLen {
			errs = append(errs, fmt.Errorf("NodeToken must be empty or at least %d characters", minOperatorTokenLen))
		}
		if c.NodeToken == c.OperatorToken {
			errs = append(errs, errors.New("NodeToken must differ from OperatorToken"))
		}
	}
	if c.NodeHeartbeatInterval < 0 {
		errs = append(errs, fmt.Errorf("NodeHeartbeatInterval must not be negative, got %v", c.NodeHeartbeatInterval))
	}
	return errors.Join(errs...)
}

// Server serves the control-plane API. Create it with New; call Close when
// done serving.
type Server struct {
	store        store.Store
	log          *slog.Logger
	webhooks     netguard.Policy
	cel          *celenv.Env
	operatorHash [sha256.Size]byte
	hasNodeToken bool
	nodeHash     [sha256.Size]byte
	heartbeat    time.Duration
	configs      *broadcaster
	metrics      *Metrics
	events       *ledger.Reader
	ops          operations
	redriveTopic string
}

// New returns a Server for cfg, after filling defaults and checking it.
func New(cfg Config) (*Server, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("controlplane: invalid config: %w", err)
	}
	env, err := celenv.New()
	if err != nil {
		return nil, fmt.Errorf("controlplane: building the CEL environment: %w", err)
	}
	s := &Server{
		store:        cfg.Store,
		log:          cfg.Logger,
		webhooks:     cfg.WebhookPolicy,
		cel:          env,
		operatorHash: sha256.Sum256([]byte(cfg.OperatorToken)),
		hasNodeToken: cfg.NodeToken != "",
		nodeHash:     sha256.Sum256([]byte(cfg.NodeToken)),
		heartbeat:    cfg.NodeHeartbeatInterval,
		metrics:      cfg.Metrics,
		events:       cfg.Events,
		redriveTopic: cfg.RedriveTopic,
	}
	s.configs = newBroadcaster(cfg.Store, cfg.Logger)
	return s, nil
}

// Close ends every WatchConfig stream (with Unavailable, so nodes
// reconnect elsewhere) and stops the goroutine that watches the store for
// configuration changes, waiting for it to finish. It also stops the
// operations (redrives) this server runs, which end FAILED, and waits for
// them. Other calls keep working; a WatchConfig call after Close fails with
// Unavailable, a redrive started after Close ends FAILED at once. Close is
// idempotent.
func (s *Server) Close() {
	s.ops.close()
	s.configs.close()
}

// serviceNames are the fully-qualified names of the services Handler
// serves, apart from health and reflection.
var serviceNames = []string{
	switchyardv1connect.TenantServiceName,
	switchyardv1connect.RegionServiceName,
	switchyardv1connect.TopicServiceName,
	switchyardv1connect.PipelineServiceName,
	switchyardv1connect.ApiKeyServiceName,
	switchyardv1connect.DataPlaneServiceName,
	switchyardv1connect.EventServiceName,
}

// ServiceNames returns the fully-qualified names of the API services the
// Server serves (health and reflection not included).
func (s *Server) ServiceNames() []string {
	return append([]string(nil), serviceNames...)
}

// Handler returns an http.Handler serving every API service, gRPC health
// checking (grpc.health.v1.Health, reporting every service as serving) and
// gRPC server reflection (v1 and v1alpha). API calls need a bearer token;
// health and reflection do not.
func (s *Server) Handler() http.Handler {
	opts := []connect.HandlerOption{
		// Authentication runs first: a caller without valid credentials learns
		// nothing, not even whether its request would have been well-formed.
		connect.WithInterceptors(metricsInterceptor{s.metrics}, s.authInterceptor(), validate.NewInterceptor()),
		connect.WithReadMaxBytes(maxRequestBytes),
		connect.WithRecover(s.recoverPanic),
	}
	mux := http.NewServeMux()
	mux.Handle(switchyardv1connect.NewTenantServiceHandler(&tenantService{s}, opts...))
	mux.Handle(switchyardv1connect.NewRegionServiceHandler(&regionService{s}, opts...))
	mux.Handle(switchyardv1connect.NewTopicServiceHandler(&topicService{s}, opts...))
	mux.Handle(switchyardv1connect.NewPipelineServiceHandler(&pipelineService{s}, opts...))
	mux.Handle(switchyardv1connect.NewApiKeyServiceHandler(&apiKeyService{s}, opts...))
	mux.Handle(switchyardv1connect.NewDataPlaneServiceHandler(&dataPlaneService{s}, opts...))
	mux.Handle(switchyardv1connect.NewEventServiceHandler(&eventService{s}, opts...))
	mux.Handle(grpchealth.NewHandler(grpchealth.NewStaticChecker(serviceNames...)))
	reflector := grpcreflect.NewStaticReflector(serviceNames...)
	mux.Handle(grpcreflect.NewHandlerV1(reflector))
	mux.Handle(grpcreflect.NewHandlerV1Alpha(reflector))
	return mux
}

// recoverPanic turns a handler panic into a logged Internal error.
func (s *Server) recoverPanic(ctx context.Context, spec connect.Spec, _ http.Header, v any) error {
	s.log.ErrorContext(ctx, "handler panicked",
		slog.String("procedure", spec.Procedure), slog.Any("panic", v), slog.String("stack", string(debug.Stack())))
	return connect.NewError(connect.CodeInternal, errors.New(msgInternal))
}
