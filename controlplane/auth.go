package controlplane

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"log/slog"
	"strings"
	"time"

	"connectrpc.com/connect"

	"github.com/switchyard-dev/switchyard/controlplane/store"
	"github.com/switchyard-dev/switchyard/internal/apikey"
	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
	"github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1/switchyardv1connect"
)

// Messages of authentication failures. One message covers every invalid
// token, whether or not its key id exists, so keys cannot be probed.
const (
	msgMissingToken = "missing bearer token in the Authorization header"
	msgInvalidToken = "invalid credentials"
)

// callerKind is what kind of caller made a request.
type callerKind int

// Kinds of caller.
const (
	callerOperator callerKind = iota + 1
	callerTenantAdmin
	callerProducer
	callerNode
)

// principal is the authenticated caller of a request.
type principal struct {
	kind callerKind
	// tenantID is the tenant of an API key; empty for operators and nodes.
	tenantID string
	// keyID is the API key's id; empty for operators and nodes.
	keyID string
}

// actor is the principal as the audit log records it.
func (p *principal) actor() store.Actor {
	switch p.kind {
	case callerOperator:
		return store.Actor{Kind: store.ActorOperator, ID: "operator"}
	case callerNode:
		return store.Actor{Kind: store.ActorNode, ID: "node"}
	}
	return store.Actor{Kind: store.ActorAPIKey, ID: p.keyID}
}

// isOperator reports whether the principal is an operator.
func (p *principal) isOperator() bool { return p.kind == callerOperator }

// principalKey is the context key of the principal.
type principalKey struct{}

// withPrincipal returns ctx carrying p.
func withPrincipal(ctx context.Context, p *principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// principalFrom returns the principal the auth interceptor put in ctx. A
// handler reached without one is a wiring error; it gets a principal that
// may do nothing.
func principalFrom(ctx context.Context) *principal {
	if p, ok := ctx.Value(principalKey{}).(*principal); ok {
		return p
	}
	return &principal{}
}

// operatorOnly lists the procedures reserved for operators.
var operatorOnly = map[string]bool{
	switchyardv1connect.TenantServiceCreateTenantProcedure: true,
	switchyardv1connect.TenantServiceDeleteTenantProcedure: true,
	switchyardv1connect.RegionServiceCreateRegionProcedure: true,
	switchyardv1connect.RegionServiceUpdateRegionProcedure: true,
	switchyardv1connect.RegionServiceDeleteRegionProcedure: true,
}

// nodeProcedures lists the procedures of data-plane nodes: the only ones a
// node token may call, and reserved for nodes and operators.
var nodeProcedures = map[string]bool{
	switchyardv1connect.DataPlaneServiceRegisterNodeProcedure: true,
	switchyardv1connect.DataPlaneServiceHeartbeatProcedure:    true,
	switchyardv1connect.DataPlaneServiceListNodesProcedure:    true,
	switchyardv1connect.DataPlaneServiceWatchConfigProcedure:  true,
}

// authInterceptor authenticates every call, unary or streaming, refuses
// producers, keeps nodes to the node procedures and those procedures to
// nodes and operators, keeps the operator-only procedures to operators, and
// puts the principal in the context. Finer checks (which tenant's objects)
// are made by handlers.
func (s *Server) authInterceptor() connect.Interceptor {
	return &authInterceptor{s}
}

// authInterceptor is the connect.Interceptor of Server.authInterceptor.
type authInterceptor struct{ s *Server }

// WrapUnary implements connect.Interceptor.
func (a *authInterceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		p, err := a.s.authorize(ctx, req.Header().Get("Authorization"), req.Spec().Procedure)
		if err != nil {
			return nil, err
		}
		return next(withPrincipal(ctx, p), req)
	}
}

// WrapStreamingClient implements connect.Interceptor; clients are not
// intercepted.
func (a *authInterceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

// WrapStreamingHandler implements connect.Interceptor: a stream is
// authenticated from its request headers before any message is read.
func (a *authInterceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		p, err := a.s.authorize(ctx, conn.RequestHeader().Get("Authorization"), conn.Spec().Procedure)
		if err != nil {
			return err
		}
		return next(withPrincipal(ctx, p), conn)
	}
}

