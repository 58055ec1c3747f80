package switchyard

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
)

// MaxUpdateAttempts bounds the read-modify-write rounds of an Update that
// keeps meeting a concurrent change ([ErrConflict]).
const MaxUpdateAttempts = 5

// listPageSize is the page size of List calls.
const listPageSize = 200

// A DeleteOption qualifies a Delete call.
type DeleteOption interface {
	applyDelete(*deleteConfig)
}

type deleteConfig struct {
	etag  string
	force bool
}

type deleteOptionFunc func(*deleteConfig)

func (f deleteOptionFunc) applyDelete(c *deleteConfig) { f(c) }

// IfMatch makes a delete conditional: it fails with [ErrConflict] unless the
// object's etag is still etag.
func IfMatch(etag string) DeleteOption {
	return deleteOptionFunc(func(c *deleteConfig) { c.etag = etag })
}

// Force deletes a tenant or a topic together with what depends on it
// (ignored by the other kinds).
func Force() DeleteOption {
	return deleteOptionFunc(func(c *deleteConfig) { c.force = true })
}

func deleteOptions(opts []DeleteOption) deleteConfig {
	var c deleteConfig
	for _, o := range opts {
		o.applyDelete(&c)
	}
	return c
}

// pages iterates over the items of every page fetch returns, stopping at the
// first error (yielded with a nil item).
func pages[T any](ctx context.Context, fetch func(ctx context.Context, token string) ([]T, string, error)) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		token := ""
		for {
			items, next, err := fetch(ctx, token)
			if err != nil {
				var zero T
				yield(zero, err)
				return
			}
			for _, it := range items {
				if !yield(it, nil) {
					return
				}
			}
			if next == "" {
				return
			}
			token = next
		}
	}
}

// readModifyWrite gets an object, lets mutate change a copy of it and writes
// it back conditionally on the etag it read, starting over on a conflict, at
// most MaxUpdateAttempts times.
func readModifyWrite[T proto.Message](ctx context.Context, get func(context.Context) (T, error),
	put func(context.Context, T) (T, error), mutate func(T) error) (T, error) {
	var zero T
	var err error
	for range MaxUpdateAttempts {
		var cur T
		cur, err = get(ctx)
		if err != nil {
			return zero, err
		}
		next := proto.Clone(cur).(T)
		if err := mutate(next); err != nil {
			return zero, err
		}
		var out T
		out, err = put(ctx, next)
		if err == nil {
			return out, nil
		}
		if !errors.Is(err, ErrConflict) {
			return zero, err
		}
	}
	return zero, fmt.Errorf("switchyard: gave up after %d conflicting updates: %w", MaxUpdateAttempts, err)
}

// Tenants returns the tenant admin client.
func (c *Client) Tenants() *Tenants { return &Tenants{c: c} }

// Tenants manages tenants: creating and deleting them is for operators;
// a tenant admin key reads and updates its own.
type Tenants struct{ c *Client }

// Create creates a tenant.
func (a *Tenants) Create(ctx context.Context, t *v1.Tenant) (*v1.Tenant, error) {
	res, err := call(ctx, a.c, "CreateTenant", false, func(ctx context.Context) (*v1.CreateTenantResponse, error) {
		return a.c.tenants.CreateTenant(ctx, &v1.CreateTenantRequest{Tenant: t})
	})
	return res.GetTenant(), err
}

// Get returns a tenant by id.
func (a *Tenants) Get(ctx context.Context, id string) (*v1.Tenant, error) {
	res, err := call(ctx, a.c, "GetTenant", true, func(ctx context.Context) (*v1.GetTenantResponse, error) {
		return a.c.tenants.GetTenant(ctx, &v1.GetTenantRequest{Id: id})
	})
	return res.GetTenant(), err
}

