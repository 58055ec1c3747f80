package controlplane

import (
	"context"
	"errors"

	"google.golang.org/protobuf/proto"

	"github.com/switchyard-dev/switchyard/controlplane/store"
	"github.com/switchyard-dev/switchyard/internal/ids"
	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
)

// Tenant defaults.
const (
	defaultEventsPerSecond = 1000
	defaultMaxEventBytes   = 256 << 10
	defaultRetentionDays   = 30
)

// tenantService implements switchyardv1connect.TenantServiceHandler.
type tenantService struct{ *Server }

// tenants describes tenants to the shared plumbing. A tenant is owned by
// itself.
func (s *Server) tenants() *resource[*v1.Tenant] {
	return &resource[*v1.Tenant]{
		kind:     "tenant",
		field:    "tenant",
		tenantOf: (*v1.Tenant).GetId,
		mutable:  []string{"display_name", "quotas", "retention", "default_region_id"},
		get:      s.store.GetTenant,
		update:   s.store.UpdateTenant,
		delete:   s.store.DeleteTenant,
	}
}

// CreateTenant creates a tenant with explicit quotas and retention.
func (s *tenantService) CreateTenant(ctx context.Context, req *v1.CreateTenantRequest) (*v1.CreateTenantResponse, error) {
	t := proto.Clone(req.GetTenant()).(*v1.Tenant)
	t.Id, t.CreateTime, t.UpdateTime, t.Etag = "", nil, nil, ""
	applyTenantDefaults(t)
	if err := s.checkTenantRefs(ctx, req, nil, t); err != nil {
		return nil, err
	}
	created, err := s.store.CreateTenant(ctx, principalFrom(ctx).actor(), t)
	if err != nil {
		return nil, s.storeError(ctx, err, "tenant", "")
	}
	return &v1.CreateTenantResponse{Tenant: created}, nil
}

// GetTenant returns a tenant the caller may see.
func (s *tenantService) GetTenant(ctx context.Context, req *v1.GetTenantRequest) (*v1.GetTenantResponse, error) {
	t, err := s.tenants().fetch(ctx, s.Server, req.GetId())
	if err != nil {
		return nil, err
	}
	return &v1.GetTenantResponse{Tenant: t}, nil
}

// ListTenants lists every tenant to operators and its own to a tenant admin.
func (s *tenantService) ListTenants(ctx context.Context, req *v1.ListTenantsRequest) (*v1.ListTenantsResponse, error) {
	p := principalFrom(ctx)
	q := listQuery{kind: ids.Tenant}
	list := s.store.ListTenants
	if !p.isOperator() {
		q.tenantID = p.tenantID
		list = func(ctx context.Context, lp store.ListParams) ([]*v1.Tenant, error) {
			if lp.AfterID >= p.tenantID {
				return nil, nil
			}
			t, err := s.store.GetTenant(ctx, p.tenantID)
			if errors.Is(err, store.ErrNotFound) {
				return nil, nil
			}
			if err != nil {
				return nil, err
			}
			return []*v1.Tenant{t}, nil
		}
	}
	items, next, err := listPage(ctx, s.Server, req, q, list)
	if err != nil {
		return nil, err
	}
	return &v1.ListTenantsResponse{Tenants: items, NextPageToken: next}, nil
}

// UpdateTenant changes a tenant. Only operators may change quotas.
func (s *tenantService) UpdateTenant(ctx context.Context, req *v1.UpdateTenantRequest) (*v1.UpdateTenantResponse, error) {
	t, err := updateObject(ctx, s.Server, s.tenants(), req, req.GetTenant(), req.GetUpdateMask(),
		func(current, merged *v1.Tenant) error {
			applyTenantDefaults(merged)
			if !principalFrom(ctx).isOperator() && !proto.Equal(current.GetQuotas(), merged.GetQuotas()) {
				return errPermission("changing a tenant's quotas is reserved for operators")
			}
			return s.checkTenantRefs(ctx, req, current, merged)
		})
	if err != nil {
		return nil, err
	}
	return &v1.UpdateTenantResponse{Tenant: t}, nil
}

// DeleteTenant deletes a tenant.
func (s *tenantService) DeleteTenant(ctx context.Context, req *v1.DeleteTenantRequest) (*v1.DeleteTenantResponse, error) {
	if err := deleteObject(ctx, s.Server, s.tenants(), req.GetId(), req.GetEtag(), req.GetForce()); err != nil {
		return nil, err
	}
	return &v1.DeleteTenantResponse{}, nil
}

// applyTenantDefaults makes a tenant's quotas and retention explicit.
func applyTenantDefaults(t *v1.Tenant) {
	if t.Quotas == nil {
		t.Quotas = &v1.TenantQuotas{}
	}
	q := t.Quotas
	if q.EventsPerSecond == 0 {
		q.EventsPerSecond = defaultEventsPerSecond
	}
	if q.Burst == 0 {
		q.Burst = q.EventsPerSecond
	}
	if q.MaxEventBytes == 0 {
		q.MaxEventBytes = defaultMaxEventBytes
	}
	if t.Retention == nil {
		t.Retention = &v1.RetentionPolicy{}
	}
	if t.Retention.Days == 0 {
		t.Retention.Days = defaultRetentionDays
	}
}

// checkTenantRefs checks that a new or changed default region exists.
// current is nil on create.
func (s *Server) checkTenantRefs(ctx context.Context, req proto.Message, current, t *v1.Tenant) error {
	id := t.GetDefaultRegionId()
	if id == "" || (current != nil && current.GetDefaultRegionId() == id) {
		return nil
	}
	ok, err := s.regionExists(ctx, id)
	if err != nil {
		return err
	}
	if !ok {
		var vs violations
		vs.add(fieldPath(req.ProtoReflect().Descriptor(), "tenant", "default_region_id"),
			"tenant.default_region_id.exists", "region "+id+" does not exist")
		return vs.err()
	}
	return nil
}

// requireTenant checks that the caller may see tenant id and that it
// exists; both failures are the same NotFound.
func (s *Server) requireTenant(ctx context.Context, id string) error {
	if err := principalFrom(ctx).checkTenant(id); err != nil {
		return err
	}
	if _, err := s.store.GetTenant(ctx, id); err != nil {
		return s.storeError(ctx, err, "tenant", id)
	}
	return nil
}
