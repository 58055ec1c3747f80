package controlplane

import (
	"context"
	"errors"

	"google.golang.org/protobuf/proto"

	"github.com/switchyard-dev/switchyard/controlplane/store"
	"github.com/switchyard-dev/switchyard/internal/ids"
	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
)

// regionService implements switchyardv1connect.RegionServiceHandler.
type regionService struct{ *Server }

// regions describes regions to the shared plumbing. Regions are global:
// every authenticated caller may read them.
func (s *Server) regions() *resource[*v1.Region] {
	return &resource[*v1.Region]{
		kind:    "region",
		field:   "region",
		mutable: []string{"display_name", "kafka_brokers", "status", "failover_region_id"},
		get:     s.store.GetRegion,
		update:  s.store.UpdateRegion,
		delete:  s.store.DeleteRegion,
	}
}

// CreateRegion creates a region, ACTIVE unless told otherwise.
func (s *regionService) CreateRegion(ctx context.Context, req *v1.CreateRegionRequest) (*v1.CreateRegionResponse, error) {
	r := proto.Clone(req.GetRegion()).(*v1.Region)
	r.Id, r.CreateTime, r.UpdateTime, r.Etag = "", nil, nil, ""
	applyRegionDefaults(r)
	if err := s.checkFailover(ctx, req, nil, r); err != nil {
		return nil, err
	}
	created, err := s.store.CreateRegion(ctx, principalFrom(ctx).actor(), r)
	if err != nil {
		return nil, s.storeError(ctx, err, "region", "")
	}
	return &v1.CreateRegionResponse{Region: created}, nil
}

// GetRegion returns a region.
func (s *regionService) GetRegion(ctx context.Context, req *v1.GetRegionRequest) (*v1.GetRegionResponse, error) {
	r, err := s.regions().fetch(ctx, s.Server, req.GetId())
	if err != nil {
		return nil, err
	}
	return &v1.GetRegionResponse{Region: r}, nil
}

// ListRegions lists regions.
func (s *regionService) ListRegions(ctx context.Context, req *v1.ListRegionsRequest) (*v1.ListRegionsResponse, error) {
	items, next, err := listPage(ctx, s.Server, req, listQuery{kind: ids.Region}, s.store.ListRegions)
	if err != nil {
		return nil, err
	}
	return &v1.ListRegionsResponse{Regions: items, NextPageToken: next}, nil
}

// UpdateRegion changes a region.
func (s *regionService) UpdateRegion(ctx context.Context, req *v1.UpdateRegionRequest) (*v1.UpdateRegionResponse, error) {
	r, err := updateObject(ctx, s.Server, s.regions(), req, req.GetRegion(), req.GetUpdateMask(),
		func(current, merged *v1.Region) error {
			applyRegionDefaults(merged)
			return s.checkFailover(ctx, req, current, merged)
		})
	if err != nil {
		return nil, err
	}
	return &v1.UpdateRegionResponse{Region: r}, nil
}

// DeleteRegion deletes a region that no topic uses.
func (s *regionService) DeleteRegion(ctx context.Context, req *v1.DeleteRegionRequest) (*v1.DeleteRegionResponse, error) {
	if err := deleteObject(ctx, s.Server, s.regions(), req.GetId(), req.GetEtag(), false); err != nil {
		return nil, err
	}
	return &v1.DeleteRegionResponse{}, nil
}

// applyRegionDefaults makes a region's status explicit.
func applyRegionDefaults(r *v1.Region) {
	if r.Status == v1.RegionStatus_REGION_STATUS_UNSPECIFIED {
		r.Status = v1.RegionStatus_REGION_STATUS_ACTIVE
	}
}

// checkFailover checks that a new or changed failover region exists.
func (s *Server) checkFailover(ctx context.Context, req proto.Message, current, r *v1.Region) error {
	id := r.GetFailoverRegionId()
	if id == "" || (current != nil && current.GetFailoverRegionId() == id) {
		return nil
	}
	ok, err := s.regionExists(ctx, id)
	if err != nil {
		return err
	}
	if !ok {
		var vs violations
		vs.add(fieldPath(req.ProtoReflect().Descriptor(), "region", "failover_region_id"),
			"region.failover_region_id.exists", "region "+id+" does not exist")
		return vs.err()
	}
	return nil
}

// regionExists reports whether region id exists.
func (s *Server) regionExists(ctx context.Context, id string) (bool, error) {
	_, err := s.store.GetRegion(ctx, id)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, store.ErrNotFound):
		return false, nil
	default:
		return false, s.storeError(ctx, err, "region", id)
	}
}