// Update reads a tenant, applies mutate to it and writes every mutable field
// back, conditionally on the etag read; on [ErrConflict] it starts over (at
// most [MaxUpdateAttempts] times). An error of mutate is returned as is.
func (a *Tenants) Update(ctx context.Context, id string, mutate func(*v1.Tenant) error) (*v1.Tenant, error) {
	return readModifyWrite(ctx, func(ctx context.Context) (*v1.Tenant, error) { return a.Get(ctx, id) },
		func(ctx context.Context, t *v1.Tenant) (*v1.Tenant, error) {
			res, err := call(ctx, a.c, "UpdateTenant", false, func(ctx context.Context) (*v1.UpdateTenantResponse, error) {
				return a.c.tenants.UpdateTenant(ctx, &v1.UpdateTenantRequest{Tenant: t})
			})
			return res.GetTenant(), err
		}, mutate)
}

// Delete deletes a tenant; with [Force], its topics, pipelines and keys too.
func (a *Tenants) Delete(ctx context.Context, id string, opts ...DeleteOption) error {
	o := deleteOptions(opts)
	_, err := call(ctx, a.c, "DeleteTenant", false, func(ctx context.Context) (*v1.DeleteTenantResponse, error) {
		return a.c.tenants.DeleteTenant(ctx, &v1.DeleteTenantRequest{Id: id, Etag: o.etag, Force: o.force})
	})
	return err
}

// List iterates over the tenants the caller may see, page by page.
func (a *Tenants) List(ctx context.Context) iter.Seq2[*v1.Tenant, error] {
	return pages(ctx, func(ctx context.Context, token string) ([]*v1.Tenant, string, error) {
		res, err := call(ctx, a.c, "ListTenants", true, func(ctx context.Context) (*v1.ListTenantsResponse, error) {
			return a.c.tenants.ListTenants(ctx, &v1.ListTenantsRequest{PageSize: listPageSize, PageToken: token})
		})
		return res.GetTenants(), res.GetNextPageToken(), err
	})
}

// Regions returns the region admin client.
func (c *Client) Regions() *Regions { return &Regions{c: c} }

// Regions manages regions (the Kafka clusters topics live on): changes are
// for operators, tenant admins read.
type Regions struct{ c *Client }

// Create creates a region.
func (a *Regions) Create(ctx context.Context, r *v1.Region) (*v1.Region, error) {
	res, err := call(ctx, a.c, "CreateRegion", false, func(ctx context.Context) (*v1.CreateRegionResponse, error) {
		return a.c.regions.CreateRegion(ctx, &v1.CreateRegionRequest{Region: r})
	})
	return res.GetRegion(), err
}

// Get returns a region by id.
func (a *Regions) Get(ctx context.Context, id string) (*v1.Region, error) {
	res, err := call(ctx, a.c, "GetRegion", true, func(ctx context.Context) (*v1.GetRegionResponse, error) {
		return a.c.regions.GetRegion(ctx, &v1.GetRegionRequest{Id: id})
	})
	return res.GetRegion(), err
}

// Update is the read-modify-write of a region; see [Tenants.Update].
func (a *Regions) Update(ctx context.Context, id string, mutate func(*v1.Region) error) (*v1.Region, error) {
	return readModifyWrite(ctx, func(ctx context.Context) (*v1.Region, error) { return a.Get(ctx, id) },
		func(ctx context.Context, r *v1.Region) (*v1.Region, error) {
			res, err := call(ctx, a.c, "UpdateRegion", false, func(ctx context.Context) (*v1.UpdateRegionResponse, error) {
				return a.c.regions.UpdateRegion(ctx, &v1.UpdateRegionRequest{Region: r})
			})
			return res.GetRegion(), err
		}, mutate)
}

// Delete deletes a region.
func (a *Regions) Delete(ctx context.Context, id string, opts ...DeleteOption) error {
	o := deleteOptions(opts)
	_, err := call(ctx, a.c, "DeleteRegion", false, func(ctx context.Context) (*v1.DeleteRegionResponse, error) {
		return a.c.regions.DeleteRegion(ctx, &v1.DeleteRegionRequest{Id: id, Etag: o.etag})
	})
	return err
}

