package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/switchyard-dev/switchyard/internal/apikey"
	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
	"github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1/switchyardv1connect"
)

// devObjects are what bootstrapDev made or found.
type devObjects struct {
	RegionID    string
	TenantID    string
	TopicID     string
	ProducerKey string
}

// bootstrapDev makes sure, through the control plane's API, that the dev
// region (with brokers), tenant, topic and a producer key exist; the key is
// kept at keyPath (mode 0600) and reused while it is valid.
func bootstrapDev(ctx context.Context, baseURL, token string, brokers []string, keyPath string) (devObjects, error) {
	var objs devObjects
	httpClient := &http.Client{Timeout: 10 * time.Second}
	auth := connect.WithInterceptors(bearer(token))
	regions := switchyardv1connect.NewRegionServiceClient(httpClient, baseURL, auth)
	tenants := switchyardv1connect.NewTenantServiceClient(httpClient, baseURL, auth)
	topics := switchyardv1connect.NewTopicServiceClient(httpClient, baseURL, auth)
	keys := switchyardv1connect.NewApiKeyServiceClient(httpClient, baseURL, auth)

	// The region, its brokers kept current (an embedded Kafka may listen
	// on other ports at each start).
	region, err := findRegion(ctx, regions, devRegionName)
	if err != nil {
		return objs, err
	}
	switch {
	case region == nil:
		res, err := regions.CreateRegion(ctx, &v1.CreateRegionRequest{Region: &v1.Region{
			Name: devRegionName, DisplayName: "Local (switchyard dev)", KafkaBrokers: brokers,
		}})
		if err != nil {
			return objs, fmt.Errorf("creating region %q: %w", devRegionName, err)
		}
		region = res.GetRegion()
	case !slices.Equal(region.GetKafkaBrokers(), brokers):
		res, err := regions.UpdateRegion(ctx, &v1.UpdateRegionRequest{
			Region:     &v1.Region{Id: region.GetId(), KafkaBrokers: brokers},
			UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"kafka_brokers"}},
		})
		if err != nil {
			return objs, fmt.Errorf("updating the brokers of region %q: %w", devRegionName, err)
		}
		region = res.GetRegion()
	}
	objs.RegionID = region.GetId()

	tenant, err := findTenant(ctx, tenants, devTenantName)
	if err != nil {
		return objs, err
	}
	if tenant == nil {
		res, err := tenants.CreateTenant(ctx, &v1.CreateTenantRequest{Tenant: &v1.Tenant{
			Name: devTenantName, DisplayName: "Development", DefaultRegionId: objs.RegionID,
		}})
		if err != nil {
			return objs, fmt.Errorf("creating tenant %q: %w", devTenantName, err)
		}
		tenant = res.GetTenant()
	}
	objs.TenantID = tenant.GetId()

	topic, err := findTopic(ctx, topics, objs.TenantID, devTopicName)
	if err != nil {
		return objs, err
	}
	if topic == nil {
		res, err := topics.CreateTopic(ctx, &v1.CreateTopicRequest{TenantId: objs.TenantID, Topic: &v1.Topic{
			Name: devTopicName, RegionId: objs.RegionID, Description: "created by switchyard dev",
		}})
		if err != nil {
			return objs, fmt.Errorf("creating topic %q: %w", devTopicName, err)
		}
		topic = res.GetTopic()
	}
	objs.TopicID = topic.GetId()

	objs.ProducerKey, err = ensureProducerKey(ctx, keys, objs.TenantID, keyPath)
	return objs, err
}

// ensureProducerKey returns the producer key kept at path if the control
// plane still knows it as a valid key of the tenant, else creates one and
// keeps it there.
func ensureProducerKey(ctx context.Context, keys switchyardv1connect.ApiKeyServiceClient, tenantID, path string) (string, error) {
	if b, err := os.ReadFile(path); err == nil {
		token := strings.TrimSpace(string(b))
		if id, _, err := apikey.Parse(token); err == nil {
			res, err := keys.GetApiKey(ctx, &v1.GetApiKeyRequest{Id: id})
			switch {
			case err == nil:
				k := res.GetApiKey()
				expired := k.GetExpireTime() != nil && k.GetExpireTime().AsTime().Before(time.Now())
				if k.GetTenantId() == tenantID && k.GetRevokeTime() == nil && !expired {
					return token, nil
				}
			case connect.CodeOf(err) != connect.CodeNotFound:
				return "", fmt.Errorf("checking the dev producer key: %w", err)
			}
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("reading the dev producer key: %w", err)
	}
	res, err := keys.CreateApiKey(ctx, &v1.CreateApiKeyRequest{TenantId: tenantID, ApiKey: &v1.ApiKey{
		Name: devKeyName + "-" + time.Now().UTC().Format("20060102-150405"), Role: v1.ApiKeyRole_API_KEY_ROLE_PRODUCER,
	}})
	if err != nil {
		return "", fmt.Errorf("creating a producer key: %w", err)
	}
	if err := writeSecretFile(path, res.GetSecret(), os.O_TRUNC); err != nil {
		return "", err
	}
	return res.GetSecret(), nil
}

// bearer adds an Authorization header to every unary call.
func bearer(token string) connect.UnaryInterceptorFunc {
	return func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			req.Header().Set("Authorization", "Bearer "+token)
			return next(ctx, req)
		}
	}
}

// findRegion returns the region named name, or nil.
func findRegion(ctx context.Context, c switchyardv1connect.RegionServiceClient, name string) (*v1.Region, error) {
	token := ""
	for {
		res, err := c.ListRegions(ctx, &v1.ListRegionsRequest{PageSize: 1000, PageToken: token})
		if err != nil {
			return nil, fmt.Errorf("listing regions: %w", err)
		}
		for _, r := range res.GetRegions() {
			if r.GetName() == name {
				return r, nil
			}
		}
		if token = res.GetNextPageToken(); token == "" {
			return nil, nil
		}
	}
}

// findTenant returns the tenant named name, or nil.
func findTenant(ctx context.Context, c switchyardv1connect.TenantServiceClient, name string) (*v1.Tenant, error) {
	token := ""
	for {
		res, err := c.ListTenants(ctx, &v1.ListTenantsRequest{PageSize: 1000, PageToken: token})
		if err != nil {
			return nil, fmt.Errorf("listing tenants: %w", err)
		}
		for _, t := range res.GetTenants() {
			if t.GetName() == name {
				return t, nil
			}
		}
		if token = res.GetNextPageToken(); token == "" {
			return nil, nil
		}
	}
}

// findTopic returns the tenant's topic named name, or nil.
func findTopic(ctx context.Context, c switchyardv1connect.TopicServiceClient, tenantID, name string) (*v1.Topic, error) {
	token := ""
	for {
		res, err := c.ListTopics(ctx, &v1.ListTopicsRequest{TenantId: tenantID, PageSize: 1000, PageToken: token})
		if err != nil {
			return nil, fmt.Errorf("listing topics: %w", err)
		}
		for _, t := range res.GetTopics() {
			if t.GetName() == name {
				return t, nil
			}
		}
		if token = res.GetNextPageToken(); token == "" {
			return nil, nil
		}
	}
}
