package controlplane

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/switchyard-dev/switchyard/controlplane/ledger"
	"github.com/switchyard-dev/switchyard/controlplane/store"

	"github.com/switchyard-dev/switchyard/internal/acklog"
	"github.com/switchyard-dev/switchyard/internal/apikey"
	"github.com/switchyard-dev/switchyard/internal/ids"
	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
)

// callerKind of the auth matrix: who calls, on whose objects.
type matrixCaller int

const (
	asNone       matrixCaller = iota // no Authorization header
	asGarbage                        // a token that is not one
	asUnknownKey                     // a well-formed token of no key
	asOperator                       // the operator, on tenant A
	asAdminOwn                       // tenant A's admin, on A's objects
	asAdminOther                     // tenant A's admin, on B's objects
	asProducer                       // tenant A's producer, on A's objects
	asRevoked                        // a revoked admin key of A, on A's objects
	asNode                           // the node token
	numCallers
)

var callerNames = [numCallers]string{"none", "garbage", "unknown-key", "operator", "admin-own", "admin-other", "producer", "revoked", "node"}

// Codes of the matrix.
const (
	ok  = connect.Code(0)
	unA = connect.CodeUnauthenticated
	pd  = connect.CodePermissionDenied
	nf  = connect.CodeNotFound
)

// authMatrix is the expected code of every RPC for every caller, in the
// order of matrixCaller.
var authMatrix = map[string][numCallers]connect.Code{
	"/switchyard.v1.TenantService/CreateTenant": {unA, unA, unA, ok, pd, pd, pd, unA, pd},
	"/switchyard.v1.TenantService/GetTenant":    {unA, unA, unA, ok, ok, nf, pd, unA, pd},
	"/switchyard.v1.TenantService/ListTenants":  {unA, unA, unA, ok, ok, ok, pd, unA, pd},
	"/switchyard.v1.TenantService/UpdateTenant": {unA, unA, unA, ok, ok, nf, pd, unA, pd},
	"/switchyard.v1.TenantService/DeleteTenant": {unA, unA, unA, ok, pd, pd, pd, unA, pd},

	"/switchyard.v1.RegionService/CreateRegion": {unA, unA, unA, ok, pd, pd, pd, unA, pd},
	"/switchyard.v1.RegionService/GetRegion":    {unA, unA, unA, ok, ok, ok, pd, unA, pd},
	"/switchyard.v1.RegionService/ListRegions":  {unA, unA, unA, ok, ok, ok, pd, unA, pd},
	"/switchyard.v1.RegionService/UpdateRegion": {unA, unA, unA, ok, pd, pd, pd, unA, pd},
	"/switchyard.v1.RegionService/DeleteRegion": {unA, unA, unA, ok, pd, pd, pd, unA, pd},

	"/switchyard.v1.TopicService/CreateTopic": {unA, unA, unA, ok, ok, nf, pd, unA, pd},
	"/switchyard.v1.TopicService/GetTopic":    {unA, unA, unA, ok, ok, nf, pd, unA, pd},
	"/switchyard.v1.TopicService/ListTopics":  {unA, unA, unA, ok, ok, nf, pd, unA, pd},
	"/switchyard.v1.TopicService/UpdateTopic": {unA, unA, unA, ok, ok, nf, pd, unA, pd},
	"/switchyard.v1.TopicService/DeleteTopic": {unA, unA, unA, ok, ok, nf, pd, unA, pd},

	"/switchyard.v1.PipelineService/CreatePipeline":      {unA, unA, unA, ok, ok, nf, pd, unA, pd},
	"/switchyard.v1.PipelineService/GetPipeline":         {unA, unA, unA, ok, ok, nf, pd, unA, pd},
	"/switchyard.v1.PipelineService/ListPipelines":       {unA, unA, unA, ok, ok, nf, pd, unA, pd},
	"/switchyard.v1.PipelineService/UpdatePipeline":      {unA, unA, unA, ok, ok, nf, pd, unA, pd},
	"/switchyard.v1.PipelineService/DeletePipeline":      {unA, unA, unA, ok, ok, nf, pd, unA, pd},
	"/switchyard.v1.PipelineService/PausePipeline":       {unA, unA, unA, ok, ok, nf, pd, unA, pd},
	"/switchyard.v1.PipelineService/ResumePipeline":      {unA, unA, unA, ok, ok, nf, pd, unA, pd},
	"/switchyard.v1.PipelineService/RotateWebhookSecret": {unA, unA, unA, ok, ok, nf, pd, unA, pd},

	"/switchyard.v1.ApiKeyService/CreateApiKey": {unA, unA, unA, ok, ok, nf, pd, unA, pd},
	"/switchyard.v1.ApiKeyService/GetApiKey":    {unA, unA, unA, ok, ok, nf, pd, unA, pd},
	"/switchyard.v1.ApiKeyService/ListApiKeys":  {unA, unA, unA, ok, ok, nf, pd, unA, pd},
	"/switchyard.v1.ApiKeyService/UpdateApiKey": {unA, unA, unA, ok, ok, nf, pd, unA, pd},
	"/switchyard.v1.ApiKeyService/RevokeApiKey": {unA, unA, unA, ok, ok, nf, pd, unA, pd},
	"/switchyard.v1.ApiKeyService/DeleteApiKey": {unA, unA, unA, ok, ok, nf, pd, unA, pd},

	"/switchyard.v1.DataPlaneService/RegisterNode": {unA, unA, unA, ok, pd, pd, pd, unA, ok},
	"/switchyard.v1.DataPlaneService/Heartbeat":    {unA, unA, unA, ok, pd, pd, pd, unA, ok},
	"/switchyard.v1.DataPlaneService/ListNodes":    {unA, unA, unA, ok, pd, pd, pd, unA, ok},
	"/switchyard.v1.DataPlaneService/WatchConfig":  {unA, unA, unA, ok, pd, pd, pd, unA, ok},

	"/switchyard.v1.EventService/GetEvent":           {unA, unA, unA, ok, ok, nf, pd, unA, pd},
	"/switchyard.v1.EventService/ListEvents":         {unA, unA, unA, ok, ok, nf, pd, unA, pd},
	"/switchyard.v1.EventService/ListDeadLetters":    {unA, unA, unA, ok, ok, nf, pd, unA, pd},
	"/switchyard.v1.EventService/RedriveDeadLetters": {unA, unA, unA, ok, ok, nf, pd, unA, pd},
	"/switchyard.v1.EventService/ReplayEvents":       {unA, unA, unA, ok, ok, nf, pd, unA, pd},
	// A random id: NotFound once the caller may make the call.
	"/switchyard.v1.EventService/GetOperation":    {unA, unA, unA, nf, nf, nf, pd, unA, pd},
	"/switchyard.v1.EventService/CancelOperation": {unA, unA, unA, nf, nf, nf, pd, unA, pd},
}

