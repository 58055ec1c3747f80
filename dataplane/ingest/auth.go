package ingest

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"

	"connectrpc.com/connect"

	"github.com/switchyard-dev/switchyard/dataplane/snapshot"
	"github.com/switchyard-dev/switchyard/internal/apikey"
	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
)

// Messages of authentication failures. One message covers every invalid
// token, whether or not its key id exists, so keys cannot be probed.
const (
	msgMissingToken = "missing bearer token in the Authorization header"
	msgInvalidToken = "invalid credentials"
	msgInternal     = "internal error"
)

// principal is the authenticated caller of a request: an API key.
type principal struct {
	keyID    string
	tenantID string
	role     v1.ApiKeyRole
	// topicIDs limits a producer key to these topics; empty means all.
	topicIDs []string
}

// mayPublish reports whether p may publish to the topic topicID of its
// tenant.
func (p *principal) mayPublish(topicID string) bool {
	if p.role == v1.ApiKeyRole_API_KEY_ROLE_ADMIN || len(p.topicIDs) == 0 {
		return true
	}
	return slices.Contains(p.topicIDs, topicID)
}

// authenticate resolves an Authorization header to a principal with the keys
// of the current snapshot: the key must exist (revoked keys are not in the
// snapshot), its secret must match, it must not have expired, and its role
// must be producer or tenant admin.
func (s *Service) authenticate(snap *snapshot.Snapshot, header string) (*principal, *connect.Error) {
	if header == "" {
		return nil, connect.NewError(connect.CodeUnauthenticated, errors.New(msgMissingToken))
	}
	scheme, token, ok := strings.Cut(header, " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return nil, errUnauthenticated()
	}
	keyID, hash, err := apikey.Parse(token)
	if err != nil {
		return nil, errUnauthenticated()
	}
	cred, ok := snap.APIKey(keyID)
	if !ok || !apikey.Equal(cred.GetSecretHash(), hash) {
		return nil, errUnauthenticated()
	}
	if exp := cred.GetExpireTime(); exp != nil && !s.now().Before(exp.AsTime()) {
		return nil, errUnauthenticated()
	}
	switch cred.GetRole() {
	case v1.ApiKeyRole_API_KEY_ROLE_PRODUCER, v1.ApiKeyRole_API_KEY_ROLE_ADMIN:
	default:
		return nil, errUnauthenticated()
	}
	if cred.GetTenantId() == "" {
		return nil, errUnauthenticated()
	}
	return &principal{
		keyID:    cred.GetId(),
		tenantID: cred.GetTenantId(),
		role:     cred.GetRole(),
		topicIDs: cred.GetTopicIds(),
	}, nil
}

// errUnauthenticated is the error of every invalid token.
func errUnauthenticated() *connect.Error {
	return connect.NewError(connect.CodeUnauthenticated, errors.New(msgInvalidToken))
}

// call is what the authentication middleware learns about an RPC before its
// body is read.
type call struct {
	principal *principal
	trace     traceContext
}

// callKey is the context key of a call.
type callKey struct{}

// callFrom returns the call the middleware put in ctx, or nil.
func callFrom(ctx context.Context) *call {
	c, _ := ctx.Value(callKey{}).(*call)
	return c
}

// authenticateRPC authenticates an RPC from its headers before anything
// reads its body, answering an invalid caller at once in the protocol it
// speaks (Connect, gRPC or gRPC-Web). A valid caller's body is bounded by
// its tenant's payload quota.
func (s *Service) authenticateRPC(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		snap := s.snapshots.Current()
		p, cerr := s.authenticate(snap, r.Header.Get("Authorization"))
		if cerr != nil {
			s.metrics.add(resultUnauthorized, 1)
			_ = s.errWriter.Write(w, r, cerr)
			return
		}
		q := quotasOf(snap, p.tenantID)
		r.Body = http.MaxBytesReader(w, r.Body, s.maxBodyBytes(q.maxEventBytes, s.maxBatch))
		ctx := context.WithValue(r.Context(), callKey{}, &call{principal: p, trace: traceFrom(r.Header)})
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}
