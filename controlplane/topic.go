package controlplane

import (
	"context"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/switchyard-dev/switchyard/controlplane/store"
	"github.com/switchyard-dev/switchyard/internal/ids"
	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
)

// Topic defaults.
const (
	defaultPartitions     = 8
	defaultTopicRetention = 7 * 24 * time.Hour
)

// topicService implements switchyardv1connect.TopicServiceHandler.
type topicService struct{ *Server }

// topics describes topics to the shared plumbing.
func (s *Server) topics() *resource[*v1.Topic] {
	return &resource[*v1.Topic]{
		kind:     "topic",
		field:    "topic",
		tenantOf: (*v1.Topic).GetTenantId,
		mutable:  []string{"description", "partitions", "retention"},
		get:      s.store.GetTopic,
		update:   s.store.UpdateTopic,
		delete:   s.store.DeleteTopic,
	}
}

// CreateTopic creates a topic in its home region: the one named, else the
// tenant's default region, else the only region.
func (s *topicService) CreateTopic(ctx context.Context, req *v1.CreateTopicRequest) (*v1.CreateTopicResponse, error) {
	if err := s.requireTenant(ctx, req.GetTenantId()); err != nil {
		return nil, err
	}
	t := proto.Clone(req.GetTopic()).(*v1.Topic)
	t.Id, t.KafkaTopic, t.CreateTime, t.UpdateTime, t.Etag = "", "", nil, nil, ""
	t.TenantId = req.GetTenantId()
	region, err := s.resolveRegion(ctx, req, t)
	if err != nil {
		return nil, err
	}
	t.RegionId = region
	applyTopicDefaults(nil, t)
	created, err := s.store.CreateTopic(ctx, principalFrom(ctx).actor(), t)
	if err != nil {
		return nil, s.storeError(ctx, err, "topic", "")
	}
	return &v1.CreateTopicResponse{Topic: created}, nil
}

// GetTopic returns a topic of the caller's tenant.
func (s *topicService) GetTopic(ctx context.Context, req *v1.GetTopicRequest) (*v1.GetTopicResponse, error) {
	t, err := s.topics().fetch(ctx, s.Server, req.GetId())
	if err != nil {
		return nil, err
	}
	return &v1.GetTopicResponse{Topic: t}, nil
}

// ListTopics lists a tenant's topics.
func (s *topicService) ListTopics(ctx context.Context, req *v1.ListTopicsRequest) (*v1.ListTopicsResponse, error) {
	if err := s.requireTenant(ctx, req.GetTenantId()); err != nil {
		return nil, err
	}
	items, next, err := listPage(ctx, s.Server, req, listQuery{kind: ids.Topic, tenantID: req.GetTenantId()}, s.store.ListTopics)
	if err != nil {
		return nil, err
	}
	return &v1.ListTopicsResponse{Topics: items, NextPageToken: next}, nil
}

// UpdateTopic changes a topic; partitions can grow, never shrink.
func (s *topicService) UpdateTopic(ctx context.Context, req *v1.UpdateTopicRequest) (*v1.UpdateTopicResponse, error) {
	t, err := updateObject(ctx, s.Server, s.topics(), req, req.GetTopic(), req.GetUpdateMask(),
		func(current, merged *v1.Topic) error {
			applyTopicDefaults(current, merged)
			if merged.GetPartitions() < current.GetPartitions() {
				var vs violations
				vs.add(fieldPath(req.ProtoReflect().Descriptor(), "topic", "partitions"),
					"topic.partitions.grow_only", "partitions can grow, never shrink")
				return vs.err()
			}
			return nil
		})
	if err != nil {
		return nil, err
	}
	return &v1.UpdateTopicResponse{Topic: t}, nil
}

// DeleteTopic deletes a topic.
func (s *topicService) DeleteTopic(ctx context.Context, req *v1.DeleteTopicRequest) (*v1.DeleteTopicResponse, error) {
	if err := deleteObject(ctx, s.Server, s.topics(), req.GetId(), req.GetEtag(), req.GetForce()); err != nil {
		return nil, err
	}
	return &v1.DeleteTopicResponse{}, nil
}

// applyTopicDefaults makes partitions and retention explicit. On update
// (current set) zero partitions keep the current count.
func applyTopicDefaults(current, t *v1.Topic) {
	if t.Partitions == 0 {
		t.Partitions = defaultPartitions
		if current != nil {
			t.Partitions = current.GetPartitions()
		}
	}
	if t.Retention == nil {
		t.Retention = durationpb.New(defaultTopicRetention)
	}
}

// resolveRegion returns the home region of a new topic.
func (s *Server) resolveRegion(ctx context.Context, req *v1.CreateTopicRequest, t *v1.Topic) (string, error) {
	path := fieldPath(req.ProtoReflect().Descriptor(), "topic", "region_id")
	var vs violations
	if id := t.GetRegionId(); id != "" {
		ok, err := s.regionExists(ctx, id)
		if err != nil {
			return "", err
		}
		if !ok {
			vs.add(path, "topic.region_id.exists", "region "+id+" does not exist")
			return "", vs.err()
		}
		return id, nil
	}
	tenant, err := s.store.GetTenant(ctx, t.GetTenantId())
	if err != nil {
		return "", s.storeError(ctx, err, "tenant", t.GetTenantId())
	}
	if id := tenant.GetDefaultRegionId(); id != "" {
		return id, nil
	}
	regions, err := s.store.ListRegions(ctx, store.ListParams{Limit: 2})
	if err != nil {
		return "", s.storeError(ctx, err, "region", "")
	}
	if len(regions) == 1 {
		return regions[0].GetId(), nil
	}
	msg := "region_id is required: the tenant has no default region and there is not exactly one region"
	if len(regions) == 0 {
		msg = "region_id is required: no region exists yet"
	}
	vs.add(path, "topic.region_id.required", msg)
	return "", vs.err()
}