// matrixWorld is what one RPC's row of the matrix runs against.
type matrixWorld struct {
	b      *testBundle
	region *v1.Region
	// target is the tenant whose objects the call names.
	target *v1.Tenant
}

func (w *matrixWorld) topic(t *testing.T) *v1.Topic {
	return w.b.topic(t, w.target.GetId(), w.region.GetId())
}

func (w *matrixWorld) pipeline(t *testing.T) *v1.Pipeline {
	return w.b.pipeline(t, w.target.GetId(), w.topic(t).GetId())
}

func (w *matrixWorld) key(t *testing.T) *v1.ApiKey {
	k, _ := w.b.key(t, w.target.GetId(), v1.ApiKeyRole_API_KEY_ROLE_PRODUCER)
	return k
}

// node registers a data-plane node as the operator.
func (w *matrixWorld) node(t *testing.T) *v1.Node {
	res, err := w.b.op.dataplane.RegisterNode(t.Context(), &v1.RegisterNodeRequest{
		Region: w.region.GetId(), Hostname: uniqueName("host")})
	require.NoError(t, err)
	return res.GetNode()
}

// rpcCall makes one call of an RPC with c, creating what it needs in w.
type rpcCall func(ctx context.Context, t *testing.T, w *matrixWorld, c *clients) error

