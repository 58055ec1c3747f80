package controlplane

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"buf.build/go/protovalidate"
	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-dev/switchyard/controlplane/ledger"
	"github.com/switchyard-dev/switchyard/controlplane/store"
	"github.com/switchyard-dev/switchyard/controlplane/store/pgstore"
	"github.com/switchyard-dev/switchyard/internal/testenv/pgtest"
	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
	"github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1/switchyardv1connect"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// testOperatorToken is the operator token of test servers.
const testOperatorToken = "operator-token-for-tests-0123456789"

// testNodeToken is the node token of test servers.
const testNodeToken = "node-token-for-tests-0123456789"

// testBundle is a control plane served over HTTP (HTTP/1.1 and h2c) on a
// fresh database, with clients.
type testBundle struct {
	store  *pgstore.Store
	pool   *pgxpool.Pool
	server *Server
	url    string
	// hc speaks HTTP/1.1; h2c speaks HTTP/2 without TLS, as gRPC needs.
	hc, h2c *http.Client
	// op is authenticated as the operator.
	op *clients
	// metrics is the registry of the server's metrics.
	metrics *prometheus.Registry
}

// clients holds a client of every service, authenticated with one token.
type clients struct {
	tenants   switchyardv1connect.TenantServiceClient
	regions   switchyardv1connect.RegionServiceClient
	topics    switchyardv1connect.TopicServiceClient
	pipelines switchyardv1connect.PipelineServiceClient
	keys      switchyardv1connect.ApiKeyServiceClient
	dataplane switchyardv1connect.DataPlaneServiceClient
	events    switchyardv1connect.EventServiceClient
}

var nameSeq atomic.Int64

// uniqueName returns a slug not used before in this test binary.
func uniqueName(prefix string) string {
	return fmt.Sprintf("%s-%d", prefix, nameSeq.Add(1))
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, pgtest.NewDB(t, pgtest.Template{Name: "controlplane", Setup: pgstore.Migrate}))
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	st := pgstore.New(pool)
	reg := prometheus.NewRegistry()
	srv, err := New(Config{
		Metrics:       NewMetrics(reg),
		Store:         st,
		OperatorToken: testOperatorToken,
		NodeToken:     testNodeToken,
		Logger:        slog.New(slog.NewTextHandler(testLogWriter{t}, nil)),
		Events:        ledger.NewReader(pool),
	})
	require.NoError(t, err)

	hs := httptest.NewUnstartedServer(srv.Handler())
	p := new(http.Protocols)
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	hs.Config.Protocols = p
	hs.Start()
	t.Cleanup(hs.Close)
	t.Cleanup(srv.Close) // runs first: ends config streams

	b := &testBundle{store: st, pool: pool, server: srv, url: hs.URL, hc: &http.Client{Transport: &http.Transport{}}, h2c: h2cClient(), metrics: reg}
	t.Cleanup(func() {
		b.hc.CloseIdleConnections()
		b.h2c.CloseIdleConnections()
	})
	b.op = b.clients(testOperatorToken)
	return b
}

// testLogWriter sends server logs to the test's log.
type testLogWriter struct{ t *testing.T }

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// bearer adds an Authorization header to every request, unary or
// streaming.
type bearer string

func (b bearer) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if b != "" {
			req.Header().Set("Authorization", "Bearer "+string(b))
		}
		return next(ctx, req)
	}
}

func (b bearer) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return func(ctx context.Context, spec connect.Spec) connect.StreamingClientConn {
		conn := next(ctx, spec)
		if b != "" {
			conn.RequestHeader().Set("Authorization", "Bearer "+string(b))
		}
		return conn
	}
}

func (b bearer) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}

// clients returns Connect-protocol clients sending token ("" for none).
func (b *testBundle) clients(token string, opts ...connect.ClientOption) *clients {
	return b.clientsWith(b.hc, token, opts...)
}