// authorize authenticates the Authorization header and checks that the
// caller's kind may call procedure.
func (s *Server) authorize(ctx context.Context, header, procedure string) (*principal, error) {
	p, err := s.authenticate(ctx, header)
	if err != nil {
		return nil, err
	}
	switch {
	case p.kind == callerProducer:
		return nil, errPermission("producer keys may only publish events")
	case p.kind == callerNode && !nodeProcedures[procedure]:
		return nil, errPermission("node tokens may only call %s", switchyardv1connect.DataPlaneServiceName)
	case nodeProcedures[procedure] && p.kind != callerNode && !p.isOperator():
		return nil, errPermission("%s is reserved for data-plane nodes and operators", procedure)
	case operatorOnly[procedure] && !p.isOperator():
		return nil, errPermission("%s is reserved for operators", procedure)
	}
	return p, nil
}

// authenticate resolves an Authorization header to a principal. API keys are
// looked up on every call, so a revoked key is refused at once.
func (s *Server) authenticate(ctx context.Context, header string) (*principal, error) {
	scheme, token, ok := strings.Cut(header, " ")
	token = strings.TrimSpace(token)
	if header == "" {
		return nil, connect.NewError(connect.CodeUnauthenticated, errors.New(msgMissingToken))
	}
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return nil, errUnauthenticated()
	}
	if s.isOperatorToken(token) {
		return &principal{kind: callerOperator}, nil
	}
	if s.isNodeToken(token) {
		return &principal{kind: callerNode}, nil
	}
	keyID, hash, err := apikey.Parse(token)
	if err != nil {
		return nil, errUnauthenticated()
	}
	rec, err := s.store.GetAPIKeyRecord(ctx, keyID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errUnauthenticated()
	}
	if err != nil {
		return nil, s.storeError(ctx, err, "api key", keyID)
	}
	if !apikey.Equal(rec.SecretHash, hash) {
		return nil, errUnauthenticated()
	}
	key := rec.Key
	now := time.Now()
	if key.GetRevokeTime() != nil || (key.GetExpireTime() != nil && !now.Before(key.GetExpireTime().AsTime())) {
		s.log.DebugContext(ctx, "refused revoked or expired key", slog.String("key_id", keyID))
		return nil, errUnauthenticated()
	}
	p := &principal{tenantID: key.GetTenantId(), keyID: key.GetId()}
	switch key.GetRole() {
	case v1.ApiKeyRole_API_KEY_ROLE_ADMIN:
		p.kind = callerTenantAdmin
	case v1.ApiKeyRole_API_KEY_ROLE_PRODUCER:
		p.kind = callerProducer
	default:
		return nil, errUnauthenticated()
	}
	return p, nil
}

// isOperatorToken compares token with the operator token in constant time
// (hashing both first, so not even the length leaks).
func (s *Server) isOperatorToken(token string) bool {
	got := sha256.Sum256([]byte(token))
	return subtle.ConstantTimeCompare(got[:], s.operatorHash[:]) == 1
}

// isNodeToken compares token with the node token, if one is configured, in
// constant time.
func (s *Server) isNodeToken(token string) bool {
	if !s.hasNodeToken {
		return false
	}
	got := sha256.Sum256([]byte(token))
	return subtle.ConstantTimeCompare(got[:], s.nodeHash[:]) == 1
}

// errUnauthenticated is the error of every invalid token.
func errUnauthenticated() *connect.Error {
	return connect.NewError(connect.CodeUnauthenticated, errors.New(msgInvalidToken))
}

// canSeeTenant reports whether p may see objects of tenant tenantID.
func (p *principal) canSeeTenant(tenantID string) bool {
	return p.isOperator() || (p.kind == callerTenantAdmin && p.tenantID == tenantID && tenantID != "")
}

// checkTenant refuses a request naming a tenant that p may not see, with the
// NotFound error of a missing tenant.
func (p *principal) checkTenant(tenantID string) error {
	if !p.canSeeTenant(tenantID) {
		return errNotFound("tenant", tenantID)
	}
	return nil
}
