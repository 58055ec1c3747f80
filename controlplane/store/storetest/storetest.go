// Package storetest is the suite every store.Store implementation must pass.
//
// An implementation's test calls Run with a constructor that returns an
// empty store of its own for each call; every subtest runs in parallel on
// its own store.
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/switchyard-dev/switchyard/controlplane/store"
	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
)

// Run runs every test of the suite against stores made by newStore. Each
// call of newStore must return an empty store not shared with other calls.
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"TenantCRUD", testTenantCRUD},
		{"TenantUnsetMessages", testTenantUnsetMessages},
		{"TenantDuplicateName", testTenantDuplicateName},
		{"TenantStaleVersion", testTenantStaleVersion},
		{"TenantMissingRegion", testTenantMissingRegion},
		{"TenantDeleteForce", testTenantDeleteForce},
		{"RegionCRUD", testRegionCRUD},
		{"RegionDuplicateAndStale", testRegionDuplicateAndStale},
		{"RegionInUse", testRegionInUse},
		{"TopicCRUD", testTopicCRUD},
		{"TopicRegionDefault", testTopicRegionDefault},
		{"TopicDuplicateName", testTopicDuplicateName},
		{"TopicPartitionsGrowOnly", testTopicPartitionsGrowOnly},
		{"TopicDeleteForce", testTopicDeleteForce},
		{"PipelineCRUD", testPipelineCRUD},
		{"PipelineDuplicateName", testPipelineDuplicateName},
		{"PipelineTopicOfOtherTenant", testPipelineTopicOfOtherTenant},
		{"PipelineStaleVersion", testPipelineStaleVersion},
		{"PipelineConcurrentUpdate", testPipelineConcurrentUpdate},
		{"PipelinePause", testPipelinePause},
		{"PipelineSecretsNeverReturned", testPipelineSecretsNeverReturned},
		{"PipelineSecretRotation", testPipelineSecretRotation},
		{"PipelineUpdateSecrets", testPipelineUpdateSecrets},
		{"APIKeyCRUD", testAPIKeyCRUD},
		{"APIKeyGivenID", testAPIKeyGivenID},
		{"APIKeyDuplicateName", testAPIKeyDuplicateName},
		{"APIKeyRevokeIdempotent", testAPIKeyRevokeIdempotent},
		{"APIKeyTopicsOfOtherTenant", testAPIKeyTopicsOfOtherTenant},
		{"Pagination", testPagination},
		{"TenantScoping", testTenantScoping},
		{"Audit", testAudit},
		{"ConfigVersion", testConfigVersion},
		{"NodeRegister", testNodeRegister},
		{"NodeHeartbeat", testNodeHeartbeat},
		{"NodeRegionDeleted", testNodeRegionDeleted},
		{"SnapshotEmpty", testSnapshotEmpty},
		{"SnapshotContents", testSnapshotContents},
		{"SnapshotConsistent", testSnapshotConsistent},
		{"WaitConfigVersion", testWaitConfigVersion},
		{"OperationLifecycle", testOperationLifecycle},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newStore(t))
		})
	}
}

// Actors used by the suite.
var (
	operator = store.Actor{Kind: store.ActorOperator, ID: "ops@example.com"}
	adminKey = store.Actor{Kind: store.ActorAPIKey, ID: "key_0000000000000000000000test"}
)

func ctx(t *testing.T) context.Context { return t.Context() }

func version(t *testing.T, etag string) int64 {
	t.Helper()
	v, err := strconv.ParseInt(etag, 10, 64)
	require.NoError(t, err, "etag %q", etag)
	return v
}

// newSecret returns a fresh "whsec_" secret.
func newSecret(t *testing.T) string {
	t.Helper()
	b := make([]byte, 24)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return "whsec_" + base64.StdEncoding.EncodeToString(b)
}

func mkTenant(t *testing.T, s store.Store, name string) *v1.Tenant {
	t.Helper()
	tn, err := s.CreateTenant(ctx(t), operator, &v1.Tenant{Name: name, DisplayName: "Tenant " + name})
	require.NoError(t, err)
	return tn
}

func mkRegion(t *testing.T, s store.Store, name string) *v1.Region {
	t.Helper()
	r, err := s.CreateRegion(ctx(t), operator, &v1.Region{Name: name, KafkaBrokers: []string{name + ".kafka:9092"}})
	require.NoError(t, err)
	return r
}

func mkTopic(t *testing.T, s store.Store, tenantID, name string) *v1.Topic {
	t.Helper()
	tp, err := s.CreateTopic(ctx(t), operator, &v1.Topic{TenantId: tenantID, Name: name})
	require.NoError(t, err)
	return tp
}

func webhook(name, url string) *v1.Destination {
	return &v1.Destination{Name: name, Kind: &v1.Destination_Webhook{Webhook: &v1.WebhookDestination{Url: url}}}
}

func kafkaDest(name, topic string) *v1.Destination {
	return &v1.Destination{Name: name, Kind: &v1.Destination_Kafka{Kafka: &v1.KafkaDestination{Topic: topic}}}
}

// mkPipeline creates a pipeline with one webhook destination "hook" and
// returns it with the hook's secret.
func mkPipeline(t *testing.T, s store.Store, tenantID, topicID, name string) (*v1.Pipeline, string) {
	t.Helper()
	secret := newSecret(t)
	p, err := s.CreatePipeline(ctx(t), operator, &v1.Pipeline{
		TenantId:     tenantID,
		TopicId:      topicID,
		Name:         name,
		Destinations: []*v1.Destination{webhook("hook", "https://example.com/"+name)},
	}, []store.WebhookSecret{{Destination: "hook", Secret: secret}})
	require.NoError(t, err)
	return p, secret
}

func mkAPIKey(t *testing.T, s store.Store, tenantID, name string) *v1.ApiKey {
	t.Helper()
	k, err := s.CreateAPIKey(ctx(t), operator, &v1.ApiKey{
		TenantId: tenantID, Name: name, Role: v1.ApiKeyRole_API_KEY_ROLE_ADMIN, Prefix: "sy_" + name[:min(4, len(name))],
	}, []byte("hash-of-"+name))
	require.NoError(t, err)
	return k
}
