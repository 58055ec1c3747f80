package provider

import (
	"context"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64default"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
	"github.com/switchyard-dev/switchyard/sdk/switchyard"
)

var (
	_ resource.ResourceWithConfigure   = (*topicResource)(nil)
	_ resource.ResourceWithImportState = (*topicResource)(nil)
)

// Server defaults of a topic.
const (
	defaultPartitions     = 8
	defaultTopicRetention = "168h"
)

func newTopicResource() resource.Resource { return &topicResource{} }

// topicResource is switchyard_topic.
type topicResource struct{ client *switchyard.Client }

type topicModel struct {
	ID          types.String `tfsdk:"id"`
	TenantID    types.String `tfsdk:"tenant_id"`
	Name        types.String `tfsdk:"name"`
	Description types.String `tfsdk:"description"`
	RegionID    types.String `tfsdk:"region_id"`
	Partitions  types.Int64  `tfsdk:"partitions"`
	Retention   types.String `tfsdk:"retention"`
	KafkaTopic  types.String `tfsdk:"kafka_topic"`
	CreateTime  types.String `tfsdk:"create_time"`
	Etag        types.String `tfsdk:"etag"`
}

func (r *topicResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_topic"
}

func (r *topicResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		Description: "A topic: a named stream of events of one tenant, backed by one Kafka topic in its home region. Import by id (top_...).",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				Description:   "Server-assigned id, top_ followed by 26 characters.",
				Computed:      true,
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"tenant_id": schema.StringAttribute{
				Description:   "The owning tenant (ten_...). Changing it replaces the topic.",
				Required:      true,
				Validators:    []validator.String{idOf("ten")},
				PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplace()},
			},
			"name": schema.StringAttribute{
				Description:   "Slug, unique within the tenant; producers publish by it. Changing it replaces the topic.",
				Required:      true,
				Validators:    []validator.String{slug()},
				PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplace()},
			},
			"description": schema.StringAttribute{
				Description: "Free-form description, at most 1000 characters.",
				Optional:    true,
				Computed:    true,
				Default:     stringdefault.StaticString(""),
				Validators:  []validator.String{maxLen(1000)},
			},
			"region_id": schema.StringAttribute{
				Description: "Home region (reg_...). Default: the tenant's default region, or the only region. Changing it replaces the topic.",
				Optional:    true,
				Computed:    true,
				Validators:  []validator.String{idOf("reg")},
				PlanModifiers: []planmodifier.String{
					stringplanmodifier.UseStateForUnknown(),
					stringplanmodifier.RequiresReplaceIfConfigured(),
				},
			},
			"partitions": schema.Int64Attribute{
				Description: "Kafka partitions, 1 to 1024. Default 8. Can grow in place; shrinking replaces the topic.",
				Optional:    true,
				Computed:    true,
				Default:     int64default.StaticInt64(defaultPartitions),
				Validators:  []validator.Int64{between(1, 1024)},
				PlanModifiers: []planmodifier.Int64{int64planmodifier.RequiresReplaceIf(
					func(_ context.Context, req planmodifier.Int64Request, resp *int64planmodifier.RequiresReplaceIfFuncResponse) {
						resp.RequiresReplace = !req.StateValue.IsNull() && req.PlanValue.ValueInt64() < req.StateValue.ValueInt64()
					},
					"Partitions can only grow: fewer partitions replace the topic.",
					"Partitions can only grow: fewer partitions replace the topic.")},
			},
			"retention": schema.StringAttribute{
				Description: "How long Kafka keeps the topic's events, as a duration from 1h to 8760h, e.g. \"168h\". Default 168h.",
				Optional:    true,
				Computed:    true,
				Default:     stringdefault.StaticString(defaultTopicRetention),
				Validators:  []validator.String{durationBetween(time.Hour, 365*24*time.Hour)},
			},
			"kafka_topic": schema.StringAttribute{
				Description:   "The Kafka topic backing the topic.",
				Computed:      true,
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"create_time": schema.StringAttribute{
				Description:   "When the topic was created (RFC 3339).",
				Computed:      true,
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"etag": schema.StringAttribute{
				Description: "Version of the topic; changes on every update.",
				Computed:    true,
			},
		},
	}
}

func (r *topicResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.client = clientFrom(req.ProviderData, &resp.Diagnostics)
}

func (m *topicModel) fill(t *v1.Topic, diags *diag.Diagnostics) {
	t.Description = m.Description.ValueString()
	t.Partitions = u32(m.Partitions)
	t.Retention = durationProto(m.Retention, path.Root("retention"), diags)
}

func (m *topicModel) set(t *v1.Topic) {
	m.ID = types.StringValue(t.GetId())
	m.TenantID = types.StringValue(t.GetTenantId())
	m.Name = types.StringValue(t.GetName())
	m.Description = types.StringValue(t.GetDescription())
	m.RegionID = types.StringValue(t.GetRegionId())
	m.Partitions = i64(t.GetPartitions())
	m.Retention = durationValue(m.Retention, t.GetRetention())
	m.KafkaTopic = types.StringValue(t.GetKafkaTopic())
	m.CreateTime = timeValue(m.CreateTime, t.GetCreateTime())
	m.Etag = types.StringValue(t.GetEtag())
}

func (r *topicResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var m topicModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	t := &v1.Topic{Name: m.Name.ValueString()}
	if !m.RegionID.IsUnknown() {
		t.RegionId = m.RegionID.ValueString()
	}
	m.fill(t, &resp.Diagnostics)
	if resp.Diagnostics.HasError() {
		return
	}
	out, err := r.client.Topics().Create(ctx, m.TenantID.ValueString(), t)
	if err != nil {
		addAPIError(&resp.Diagnostics, "Creating topic "+m.Name.ValueString(), err)
		return
	}
	m.set(out)
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

func (r *topicResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var m topicModel
	out, ok := readObject(ctx, req, resp, &m, "topic", func(m *topicModel) string { return m.ID.ValueString() }, r.client.Topics().Get)
	if !ok {
		return
	}
	m.set(out)
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

func (r *topicResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var m, state topicModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &m)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	out, err := r.client.Topics().Update(ctx, state.ID.ValueString(), func(t *v1.Topic) error {
		m.fill(t, &resp.Diagnostics)
		return nil
	})
	if resp.Diagnostics.HasError() {
		return
	}
	if err != nil {
		addAPIError(&resp.Diagnostics, "Updating topic "+state.ID.ValueString(), err)
		return
	}
	m.CreateTime = state.CreateTime
	m.set(out)
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

func (r *topicResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var m topicModel
	deleteObject(ctx, req, resp, &m, "topic", func(m *topicModel) string { return m.ID.ValueString() },
		func(ctx context.Context, id string) error { return r.client.Topics().Delete(ctx, id) })
}

func (r *topicResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	resource.ImportStatePassthroughID(ctx, path.Root("id"), req, resp)
}