// List iterates over the regions, page by page.
func (a *Regions) List(ctx context.Context) iter.Seq2[*v1.Region, error] {
	return pages(ctx, func(ctx context.Context, token string) ([]*v1.Region, string, error) {
		res, err := call(ctx, a.c, "ListRegions", true, func(ctx context.Context) (*v1.ListRegionsResponse, error) {
			return a.c.regions.ListRegions(ctx, &v1.ListRegionsRequest{PageSize: listPageSize, PageToken: token})
		})
		return res.GetRegions(), res.GetNextPageToken(), err
	})
}

// Topics returns the topic admin client.
func (c *Client) Topics() *Topics { return &Topics{c: c} }

// Topics manages the topics of tenants.
type Topics struct{ c *Client }

// Create creates a topic of a tenant.
func (a *Topics) Create(ctx context.Context, tenantID string, t *v1.Topic) (*v1.Topic, error) {
	res, err := call(ctx, a.c, "CreateTopic", false, func(ctx context.Context) (*v1.CreateTopicResponse, error) {
		return a.c.topics.CreateTopic(ctx, &v1.CreateTopicRequest{TenantId: tenantID, Topic: t})
	})
	return res.GetTopic(), err
}

// Get returns a topic by id.
func (a *Topics) Get(ctx context.Context, id string) (*v1.Topic, error) {
	res, err := call(ctx, a.c, "GetTopic", true, func(ctx context.Context) (*v1.GetTopicResponse, error) {
		return a.c.topics.GetTopic(ctx, &v1.GetTopicRequest{Id: id})
	})
	return res.GetTopic(), err
}

// Update is the read-modify-write of a topic; see [Tenants.Update].
func (a *Topics) Update(ctx context.Context, id string, mutate func(*v1.Topic) error) (*v1.Topic, error) {
	return readModifyWrite(ctx, func(ctx context.Context) (*v1.Topic, error) { return a.Get(ctx, id) },
		func(ctx context.Context, t *v1.Topic) (*v1.Topic, error) {
			res, err := call(ctx, a.c, "UpdateTopic", false, func(ctx context.Context) (*v1.UpdateTopicResponse, error) {
				return a.c.topics.UpdateTopic(ctx, &v1.UpdateTopicRequest{Topic: t})
			})
			return res.GetTopic(), err
		}, mutate)
}

// Delete deletes a topic; with [Force], even while pipelines read it.
func (a *Topics) Delete(ctx context.Context, id string, opts ...DeleteOption) error {
	o := deleteOptions(opts)
	_, err := call(ctx, a.c, "DeleteTopic", false, func(ctx context.Context) (*v1.DeleteTopicResponse, error) {
		return a.c.topics.DeleteTopic(ctx, &v1.DeleteTopicRequest{Id: id, Etag: o.etag, Force: o.force})
	})
	return err
}

// List iterates over a tenant's topics, page by page.
func (a *Topics) List(ctx context.Context, tenantID string) iter.Seq2[*v1.Topic, error] {
	return pages(ctx, func(ctx context.Context, token string) ([]*v1.Topic, string, error) {
		res, err := call(ctx, a.c, "ListTopics", true, func(ctx context.Context) (*v1.ListTopicsResponse, error) {
			return a.c.topics.ListTopics(ctx, &v1.ListTopicsRequest{TenantId: tenantID, PageSize: listPageSize, PageToken: token})
		})
		return res.GetTopics(), res.GetNextPageToken(), err
	})
}

// Pipelines returns the pipeline admin client.
func (c *Client) Pipelines() *Pipelines { return &Pipelines{c: c} }

// Pipelines manages the pipelines of tenants.
type Pipelines struct{ c *Client }