func (b *testBundle) clientsWith(hc connect.HTTPClient, token string, opts ...connect.ClientOption) *clients {
	opts = append(opts, connect.WithInterceptors(bearer(token)))
	return &clients{
		tenants:   switchyardv1connect.NewTenantServiceClient(hc, b.url, opts...),
		regions:   switchyardv1connect.NewRegionServiceClient(hc, b.url, opts...),
		topics:    switchyardv1connect.NewTopicServiceClient(hc, b.url, opts...),
		pipelines: switchyardv1connect.NewPipelineServiceClient(hc, b.url, opts...),
		keys:      switchyardv1connect.NewApiKeyServiceClient(hc, b.url, opts...),
		dataplane: switchyardv1connect.NewDataPlaneServiceClient(hc, b.url, opts...),
		events:    switchyardv1connect.NewEventServiceClient(hc, b.url, opts...),
	}
}

// h2cClient is an HTTP client speaking HTTP/2 without TLS, as gRPC needs.
func h2cClient() *http.Client {
	p := new(http.Protocols)
	p.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: &http.Transport{Protocols: p}}
}

// region creates a region as the operator.
func (b *testBundle) region(t *testing.T) *v1.Region {
	t.Helper()
	res, err := b.op.regions.CreateRegion(t.Context(), &v1.CreateRegionRequest{Region: &v1.Region{
		Name: uniqueName("reg"), KafkaBrokers: []string{"127.0.0.1:9092"},
	}})
	require.NoError(t, err)
	return res.GetRegion()
}

// tenant creates a tenant as the operator.
func (b *testBundle) tenant(t *testing.T) *v1.Tenant {
	t.Helper()
	res, err := b.op.tenants.CreateTenant(t.Context(), &v1.CreateTenantRequest{Tenant: &v1.Tenant{Name: uniqueName("ten")}})
	require.NoError(t, err)
	return res.GetTenant()
}

// key creates an API key of a tenant as the operator and returns it with
// its token.
func (b *testBundle) key(t *testing.T, tenantID string, role v1.ApiKeyRole) (*v1.ApiKey, string) {
	t.Helper()
	res, err := b.op.keys.CreateApiKey(t.Context(), &v1.CreateApiKeyRequest{TenantId: tenantID, ApiKey: &v1.ApiKey{
		Name: uniqueName("key"), Role: role,
	}})
	require.NoError(t, err)
	require.NotEmpty(t, res.GetSecret())
	return res.GetApiKey(), res.GetSecret()
}

// topic creates a topic of a tenant as the operator (a region must exist).
func (b *testBundle) topic(t *testing.T, tenantID, regionID string) *v1.Topic {
	t.Helper()
	res, err := b.op.topics.CreateTopic(t.Context(), &v1.CreateTopicRequest{TenantId: tenantID, Topic: &v1.Topic{
		Name: uniqueName("top"), RegionId: regionID,
	}})
	require.NoError(t, err)
	return res.GetTopic()
}

// webhookPipeline is a valid pipeline on topicID with one webhook
// destination.
func webhookPipeline(topicID string) *v1.Pipeline {
	return &v1.Pipeline{
		Name:    uniqueName("pip"),
		TopicId: topicID,
		Destinations: []*v1.Destination{{
			Name: "hook",
			Kind: &v1.Destination_Webhook{Webhook: &v1.WebhookDestination{Url: "https://example.com/hook"}},
		}},
	}
}

// pipeline creates a pipeline as the operator.
func (b *testBundle) pipeline(t *testing.T, tenantID, topicID string) *v1.Pipeline {
	t.Helper()
	res, err := b.op.pipelines.CreatePipeline(t.Context(), &v1.CreatePipelineRequest{TenantId: tenantID, Pipeline: webhookPipeline(topicID)})
	require.NoError(t, err)
	return res.GetPipeline()
}

// requireCode checks that err is a Connect error with code.
func requireCode(t *testing.T, err error, code connect.Code) {
	t.Helper()
	require.Error(t, err)
	require.Equal(t, code, connect.CodeOf(err), "error: %v", err)
}