// rpcCalls holds a valid call of every RPC of the API services. A server
// stream's call succeeds when its first message arrives.
var rpcCalls = map[string]rpcCall{
	"/switchyard.v1.TenantService/CreateTenant": func(ctx context.Context, t *testing.T, w *matrixWorld, c *clients) error {
		_, err := c.tenants.CreateTenant(ctx, &v1.CreateTenantRequest{Tenant: &v1.Tenant{Name: uniqueName("ten")}})
		return err
	},
	"/switchyard.v1.TenantService/GetTenant": func(ctx context.Context, t *testing.T, w *matrixWorld, c *clients) error {
		_, err := c.tenants.GetTenant(ctx, &v1.GetTenantRequest{Id: w.target.GetId()})
		return err
	},
	"/switchyard.v1.TenantService/ListTenants": func(ctx context.Context, t *testing.T, w *matrixWorld, c *clients) error {
		_, err := c.tenants.ListTenants(ctx, &v1.ListTenantsRequest{})
		return err
	},
	"/switchyard.v1.TenantService/UpdateTenant": func(ctx context.Context, t *testing.T, w *matrixWorld, c *clients) error {
		_, err := c.tenants.UpdateTenant(ctx, &v1.UpdateTenantRequest{
			Tenant: &v1.Tenant{Id: w.target.GetId(), DisplayName: "x"}, UpdateMask: mask("display_name")})
		return err
	},
	"/switchyard.v1.TenantService/DeleteTenant": func(ctx context.Context, t *testing.T, w *matrixWorld, c *clients) error {
		_, err := c.tenants.DeleteTenant(ctx, &v1.DeleteTenantRequest{Id: w.target.GetId(), Force: true})
		return err
	},
	"/switchyard.v1.RegionService/CreateRegion": func(ctx context.Context, t *testing.T, w *matrixWorld, c *clients) error {
		_, err := c.regions.CreateRegion(ctx, &v1.CreateRegionRequest{Region: &v1.Region{Name: uniqueName("reg"), KafkaBrokers: []string{"k:9092"}}})
		return err
	},
	"/switchyard.v1.RegionService/GetRegion": func(ctx context.Context, t *testing.T, w *matrixWorld, c *clients) error {
		_, err := c.regions.GetRegion(ctx, &v1.GetRegionRequest{Id: w.region.GetId()})
		return err
	},
	"/switchyard.v1.RegionService/ListRegions": func(ctx context.Context, t *testing.T, w *matrixWorld, c *clients) error {
		_, err := c.regions.ListRegions(ctx, &v1.ListRegionsRequest{})
		return err
	},
	"/switchyard.v1.RegionService/UpdateRegion": func(ctx context.Context, t *testing.T, w *matrixWorld, c *clients) error {
		_, err := c.regions.UpdateRegion(ctx, &v1.UpdateRegionRequest{
			Region: &v1.Region{Id: w.b.region(t).GetId(), DisplayName: "x"}, UpdateMask: mask("display_name")})
		return err
	},
	"/switchyard.v1.RegionService/DeleteRegion": func(ctx context.Context, t *testing.T, w *matrixWorld, c *clients) error {
		_, err := c.regions.DeleteRegion(ctx, &v1.DeleteRegionRequest{Id: w.b.region(t).GetId()})
		return err
	},
	"/switchyard.v1.TopicService/CreateTopic": func(ctx context.Context, t *testing.T, w *matrixWorld, c *clients) error {
		_, err := c.topics.CreateTopic(ctx, &v1.CreateTopicRequest{TenantId: w.target.GetId(),
			Topic: &v1.Topic{Name: uniqueName("top"), RegionId: w.region.GetId()}})
		return err
	},
	"/switchyard.v1.TopicService/GetTopic": func(ctx context.Context, t *testing.T, w *matrixWorld, c *clients) error {
		_, err := c.topics.GetTopic(ctx, &v1.GetTopicRequest{Id: w.topic(t).GetId()})
		return err
	},
	"/switchyard.v1.TopicService/ListTopics": func(ctx context.Context, t *testing.T, w *matrixWorld, c *clients) error {
		_, err := c.topics.ListTopics(ctx, &v1.ListTopicsRequest{TenantId: w.target.GetId()})
		return err
	},
	"/switchyard.v1.TopicService/UpdateTopic": func(ctx context.Context, t *testing.T, w *matrixWorld, c *clients) error {
		_, err := c.topics.UpdateTopic(ctx, &v1.UpdateTopicRequest{
			Topic: &v1.Topic{Id: w.topic(t).GetId(), Description: "x"}, UpdateMask: mask("description")})
		return err
	},
	"/switchyard.v1.TopicService/DeleteTopic": func(ctx context.Context, t *testing.T, w *matrixWorld, c *clients) error {
		_, err := c.topics.DeleteTopic(ctx, &v1.DeleteTopicRequest{Id: w.topic(t).GetId()})
		return err
	},
	"/switchyard.v1.PipelineService/CreatePipeline": func(ctx context.Context, t *testing.T, w *matrixWorld, c *clients) error {
		_, err := c.pipelines.CreatePipeline(ctx, &v1.CreatePipelineRequest{TenantId: w.target.GetId(),
			Pipeline: webhookPipeline(w.topic(t).GetId())})
		return err
	},
	"/switchyard.v1.PipelineService/GetPipeline": func(ctx context.Context, t *testing.T, w *matrixWorld, c *clients) error {
		_, err := c.pipelines.GetPipeline(ctx, &v1.GetPipelineRequest{Id: w.pipeline(t).GetId()})
		return err
	},
	"/switchyard.v1.PipelineService/ListPipelines": func(ctx context.Context, t *testing.T, w *matrixWorld, c *clients) error {
		_, err := c.pipelines.ListPipelines(ctx, &v1.ListPipelinesRequest{TenantId: w.target.GetId()})
		return err
	},
	"/switchyard.v1.PipelineService/UpdatePipeline": func(ctx context.Context, t *testing.T, w *matrixWorld, c *clients) error {
		_, err := c.pipelines.UpdatePipeline(ctx, &v1.UpdatePipelineRequest{
			Pipeline: &v1.Pipeline{Id: w.pipeline(t).GetId(), Description: "x"}, UpdateMask: mask("description")})
		return err
	},
	"/switchyard.v1.PipelineService/DeletePipeline": func(ctx context.Context, t *testing.T, w *matrixWorld, c *clients) error {
		_, err := c.pipelines.DeletePipeline(ctx, &v1.DeletePipelineRequest{Id: w.pipeline(t).GetId()})
		return err
	},
	"/switchyard.v1.PipelineService/PausePipeline": func(ctx context.Context, t *testing.T, w *matrixWorld, c *clients) error {
		_, err := c.pipelines.PausePipeline(ctx, &v1.PausePipelineRequest{Id: w.pipeline(t).GetId()})
		return err
	},
	"/switchyard.v1.PipelineService/ResumePipeline": func(ctx context.Context, t *testing.T, w *matrixWorld, c *clients) error {
		_, err := c.pipelines.ResumePipeline(ctx, &v1.ResumePipelineRequest{Id: w.pipeline(t).GetId()})
		return err
	},
	"/switchyard.v1.PipelineService/RotateWebhookSecret": func(ctx context.Context, t *testing.T, w *matrixWorld, c *clients) error {
		_, err := c.pipelines.RotateWebhookSecret(ctx, &v1.RotateWebhookSecretRequest{PipelineId: w.pipeline(t).GetId(), Destination: "hook"})
		return err
	},
	"/switchyard.v1.ApiKeyService/CreateApiKey": func(ctx context.Context, t *testing.T, w *matrixWorld, c *clients) error {
		_, err := c.keys.CreateApiKey(ctx, &v1.CreateApiKeyRequest{TenantId: w.target.GetId(),
			ApiKey: &v1.ApiKey{Name: uniqueName("key"), Role: v1.ApiKeyRole_API_KEY_ROLE_ADMIN}})
		return err
	},
	"/switchyard.v1.ApiKeyService/GetApiKey": func(ctx context.Context, t *testing.T, w *matrixWorld, c *clients) error {
		_, err := c.keys.GetApiKey(ctx, &v1.GetApiKeyRequest{Id: w.key(t).GetId()})
		return err
	},
	"/switchyard.v1.ApiKeyService/ListApiKeys": func(ctx context.Context, t *testing.T, w *matrixWorld, c *clients) error {
		_, err := c.keys.ListApiKeys(ctx, &v1.ListApiKeysRequest{TenantId: w.target.GetId()})
		return err
	},
	"/switchyard.v1.ApiKeyService/UpdateApiKey": func(ctx context.Context, t *testing.T, w *matrixWorld, c *clients) error {
		_, err := c.keys.UpdateApiKey(ctx, &v1.UpdateApiKeyRequest{
			ApiKey: &v1.ApiKey{Id: w.key(t).GetId(), Description: "x"}, UpdateMask: mask("description")})
		return err
	},
	"/switchyard.v1.ApiKeyService/RevokeApiKey": func(ctx context.Context, t *testing.T, w *matrixWorld, c *clients) error {
		_, err := c.keys.RevokeApiKey(ctx, &v1.RevokeApiKeyRequest{Id: w.key(t).GetId()})
		return err
	},
	"/switchyard.v1.ApiKeyService/DeleteApiKey": func(ctx context.Context, t *testing.T, w *matrixWorld, c *clients) error {
		_, err := c.keys.DeleteApiKey(ctx, &v1.DeleteApiKeyRequest{Id: w.key(t).GetId()})
		return err
	},
	"/switchyard.v1.DataPlaneService/RegisterNode": func(ctx context.Context, t *testing.T, w *matrixWorld, c *clients) error {
		_, err := c.dataplane.RegisterNode(ctx, &v1.RegisterNodeRequest{Region: w.region.GetName(), Hostname: uniqueName("host")})
		return err
	},
	"/switchyard.v1.DataPlaneService/Heartbeat": func(ctx context.Context, t *testing.T, w *matrixWorld, c *clients) error {
		_, err := c.dataplane.Heartbeat(ctx, &v1.HeartbeatRequest{NodeId: w.node(t).GetId(), ConfigVersion: 1})
		return err
	},
	"/switchyard.v1.DataPlaneService/ListNodes": func(ctx context.Context, t *testing.T, w *matrixWorld, c *clients) error {
		_, err := c.dataplane.ListNodes(ctx, &v1.ListNodesRequest{RegionId: w.region.GetId()})
		return err
	},
	"/switchyard.v1.EventService/GetEvent": func(ctx context.Context, t *testing.T, w *matrixWorld, c *clients) error {
		topicID, eventID := w.event(t)
		_, err := c.events.GetEvent(ctx, &v1.GetEventRequest{TopicId: topicID, EventId: eventID})
		return err
	},
	"/switchyard.v1.EventService/ListEvents": func(ctx context.Context, t *testing.T, w *matrixWorld, c *clients) error {
		_, err := c.events.ListEvents(ctx, &v1.ListEventsRequest{TenantId: w.target.GetId()})
		return err
	},
	"/switchyard.v1.EventService/ListDeadLetters": func(ctx context.Context, t *testing.T, w *matrixWorld, c *clients) error {
		_, err := c.events.ListDeadLetters(ctx, &v1.ListDeadLettersRequest{PipelineId: w.pipeline(t).GetId()})
		return err
	},
	"/switchyard.v1.EventService/RedriveDeadLetters": func(ctx context.Context, t *testing.T, w *matrixWorld, c *clients) error {
		_, err := c.events.RedriveDeadLetters(ctx, &v1.RedriveDeadLettersRequest{PipelineId: w.pipeline(t).GetId(),
			Selector: &v1.RedriveDeadLettersRequest_Reason{Reason: "max_attempts"}})
		return err
	},
	"/switchyard.v1.EventService/ReplayEvents": func(ctx context.Context, t *testing.T, w *matrixWorld, c *clients) error {
		_, err := c.events.ReplayEvents(ctx, &v1.ReplayEventsRequest{PipelineId: w.pipeline(t).GetId(),
			TimeRange: &v1.TimeRange{StartTime: timestamppb.New(time.Now().Add(-time.Hour)), EndTime: timestamppb.Now()}})
		return err
	},
	"/switchyard.v1.EventService/GetOperation": func(ctx context.Context, t *testing.T, w *matrixWorld, c *clients) error {
		_, err := c.events.GetOperation(ctx, &v1.GetOperationRequest{Id: ids.New("op")})
		return err
	},
	"/switchyard.v1.EventService/CancelOperation": func(ctx context.Context, t *testing.T, w *matrixWorld, c *clients) error {
		_, err := c.events.CancelOperation(ctx, &v1.CancelOperationRequest{Id: ids.New("op")})
		return err
	},
	"/switchyard.v1.DataPlaneService/WatchConfig": func(ctx context.Context, t *testing.T, w *matrixWorld, c *clients) error {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		stream, err := c.dataplane.WatchConfig(ctx, &v1.WatchConfigRequest{NodeId: ids.New(ids.Node)})
		if err != nil {
			return err
		}
		defer func() { require.NoError(t, stream.Close()) }()
		if !stream.Receive() {
			require.Error(t, stream.Err(), "a stream must not end without a snapshot or an error")
			return stream.Err()
		}
		require.Positive(t, stream.Msg().GetSnapshot().GetVersion())
		return nil
	},
}

