package sdk_test

import (
	"strings"
	"testing"

	"buf.build/go/protovalidate"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
)

// TestEveryRuleCompiles builds the validator for every message of the API, so
// a rule that does not compile (a CEL typo, a bad pattern) fails here rather
// than at the first request that reaches it.
func TestEveryRuleCompiles(t *testing.T) {
	t.Parallel()
	var msgs []protoreflect.MessageType
	protoregistry.GlobalTypes.RangeMessages(func(mt protoreflect.MessageType) bool {
		if strings.HasPrefix(string(mt.Descriptor().FullName()), "switchyard.v1.") {
			msgs = append(msgs, mt)
		}
		return true
	})
	require.Greater(t, len(msgs), 50, "the API's messages must be registered")
	v, err := protovalidate.New(protovalidate.WithMessageDescriptors(func() []protoreflect.MessageDescriptor {
		out := make([]protoreflect.MessageDescriptor, len(msgs))
		for i, mt := range msgs {
			out[i] = mt.Descriptor()
		}
		return out
	}()...), protovalidate.WithDisableLazy())
	require.NoError(t, err)
	for _, mt := range msgs {
		// The zero value of most requests is invalid; what matters is that
		// validation runs without a compilation or runtime error.
		err := v.Validate(mt.New().Interface())
		var verr *protovalidate.ValidationError
		if err != nil {
			require.ErrorAs(t, err, &verr, "%s: %v", mt.Descriptor().FullName(), err)
		}
	}
}

