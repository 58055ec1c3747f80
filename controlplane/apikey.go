package controlplane

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/switchyard-dev/switchyard/controlplane/store"
	"github.com/switchyard-dev/switchyard/internal/apikey"
	"github.com/switchyard-dev/switchyard/internal/ids"
	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
)

// apiKeyService implements switchyardv1connect.ApiKeyServiceHandler.
type apiKeyService struct{ *Server }

// apiKeys describes API keys to the shared plumbing.
func (s *Server) apiKeys() *resource[*v1.ApiKey] {
	return &resource[*v1.ApiKey]{
		kind:     "api key",
		field:    "api_key",
		tenantOf: (*v1.ApiKey).GetTenantId,
		mutable:  []string{"name", "description", "topic_ids", "expire_time"},
		get:      s.store.GetAPIKey,
		update:   s.store.UpdateAPIKey,
		delete:   s.store.DeleteAPIKey,
	}
}

// CreateApiKey creates a key of a tenant and returns its secret token, the
// only time it is shown. Only the hash of the secret is stored.
func (s *apiKeyService) CreateApiKey(ctx context.Context, req *v1.CreateApiKeyRequest) (*v1.CreateApiKeyResponse, error) {
	if err := s.requireTenant(ctx, req.GetTenantId()); err != nil {
		return nil, err
	}
	k := proto.Clone(req.GetApiKey()).(*v1.ApiKey)
	k.Prefix, k.RevokeTime, k.CreateTime, k.UpdateTime, k.Etag = "", nil, nil, nil, ""
	k.TenantId = req.GetTenantId()
	if err := s.checkAPIKey(ctx, req, nil, k); err != nil {
		return nil, err
	}
	k.Id = ids.New(ids.APIKey)
	token, hash, err := apikey.Generate(k.Id)
	if err != nil {
		return nil, s.internalError(ctx, "generating an API key", err)
	}
	k.Prefix = apikey.Prefix(token)
	created, err := s.store.CreateAPIKey(ctx, principalFrom(ctx).actor(), k, hash)
	if err != nil {
		return nil, s.storeError(ctx, err, "api key", "")
	}
	if created.GetId() != k.Id {
		// The token names the key by id; a key stored under another id could
		// never authenticate.
		return nil, s.internalError(ctx, "storing an API key",
			fmt.Errorf("store assigned id %s instead of %s", created.GetId(), k.Id))
	}
	return &v1.CreateApiKeyResponse{ApiKey: created, Secret: token}, nil
}

// GetApiKey returns a key of the caller's tenant, without its secret.
func (s *apiKeyService) GetApiKey(ctx context.Context, req *v1.GetApiKeyRequest) (*v1.GetApiKeyResponse, error) {
	k, err := s.apiKeys().fetch(ctx, s.Server, req.GetId())
	if err != nil {
		return nil, err
	}
	return &v1.GetApiKeyResponse{ApiKey: k}, nil
}

// ListApiKeys lists a tenant's keys.
func (s *apiKeyService) ListApiKeys(ctx context.Context, req *v1.ListApiKeysRequest) (*v1.ListApiKeysResponse, error) {
	if err := s.requireTenant(ctx, req.GetTenantId()); err != nil {
		return nil, err
	}
	items, next, err := listPage(ctx, s.Server, req, listQuery{kind: ids.APIKey, tenantID: req.GetTenantId()}, s.store.ListAPIKeys)
	if err != nil {
		return nil, err
	}
	return &v1.ListApiKeysResponse{ApiKeys: items, NextPageToken: next}, nil
}

// UpdateApiKey changes a key's name, description, topics or expiry.
func (s *apiKeyService) UpdateApiKey(ctx context.Context, req *v1.UpdateApiKeyRequest) (*v1.UpdateApiKeyResponse, error) {
	k, err := updateObject(ctx, s.Server, s.apiKeys(), req, req.GetApiKey(), req.GetUpdateMask(),
		func(current, merged *v1.ApiKey) error {
			return s.checkAPIKey(ctx, req, current, merged)
		})
	if err != nil {
		return nil, err
	}
	return &v1.UpdateApiKeyResponse{ApiKey: k}, nil
}

// RevokeApiKey makes a key unusable at once.
func (s *apiKeyService) RevokeApiKey(ctx context.Context, req *v1.RevokeApiKeyRequest) (*v1.RevokeApiKeyResponse, error) {
	if _, err := s.apiKeys().fetch(ctx, s.Server, req.GetId()); err != nil {
		return nil, err
	}
	k, err := s.store.RevokeAPIKey(ctx, principalFrom(ctx).actor(), req.GetId())
	if err != nil {
		return nil, s.storeError(ctx, err, "api key", req.GetId())
	}
	return &v1.RevokeApiKeyResponse{ApiKey: k}, nil
}

// DeleteApiKey deletes a key.
func (s *apiKeyService) DeleteApiKey(ctx context.Context, req *v1.DeleteApiKeyRequest) (*v1.DeleteApiKeyResponse, error) {
	if err := deleteObject(ctx, s.Server, s.apiKeys(), req.GetId(), req.GetEtag(), false); err != nil {
		return nil, err
	}
	return &v1.DeleteApiKeyResponse{}, nil
}

// checkAPIKey checks what protovalidate cannot: topic_ids only on producer
// keys and naming topics of the key's tenant, and a new expiry in the
// future. current is nil on create.
func (s *Server) checkAPIKey(ctx context.Context, req proto.Message, current, k *v1.ApiKey) error {
	md := req.ProtoReflect().Descriptor()
	var vs violations
	if len(k.GetTopicIds()) > 0 && k.GetRole() != v1.ApiKeyRole_API_KEY_ROLE_PRODUCER {
		vs.add(fieldPath(md, "api_key", "topic_ids"), "api_key.topic_ids.producer_only", "topic_ids applies to producer keys only")
	}
	for i, id := range k.GetTopicIds() {
		if current != nil && slices.Contains(current.GetTopicIds(), id) {
			continue
		}
		t, err := s.store.GetTopic(ctx, id)
		if errors.Is(err, store.ErrNotFound) || (err == nil && t.GetTenantId() != k.GetTenantId()) {
			vs.add(fieldPath(md, "api_key", "topic_ids", i), "api_key.topic_ids.exist",
				fmt.Sprintf("topic %q not found in tenant %s", id, k.GetTenantId()))
			continue
		}
		if err != nil {
			return s.storeError(ctx, err, "topic", id)
		}
	}
	if exp := k.GetExpireTime(); exp != nil && !proto.Equal(exp, current.GetExpireTime()) && !exp.AsTime().After(time.Now()) {
		vs.add(fieldPath(md, "api_key", "expire_time"), "api_key.expire_time.future", "expire_time must be in the future")
	}
	return vs.err()
}