// event writes an event of a topic of w's target to the ledger, with one
// dead-lettered attempt, and returns its topic id and event id.
func (w *matrixWorld) event(t *testing.T) (topicID, eventID string) {
	p := w.pipeline(t)
	eventID = uniqueName("evt")
	origin := "sy.x/0/" + eventID
	_, err := ledger.NewWriter(w.b.pool).Write(t.Context(), []*acklog.Ack{{
		V: acklog.Version, ID: acklog.ID(origin, p.GetId(), "hook", 1), EventID: eventID,
		TenantID: w.target.GetId(), TopicID: p.GetTopicId(), PipelineID: p.GetId(), Destination: "hook",
		Attempt: 1, Outcome: acklog.DeadLettered, Reason: "non_retryable_status", HTTPStatus: 410,
		Time: time.Now(), Origin: origin, Event: &acklog.Attributes{Source: "/s", Type: "t"},
	}})
	require.NoError(t, err)
	return p.GetTopicId(), eventID
}

// apiServices are the descriptors of the services the matrix covers.
var apiServices = []protoreflect.ServiceDescriptor{
	v1.File_switchyard_v1_tenant_proto.Services().ByName("TenantService"),
	v1.File_switchyard_v1_region_proto.Services().ByName("RegionService"),
	v1.File_switchyard_v1_topic_proto.Services().ByName("TopicService"),
	v1.File_switchyard_v1_pipeline_proto.Services().ByName("PipelineService"),
	v1.File_switchyard_v1_api_key_proto.Services().ByName("ApiKeyService"),
	v1.File_switchyard_v1_dataplane_proto.Services().ByName("DataPlaneService"),
	v1.File_switchyard_v1_event_proto.Services().ByName("EventService"),
}