// TestRules checks representative rules of the contract: what is accepted and
// which field a refusal names.
func TestRules(t *testing.T) {
	t.Parallel()
	v, err := protovalidate.New()
	require.NoError(t, err)
	const tenant = "ten_01jq3v6x0m8y2c4r5t7w9z1b3d"
	const topic = "top_01jq3v6x0m8y2c4r5t7w9z1b3d"
	cases := []struct {
		name  string
		msg   proto.Message
		json  string
		field string // empty: valid; "-": a rule of the request as a whole
	}{
		{"tenant ok", &v1.CreateTenantRequest{}, `{"tenant":{"name":"acme-prod"}}`, ""},
		{"tenant name required", &v1.CreateTenantRequest{}, `{"tenant":{"displayName":"x"}}`, "tenant"},
		{"tenant bad slug", &v1.CreateTenantRequest{}, `{"tenant":{"name":"Acme_Prod"}}`, "tenant.name"},
		{"tenant slug trailing dash", &v1.CreateTenantRequest{}, `{"tenant":{"name":"acme-"}}`, "tenant.name"},
		{"tenant payload quota too big", &v1.CreateTenantRequest{}, `{"tenant":{"name":"a","quotas":{"maxEventBytes":2000000}}}`, "tenant.quotas.max_event_bytes"},
		{"update needs id", &v1.UpdateTenantRequest{}, `{"tenant":{"displayName":"x"}}`, "tenant"},
		{"region needs brokers", &v1.CreateRegionRequest{}, `{"region":{"name":"eu"}}`, "region"},
		{"region bad broker", &v1.CreateRegionRequest{}, `{"region":{"name":"eu","kafkaBrokers":["no port"]}}`, "region.kafka_brokers[0]"},
		{"topic bad retention", &v1.CreateTopicRequest{}, `{"tenantId":"` + tenant + `","topic":{"name":"orders","retention":"60s"}}`, "topic.retention"},
		{"topic bad tenant id", &v1.CreateTopicRequest{}, `{"tenantId":"acme","topic":{"name":"orders"}}`, "tenant_id"},
		{"pipeline ok", &v1.CreatePipelineRequest{}, `{"tenantId":"` + tenant + `","pipeline":{"name":"p","topicId":"` + topic + `",
			"destinations":[{"name":"hook","webhook":{"url":"https://example.com/hook"}}],
			"retryPolicy":{"maxAttempts":5,"initialBackoff":"1s","maxBackoff":"60s","multiplier":2},
			"ordering":"ORDERING_MODE_KEY"}}`, ""},
		{"pipeline needs destination", &v1.CreatePipelineRequest{}, `{"tenantId":"` + tenant + `","pipeline":{"name":"p","topicId":"` + topic + `"}}`, "pipeline"},
		{"destination needs kind", &v1.CreatePipelineRequest{}, `{"tenantId":"` + tenant + `","pipeline":{"name":"p","topicId":"` + topic + `","destinations":[{"name":"d"}]}}`, "pipeline.destinations[0].kind"},
		{"duplicate destination names", &v1.CreatePipelineRequest{}, `{"tenantId":"` + tenant + `","pipeline":{"name":"p","topicId":"` + topic + `",
			"destinations":[{"name":"d","kafka":{"topic":"a"}},{"name":"d","kafka":{"topic":"b"}}]}}`, "pipeline.destinations"},
		{"webhook ftp scheme", &v1.CreatePipelineRequest{}, `{"tenantId":"` + tenant + `","pipeline":{"name":"p","topicId":"` + topic + `",
			"destinations":[{"name":"d","webhook":{"url":"ftp://example.com/x"}}]}}`, "pipeline.destinations[0].webhook.url"},
		{"backoff order", &v1.CreatePipelineRequest{}, `{"tenantId":"` + tenant + `","pipeline":{"name":"p","topicId":"` + topic + `",
			"destinations":[{"name":"d","kafka":{"topic":"a"}}],"retryPolicy":{"initialBackoff":"10s","maxBackoff":"1s"}}}`, "pipeline.retry_policy"},
		{"multiplier below one", &v1.CreatePipelineRequest{}, `{"tenantId":"` + tenant + `","pipeline":{"name":"p","topicId":"` + topic + `",
			"destinations":[{"name":"d","kafka":{"topic":"a"}}],"retryPolicy":{"multiplier":0.5}}}`, "pipeline.retry_policy.multiplier"},
		{"bad signing secret", &v1.CreatePipelineRequest{}, `{"tenantId":"` + tenant + `","pipeline":{"name":"p","topicId":"` + topic + `",
			"destinations":[{"name":"d","webhook":{"url":"https://e.com","signingSecret":"secret"}}]}}`, "pipeline.destinations[0].webhook.signing_secret"},
		{"key role required", &v1.CreateApiKeyRequest{}, `{"tenantId":"` + tenant + `","apiKey":{"name":"k"}}`, "api_key"},
		{"topic scope only for producers", &v1.CreateApiKeyRequest{}, `{"tenantId":"` + tenant + `","apiKey":{"name":"k","role":"API_KEY_ROLE_ADMIN","topicIds":["` + topic + `"]}}`, "-"},
		{"publish needs events", &v1.PublishRequest{}, `{"topic":"orders"}`, "events"},
		{"event extension name", &v1.PublishRequest{}, `{"topic":"orders","events":[{"source":"s","type":"t","extensions":{"Bad-Name":"x"}}]}`, `events[0].extensions["Bad-Name"]`},
		{"replay needs both bounds", &v1.ReplayEventsRequest{}, `{"pipelineId":"pip_01jq3v6x0m8y2c4r5t7w9z1b3d","timeRange":{"startTime":"2026-01-01T00:00:00Z"}}`, "time_range"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			msg := tc.msg.ProtoReflect().New().Interface()
			require.NoError(t, protojson.Unmarshal([]byte(tc.json), msg))
			err := v.Validate(msg)
			if tc.field == "" {
				require.NoError(t, err)
				return
			}
			var verr *protovalidate.ValidationError
			require.ErrorAs(t, err, &verr)
			var fields []string
			for _, viol := range verr.Violations {
				fields = append(fields, protovalidate.FieldPathString(viol.Proto.GetField()))
			}
			want := tc.field
			if want == "-" {
				want = ""
			}
			require.Contains(t, fields, want, "violations: %v", err)
		})
	}
}