// violationsOf returns the buf.validate.Violations detail of an
// InvalidArgument error, as field path → rule id.
func violationsOf(t *testing.T, err error) map[string]string {
	t.Helper()
	requireCode(t, err, connect.CodeInvalidArgument)
	ce := new(connect.Error)
	require.ErrorAs(t, err, &ce)
	out := map[string]string{}
	for _, d := range ce.Details() {
		v, derr := d.Value()
		require.NoError(t, derr)
		if vs, ok := v.(*validate.Violations); ok {
			for _, viol := range vs.GetViolations() {
				out[protovalidate.FieldPathString(viol.GetField())] = viol.GetRuleId()
			}
		}
	}
	require.NotEmpty(t, out, "InvalidArgument without field violations: %v", err)
	return out
}

// requireViolation checks that err is InvalidArgument with a violation of
// the field at path.
func requireViolation(t *testing.T, err error, path string) {
	t.Helper()
	vs := violationsOf(t, err)
	require.Contains(t, vs, path, "violations: %v", vs)
}

func TestNewConfig(t *testing.T) {
	t.Parallel()
	st := pgstore.New(nil)
	for name, cfg := range map[string]Config{
		"no store":    {OperatorToken: testOperatorToken},
		"short token": {Store: st, OperatorToken: "short"},
		"no token":    {Store: st},
		"short node":  {Store: st, OperatorToken: testOperatorToken, NodeToken: "short"},
		"same tokens": {Store: st, OperatorToken: testOperatorToken, NodeToken: testOperatorToken},
		"negative hb": {Store: st, OperatorToken: testOperatorToken, NodeHeartbeatInterval: -time.Second},
	} {
		_, err := New(cfg)
		require.Error(t, err, name)
	}
	s, err := New(Config{Store: st, OperatorToken: testOperatorToken})
	require.NoError(t, err)
	require.NotNil(t, s.log)
	require.Equal(t, []string{
		"switchyard.v1.TenantService", "switchyard.v1.RegionService", "switchyard.v1.TopicService",
		"switchyard.v1.PipelineService", "switchyard.v1.ApiKeyService", "switchyard.v1.DataPlaneService",
		"switchyard.v1.EventService",
	}, s.ServiceNames())
	require.Equal(t, DefaultNodeHeartbeatInterval, s.heartbeat)
	s.Close()
}

func TestJSONOverHTTP(t *testing.T) {
	t.Parallel()
	b := setup(t)
	post := func(token, body string) (*http.Response, map[string]any) {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost,
			b.url+"/switchyard.v1.TenantService/CreateTenant", strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := b.hc.Do(req)
		require.NoError(t, err)
		defer res.Body.Close()
		var out map[string]any
		require.NoError(t, json.NewDecoder(res.Body).Decode(&out))
		return res, out
	}

	res, out := post(testOperatorToken, `{"tenant": {"name": "json-tenant", "displayName": "JSON"}}`)
	require.Equal(t, http.StatusOK, res.StatusCode, "%v", out)
	tenant := out["tenant"].(map[string]any)
	require.Regexp(t, `^ten_[0-9a-z]{26}$`, tenant["id"])
	require.Equal(t, "JSON", tenant["displayName"])
	require.Equal(t, float64(1000), tenant["quotas"].(map[string]any)["eventsPerSecond"])

	res, out = post("", `{"tenant": {"name": "json-tenant-2"}}`)
	require.Equal(t, http.StatusUnauthorized, res.StatusCode)
	require.Equal(t, "unauthenticated", out["code"])

	res, out = post(testOperatorToken, `{"tenant": {"name": "Not A Slug"}}`)
	require.Equal(t, http.StatusBadRequest, res.StatusCode)
	require.Equal(t, "invalid_argument", out["code"])

	res, out = post(testOperatorToken, `{"tenant": `)
	require.Equal(t, "invalid_argument", out["code"], "%d %v", res.StatusCode, out)
}