// TestAuthMatrix calls every RPC of the API services (enumerated from their
// descriptors, so a new RPC cannot be forgotten) as every kind of caller.
func TestAuthMatrix(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var procedures []string
	for _, sd := range apiServices {
		require.NotNil(t, sd)
		require.Contains(t, b.server.ServiceNames(), string(sd.FullName()))
		for i := range sd.Methods().Len() {
			procedures = append(procedures, "/"+string(sd.FullName())+"/"+string(sd.Methods().Get(i).Name()))
		}
	}
	require.Len(t, authMatrix, len(procedures))
	require.Len(t, rpcCalls, len(procedures))

	unknownToken, _, err := apikey.Generate(ids.New(ids.APIKey))
	require.NoError(t, err)

	for _, procedure := range procedures {
		want, found := authMatrix[procedure]
		require.True(t, found, "no auth matrix row for %s", procedure)
		call, found := rpcCalls[procedure]
		require.True(t, found, "no call for %s", procedure)
		t.Run(procedure, func(t *testing.T) {
			t.Parallel()
			region := b.region(t)
			a, other := b.tenant(t), b.tenant(t)
			_, adminToken := b.key(t, a.GetId(), v1.ApiKeyRole_API_KEY_ROLE_ADMIN)
			_, producerToken := b.key(t, a.GetId(), v1.ApiKeyRole_API_KEY_ROLE_PRODUCER)
			revoked, revokedToken := b.key(t, a.GetId(), v1.ApiKeyRole_API_KEY_ROLE_ADMIN)
			_, err := b.op.keys.RevokeApiKey(t.Context(), &v1.RevokeApiKeyRequest{Id: revoked.GetId()})
			require.NoError(t, err)

			tokens := [numCallers]string{
				asNone: "", asGarbage: "not-a-token", asUnknownKey: unknownToken, asOperator: testOperatorToken,
				asAdminOwn: adminToken, asAdminOther: adminToken, asProducer: producerToken, asRevoked: revokedToken,
				asNode: testNodeToken,
			}
			// The operator runs last: its calls may delete tenant A.
			for _, who := range []matrixCaller{asNone, asGarbage, asUnknownKey, asProducer, asRevoked, asNode, asAdminOther, asAdminOwn, asOperator} {
				w := &matrixWorld{b: b, region: region, target: a}
				if who == asAdminOther {
					w.target = other
				}
				err := call(t.Context(), t, w, b.clients(tokens[who]))
				if want[who] == ok {
					require.NoError(t, err, "caller %s", callerNames[who])
				} else {
					require.Equal(t, want[who], connect.CodeOf(err), "caller %s: %v", callerNames[who], err)
				}
			}
		})
	}
}