// Create creates a pipeline of a tenant. The webhook destinations of the
// pipeline returned carry their signing secrets: the only time they are
// shown.
func (a *Pipelines) Create(ctx context.Context, tenantID string, p *v1.Pipeline) (*v1.Pipeline, error) {
	res, err := call(ctx, a.c, "CreatePipeline", false, func(ctx context.Context) (*v1.CreatePipelineResponse, error) {
		return a.c.pipelines.CreatePipeline(ctx, &v1.CreatePipelineRequest{TenantId: tenantID, Pipeline: p})
	})
	return res.GetPipeline(), err
}

// Get returns a pipeline by id.
func (a *Pipelines) Get(ctx context.Context, id string) (*v1.Pipeline, error) {
	res, err := call(ctx, a.c, "GetPipeline", true, func(ctx context.Context) (*v1.GetPipelineResponse, error) {
		return a.c.pipelines.GetPipeline(ctx, &v1.GetPipelineRequest{Id: id})
	})
	return res.GetPipeline(), err
}

// Update is the read-modify-write of a pipeline; see [Tenants.Update].
func (a *Pipelines) Update(ctx context.Context, id string, mutate func(*v1.Pipeline) error) (*v1.Pipeline, error) {
	return readModifyWrite(ctx, func(ctx context.Context) (*v1.Pipeline, error) { return a.Get(ctx, id) },
		func(ctx context.Context, p *v1.Pipeline) (*v1.Pipeline, error) {
			res, err := call(ctx, a.c, "UpdatePipeline", false, func(ctx context.Context) (*v1.UpdatePipelineResponse, error) {
				return a.c.pipelines.UpdatePipeline(ctx, &v1.UpdatePipelineRequest{Pipeline: p})
			})
			return res.GetPipeline(), err
		}, mutate)
}

// Delete deletes a pipeline.
func (a *Pipelines) Delete(ctx context.Context, id string, opts ...DeleteOption) error {
	o := deleteOptions(opts)
	_, err := call(ctx, a.c, "DeletePipeline", false, func(ctx context.Context) (*v1.DeletePipelineResponse, error) {
		return a.c.pipelines.DeletePipeline(ctx, &v1.DeletePipelineRequest{Id: id, Etag: o.etag})
	})
	return err
}

// List iterates over a tenant's pipelines, page by page.
func (a *Pipelines) List(ctx context.Context, tenantID string) iter.Seq2[*v1.Pipeline, error] {
	return pages(ctx, func(ctx context.Context, token string) ([]*v1.Pipeline, string, error) {
		res, err := call(ctx, a.c, "ListPipelines", true, func(ctx context.Context) (*v1.ListPipelinesResponse, error) {
			return a.c.pipelines.ListPipelines(ctx, &v1.ListPipelinesRequest{TenantId: tenantID, PageSize: listPageSize, PageToken: token})
		})
		return res.GetPipelines(), res.GetNextPageToken(), err
	})
}

// Pause stops a pipeline's deliveries; events wait in Kafka.
func (a *Pipelines) Pause(ctx context.Context, id string) (*v1.Pipeline, error) {
	res, err := call(ctx, a.c, "PausePipeline", true, func(ctx context.Context) (*v1.PausePipelineResponse, error) {
		return a.c.pipelines.PausePipeline(ctx, &v1.PausePipelineRequest{Id: id})
	})
	return res.GetPipeline(), err
}

// Resume restarts a paused pipeline.
func (a *Pipelines) Resume(ctx context.Context, id string) (*v1.Pipeline, error) {
	res, err := call(ctx, a.c, "ResumePipeline", true, func(ctx context.Context) (*v1.ResumePipelineResponse, error) {
		return a.c.pipelines.ResumePipeline(ctx, &v1.ResumePipelineRequest{Id: id})
	})
	return res.GetPipeline(), err
}

// RotateWebhookSecret gives a webhook destination a new signing secret;
// for overlap, requests are signed with the new and the previous one.
func (a *Pipelines) RotateWebhookSecret(ctx context.Context, pipelineID, destination string, overlap time.Duration) (*v1.RotateWebhookSecretResponse, error) {
	return call(ctx, a.c, "RotateWebhookSecret", false, func(ctx context.Context) (*v1.RotateWebhookSecretResponse, error) {
		return a.c.pipelines.RotateWebhookSecret(ctx, &v1.RotateWebhookSecretRequest{
			PipelineId: pipelineID, Destination: destination, Overlap: durationpb.New(overlap)})
	})
}