func TestGRPCProtocol(t *testing.T) {
	t.Parallel()
	b := setup(t)
	hc := b.h2c
	for name, opt := range map[string]connect.ClientOption{
		"grpc":     connect.WithGRPC(),
		"grpc-web": connect.WithGRPCWeb(),
	} {
		c := b.clientsWith(hc, testOperatorToken, opt)
		created, err := c.tenants.CreateTenant(t.Context(), &v1.CreateTenantRequest{Tenant: &v1.Tenant{Name: uniqueName(name)}})
		require.NoError(t, err, name)
		got, err := c.tenants.GetTenant(t.Context(), &v1.GetTenantRequest{Id: created.GetTenant().GetId()})
		require.NoError(t, err, name)
		require.Equal(t, created.GetTenant().GetName(), got.GetTenant().GetName())

		_, err = c.tenants.CreateTenant(t.Context(), &v1.CreateTenantRequest{Tenant: &v1.Tenant{Name: "Bad Slug"}})
		requireViolation(t, err, "tenant.name")

		_, err = b.clientsWith(hc, "", opt).tenants.GetTenant(t.Context(), &v1.GetTenantRequest{Id: created.GetTenant().GetId()})
		requireCode(t, err, connect.CodeUnauthenticated)
	}

	health := grpchealth.NewClient(hc, b.url, connect.WithGRPC())
	res, err := health.Check(t.Context(), &grpchealth.CheckRequest{Service: switchyardv1connect.PipelineServiceName})
	require.NoError(t, err)
	require.Equal(t, grpchealth.StatusServing, res.Status)
	_, err = health.Check(t.Context(), &grpchealth.CheckRequest{Service: "no.such.Service"})
	requireCode(t, err, connect.CodeNotFound)
}

func TestReflection(t *testing.T) {
	t.Parallel()
	b := setup(t)
	// A reflection request listing the services, in the gRPC framing:
	// ServerReflectionRequest{list_services: "*"} is field 7, string "*".
	msg := []byte{0x3a, 0x01, '*'}
	frame := append([]byte{0, 0, 0, 0, byte(len(msg))}, msg...)
	for _, path := range []string{"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"} {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, b.url+path, bytes.NewReader(frame))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/grpc")
		req.Header.Set("TE", "trailers")
		res, err := b.h2c.Do(req)
		require.NoError(t, err)
		body, err := io.ReadAll(res.Body)
		require.NoError(t, err)
		require.NoError(t, res.Body.Close())
		require.Equal(t, "0", res.Trailer.Get("Grpc-Status"), "%s: %s", path, res.Trailer.Get("Grpc-Message"))
		for _, name := range b.server.ServiceNames() {
			require.Contains(t, string(body), name, path)
		}
	}
}

// TestAuditActor checks that changes are audited with the caller.
func TestAuditActor(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tenant := b.tenant(t)
	key, token := b.key(t, tenant.GetId(), v1.ApiKeyRole_API_KEY_ROLE_ADMIN)
	admin := b.clients(token)
	_, err := admin.tenants.UpdateTenant(t.Context(), &v1.UpdateTenantRequest{
		Tenant: &v1.Tenant{Id: tenant.GetId(), DisplayName: "Renamed"}, UpdateMask: mask("display_name"),
	})
	require.NoError(t, err)

	entries, err := b.store.ListAudit(t.Context(), store.AuditFilter{ResourceID: tenant.GetId(), Limit: 10})
	require.NoError(t, err)
	require.Len(t, entries, 2)
	require.Equal(t, store.Actor{Kind: store.ActorAPIKey, ID: key.GetId()}, entries[0].Actor)
	require.Equal(t, store.ActorOperator, entries[1].Actor.Kind)
	require.Equal(t, tenant.GetId(), entries[0].TenantID)
}