func TestAuthMessages(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tenant := b.tenant(t)
	req := &v1.GetTenantRequest{Id: tenant.GetId()}

	_, err := b.clients("").tenants.GetTenant(t.Context(), req)
	requireCode(t, err, connect.CodeUnauthenticated)

	// Unknown key, wrong secret of a real key, and garbage read the same.
	key, token := b.key(t, tenant.GetId(), v1.ApiKeyRole_API_KEY_ROLE_ADMIN)
	unknown, _, err := apikey.Generate(ids.New(ids.APIKey))
	require.NoError(t, err)
	other, _, err := apikey.Generate(key.GetId()) // right id, wrong secret
	require.NoError(t, err)
	var msgs []string
	// The real token with its last character changed (to one it is not).
	last := "A"
	if strings.HasSuffix(token, last) {
		last = "B"
	}
	tampered := token[:len(token)-1] + last
	for _, tok := range []string{unknown, other, "garbage", tampered} {
		_, err := b.clients(tok).tenants.GetTenant(t.Context(), req)
		requireCode(t, err, connect.CodeUnauthenticated)
		msgs = append(msgs, connect.CodeOf(err).String()+": "+err.(*connect.Error).Message())
	}
	for _, m := range msgs {
		require.Equal(t, msgs[0], m)
	}
	_, err = b.clients(token).tenants.GetTenant(t.Context(), req)
	require.NoError(t, err)
}

func TestRevokedKeyRefusedAtOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tenant := b.tenant(t)
	key, token := b.key(t, tenant.GetId(), v1.ApiKeyRole_API_KEY_ROLE_ADMIN)
	admin := b.clients(token)
	_, err := admin.tenants.GetTenant(t.Context(), &v1.GetTenantRequest{Id: tenant.GetId()})
	require.NoError(t, err)

	// The key revokes itself; the very next call is refused.
	_, err = admin.keys.RevokeApiKey(t.Context(), &v1.RevokeApiKeyRequest{Id: key.GetId()})
	require.NoError(t, err)
	_, err = admin.tenants.GetTenant(t.Context(), &v1.GetTenantRequest{Id: tenant.GetId()})
	requireCode(t, err, connect.CodeUnauthenticated)

	// A deleted key is refused at once.
	key2, token2 := b.key(t, tenant.GetId(), v1.ApiKeyRole_API_KEY_ROLE_ADMIN)
	_, err = b.clients(token2).tenants.GetTenant(t.Context(), &v1.GetTenantRequest{Id: tenant.GetId()})
	require.NoError(t, err)
	_, err = b.op.keys.DeleteApiKey(t.Context(), &v1.DeleteApiKeyRequest{Id: key2.GetId()})
	require.NoError(t, err)
	_, err = b.clients(token2).tenants.GetTenant(t.Context(), &v1.GetTenantRequest{Id: tenant.GetId()})
	requireCode(t, err, connect.CodeUnauthenticated)

	// An expired key is refused: expire a key in the store directly (the
	// API refuses expiry times in the past).
	key3, token3 := b.key(t, tenant.GetId(), v1.ApiKeyRole_API_KEY_ROLE_ADMIN)
	_, err = b.clients(token3).tenants.GetTenant(t.Context(), &v1.GetTenantRequest{Id: tenant.GetId()})
	require.NoError(t, err)
	key3.ExpireTime = timestamppb.New(time.Now().Add(-time.Minute))
	version, err := strconv.ParseInt(key3.GetEtag(), 10, 64)
	require.NoError(t, err)
	_, err = b.store.UpdateAPIKey(t.Context(), store.Actor{Kind: store.ActorSystem, ID: "test"}, key3, version)
	require.NoError(t, err)
	_, err = b.clients(token3).tenants.GetTenant(t.Context(), &v1.GetTenantRequest{Id: tenant.GetId()})
	requireCode(t, err, connect.CodeUnauthenticated)
}