// APIKeys returns the API key admin client.
func (c *Client) APIKeys() *APIKeys { return &APIKeys{c: c} }

// APIKeys manages the API keys of tenants.
type APIKeys struct{ c *Client }

// Create creates a key of a tenant and returns it with its secret
// ("sy_<id>_<secret>"): the only time the secret is shown.
func (a *APIKeys) Create(ctx context.Context, tenantID string, k *v1.ApiKey) (*v1.ApiKey, string, error) {
	res, err := call(ctx, a.c, "CreateApiKey", false, func(ctx context.Context) (*v1.CreateApiKeyResponse, error) {
		return a.c.apiKeys.CreateApiKey(ctx, &v1.CreateApiKeyRequest{TenantId: tenantID, ApiKey: k})
	})
	return res.GetApiKey(), res.GetSecret(), err
}

// Get returns a key by id (without its secret).
func (a *APIKeys) Get(ctx context.Context, id string) (*v1.ApiKey, error) {
	res, err := call(ctx, a.c, "GetApiKey", true, func(ctx context.Context) (*v1.GetApiKeyResponse, error) {
		return a.c.apiKeys.GetApiKey(ctx, &v1.GetApiKeyRequest{Id: id})
	})
	return res.GetApiKey(), err
}

// Update is the read-modify-write of a key; see [Tenants.Update].
func (a *APIKeys) Update(ctx context.Context, id string, mutate func(*v1.ApiKey) error) (*v1.ApiKey, error) {
	return readModifyWrite(ctx, func(ctx context.Context) (*v1.ApiKey, error) { return a.Get(ctx, id) },
		func(ctx context.Context, k *v1.ApiKey) (*v1.ApiKey, error) {
			res, err := call(ctx, a.c, "UpdateApiKey", false, func(ctx context.Context) (*v1.UpdateApiKeyResponse, error) {
				return a.c.apiKeys.UpdateApiKey(ctx, &v1.UpdateApiKeyRequest{ApiKey: k})
			})
			return res.GetApiKey(), err
		}, mutate)
}

// Revoke refuses a key from now on; it is kept for audit.
func (a *APIKeys) Revoke(ctx context.Context, id string) (*v1.ApiKey, error) {
	res, err := call(ctx, a.c, "RevokeApiKey", true, func(ctx context.Context) (*v1.RevokeApiKeyResponse, error) {
		return a.c.apiKeys.RevokeApiKey(ctx, &v1.RevokeApiKeyRequest{Id: id})
	})
	return res.GetApiKey(), err
}

// Delete deletes a key.
func (a *APIKeys) Delete(ctx context.Context, id string, opts ...DeleteOption) error {
	o := deleteOptions(opts)
	_, err := call(ctx, a.c, "DeleteApiKey", false, func(ctx context.Context) (*v1.DeleteApiKeyResponse, error) {
		return a.c.apiKeys.DeleteApiKey(ctx, &v1.DeleteApiKeyRequest{Id: id, Etag: o.etag})
	})
	return err
}

// List iterates over a tenant's keys, page by page.
func (a *APIKeys) List(ctx context.Context, tenantID string) iter.Seq2[*v1.ApiKey, error] {
	return pages(ctx, func(ctx context.Context, token string) ([]*v1.ApiKey, string, error) {
		res, err := call(ctx, a.c, "ListApiKeys", true, func(ctx context.Context) (*v1.ListApiKeysResponse, error) {
			return a.c.apiKeys.ListApiKeys(ctx, &v1.ListApiKeysRequest{TenantId: tenantID, PageSize: listPageSize, PageToken: token})
		})
		return res.GetApiKeys(), res.GetNextPageToken(), err
	})
}