func TestTenantIsolation(t *testing.T) {
	t.Parallel()
	b := setup(t)
	region := b.region(t)
	a, other := b.tenant(t), b.tenant(t)
	_, tokenA := b.key(t, a.GetId(), v1.ApiKeyRole_API_KEY_ROLE_ADMIN)
	keyB, _ := b.key(t, other.GetId(), v1.ApiKeyRole_API_KEY_ROLE_ADMIN)
	topicB := b.topic(t, other.GetId(), region.GetId())
	pipelineB := b.pipeline(t, other.GetId(), topicB.GetId())
	admin := b.clients(tokenA)
	ctx := t.Context()

	// Objects of B look exactly like missing ones.
	missingTopic := ids.New(ids.Topic)
	_, errB := admin.topics.GetTopic(ctx, &v1.GetTopicRequest{Id: topicB.GetId()})
	_, errMissing := admin.topics.GetTopic(ctx, &v1.GetTopicRequest{Id: missingTopic})
	requireCode(t, errB, connect.CodeNotFound)
	requireCode(t, errMissing, connect.CodeNotFound)
	require.Equal(t, errMissing.Error(), strings.ReplaceAll(errB.Error(), topicB.GetId(), missingTopic))

	_, err := admin.pipelines.GetPipeline(ctx, &v1.GetPipelineRequest{Id: pipelineB.GetId()})
	requireCode(t, err, connect.CodeNotFound)
	_, err = admin.keys.GetApiKey(ctx, &v1.GetApiKeyRequest{Id: keyB.GetId()})
	requireCode(t, err, connect.CodeNotFound)
	_, err = admin.tenants.GetTenant(ctx, &v1.GetTenantRequest{Id: other.GetId()})
	requireCode(t, err, connect.CodeNotFound)

	// A cannot list B's objects, nor create in B, nor use B's topic.
	_, err = admin.topics.ListTopics(ctx, &v1.ListTopicsRequest{TenantId: other.GetId()})
	requireCode(t, err, connect.CodeNotFound)
	_, err = admin.pipelines.ListPipelines(ctx, &v1.ListPipelinesRequest{TenantId: other.GetId()})
	requireCode(t, err, connect.CodeNotFound)
	_, err = admin.keys.ListApiKeys(ctx, &v1.ListApiKeysRequest{TenantId: other.GetId()})
	requireCode(t, err, connect.CodeNotFound)
	_, err = admin.pipelines.CreatePipeline(ctx, &v1.CreatePipelineRequest{TenantId: a.GetId(), Pipeline: webhookPipeline(topicB.GetId())})
	requireViolation(t, err, "pipeline.topic_id")

	// A's tenant list holds A alone.
	tenants, err := admin.tenants.ListTenants(ctx, &v1.ListTenantsRequest{})
	require.NoError(t, err)
	require.Len(t, tenants.GetTenants(), 1)
	require.Equal(t, a.GetId(), tenants.GetTenants()[0].GetId())
	all, err := b.op.tenants.ListTenants(ctx, &v1.ListTenantsRequest{})
	require.NoError(t, err)
	require.Len(t, all.GetTenants(), 2)

	// B's objects are untouched by A's attempts.
	_, err = admin.topics.DeleteTopic(ctx, &v1.DeleteTopicRequest{Id: topicB.GetId(), Force: true})
	requireCode(t, err, connect.CodeNotFound)
	_, err = b.op.topics.GetTopic(ctx, &v1.GetTopicRequest{Id: topicB.GetId()})
	require.NoError(t, err)
}

// TestAuthenticationBeforeValidation checks that a caller without credentials
// learns nothing about its request: even a malformed one is Unauthenticated.
func TestAuthenticationBeforeValidation(t *testing.T) {
	t.Parallel()
	b := setup(t)
	bad := &v1.CreateTopicRequest{TenantId: "not-an-id", Topic: &v1.Topic{Name: "Not A Slug"}}
	for _, token := range []string{"", "garbage"} {
		_, err := b.clients(token).topics.CreateTopic(t.Context(), bad)
		require.Equal(t, connect.CodeUnauthenticated, connect.CodeOf(err), "token %q: %v", token, err)
	}
	_, err := b.op.topics.CreateTopic(t.Context(), bad)
	require.Equal(t, connect.CodeInvalidArgument, connect.CodeOf(err), "with credentials the request is validated: %v", err)
}
