package provider

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64default"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/objectdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
	"github.com/switchyard-dev/switchyard/sdk/switchyard"
)

var (
	_ resource.ResourceWithConfigure   = (*tenantResource)(nil)
	_ resource.ResourceWithImportState = (*tenantResource)(nil)
)

// Server defaults of a tenant.
const (
	defaultEventsPerSecond = 1000
	defaultMaxEventBytes   = 256 << 10
	defaultRetentionDays   = 30
)

func newTenantResource() resource.Resource { return &tenantResource{} }

// tenantResource is switchyard_tenant.
type tenantResource struct{ client *switchyard.Client }

type tenantModel struct {
	ID              types.String    `tfsdk:"id"`
	Name            types.String    `tfsdk:"name"`
	DisplayName     types.String    `tfsdk:"display_name"`
	Quotas          *quotasModel    `tfsdk:"quotas"`
	Retention       *retentionModel `tfsdk:"retention"`
	DefaultRegionID types.String    `tfsdk:"default_region_id"`
	CreateTime      types.String    `tfsdk:"create_time"`
	Etag            types.String    `tfsdk:"etag"`
}

type quotasModel struct {
	EventsPerSecond types.Int64 `tfsdk:"events_per_second"`
	Burst           types.Int64 `tfsdk:"burst"`
	MaxEventBytes   types.Int64 `tfsdk:"max_event_bytes"`
}

type retentionModel struct {
	Days         types.Int64 `tfsdk:"days"`
	DropPayloads types.Bool  `tfsdk:"drop_payloads"`
}

var (
	quotasAttrTypes    = map[string]attr.Type{"events_per_second": types.Int64Type, "burst": types.Int64Type, "max_event_bytes": types.Int64Type}
	retentionAttrTypes = map[string]attr.Type{"days": types.Int64Type, "drop_payloads": types.BoolType}
)

func (r *tenantResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_tenant"
}

func (r *tenantResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		Description: "A tenant: the unit of isolation that owns topics, pipelines and API keys. Creating and deleting tenants needs the operator token. Import by id (ten_...).",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				Description:   "Server-assigned id, ten_ followed by 26 characters.",
				Computed:      true,
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"name": schema.StringAttribute{
				Description:   "Unique slug. Changing it replaces the tenant.",
				Required:      true,
				Validators:    []validator.String{slug()},
				PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplace()},
			},
			"display_name": schema.StringAttribute{
				Description: "Free-form name for display, at most 200 characters.",
				Optional:    true,
				Computed:    true,
				Default:     stringdefault.StaticString(""),
				Validators:  []validator.String{maxLen(200)},
			},
			"quotas": schema.SingleNestedAttribute{
				Description: "Limits on the tenant's producers.",
				Optional:    true,
				Computed:    true,
				Default: objectdefault.StaticValue(types.ObjectValueMust(quotasAttrTypes, map[string]attr.Value{
					"events_per_second": types.Int64Value(defaultEventsPerSecond),
					"burst":             types.Int64Value(defaultEventsPerSecond),
					"max_event_bytes":   types.Int64Value(defaultMaxEventBytes),
				})),
				Attributes: map[string]schema.Attribute{
					"events_per_second": schema.Int64Attribute{
						Description: "Sustained publish rate across the tenant's producers, 1 to 1000000. Default 1000.",
						Optional:    true,
						Computed:    true,
						Default:     int64default.StaticInt64(defaultEventsPerSecond),
						Validators:  []validator.Int64{between(1, 1000000)},
					},
					"burst": schema.Int64Attribute{
						Description:   "Burst above the sustained rate, 1 to 1000000. Default: events_per_second at creation.",
						Optional:      true,
						Computed:      true,
						Validators:    []validator.Int64{between(1, 1000000)},
						PlanModifiers: []planmodifier.Int64{int64planmodifier.UseStateForUnknown()},
					},
					"max_event_bytes": schema.Int64Attribute{
						Description: "Largest event payload accepted, in bytes, 1 to 1048576. Default 262144.",
						Optional:    true,
						Computed:    true,
						Default:     int64default.StaticInt64(defaultMaxEventBytes),
						Validators:  []validator.Int64{between(1, 1<<20)},
					},
				},
			},
			"retention": schema.SingleNestedAttribute{
				Description: "How long the delivery ledger keeps the tenant's events.",
				Optional:    true,
				Computed:    true,
				Default: objectdefault.StaticValue(types.ObjectValueMust(retentionAttrTypes, map[string]attr.Value{
					"days":          types.Int64Value(defaultRetentionDays),
					"drop_payloads": types.BoolValue(false),
				})),
				Attributes: map[string]schema.Attribute{
					"days": schema.Int64Attribute{
						Description: "Days events and delivery attempts are kept, 1 to 3650. Default 30.",
						Optional:    true,
						Computed:    true,
						Default:     int64default.StaticInt64(defaultRetentionDays),
						Validators:  []validator.Int64{between(1, 3650)},
					},
					"drop_payloads": schema.BoolAttribute{
						Description: "Keep only attributes and delivery attempts, not payloads. Default false.",
						Optional:    true,
						Computed:    true,
						Default:     booldefault.StaticBool(false),
					},
				},
			},
			"default_region_id": schema.StringAttribute{
				Description: "Region of new topics that name none (reg_...). Empty: none.",
				Optional:    true,
				Computed:    true,
				Default:     stringdefault.StaticString(""),
				Validators:  []validator.String{emptyOr(idOf("reg"))},
			},
			"create_time": schema.StringAttribute{
				Description:   "When the tenant was created (RFC 3339).",
				Computed:      true,
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"etag": schema.StringAttribute{
				Description: "Version of the tenant; changes on every update.",
				Computed:    true,
			},
		},
	}
}

func (r *tenantResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.client = clientFrom(req.ProviderData, &resp.Diagnostics)
}

// fill sets t's mutable fields from m.
func (m *tenantModel) fill(t *v1.Tenant) {
	t.DisplayName = m.DisplayName.ValueString()
	t.DefaultRegionId = m.DefaultRegionID.ValueString()
	t.Quotas = nil
	if q := m.Quotas; q != nil {
		t.Quotas = &v1.TenantQuotas{EventsPerSecond: u32(q.EventsPerSecond), Burst: u32(q.Burst), MaxEventBytes: u32(q.MaxEventBytes)}
	}
	t.Retention = nil
	if rt := m.Retention; rt != nil {
		t.Retention = &v1.RetentionPolicy{Days: u32(rt.Days), DropPayloads: rt.DropPayloads.ValueBool()}
	}
}

// set sets m from the server's t, keeping the spelling of equal values.
func (m *tenantModel) set(t *v1.Tenant) {
	m.ID = types.StringValue(t.GetId())
	m.Name = types.StringValue(t.GetName())
	m.DisplayName = types.StringValue(t.GetDisplayName())
	m.DefaultRegionID = types.StringValue(t.GetDefaultRegionId())
	q := t.GetQuotas()
	m.Quotas = &quotasModel{EventsPerSecond: i64(q.GetEventsPerSecond()), Burst: i64(q.GetBurst()), MaxEventBytes: i64(q.GetMaxEventBytes())}
	rt := t.GetRetention()
	m.Retention = &retentionModel{Days: i64(rt.GetDays()), DropPayloads: types.BoolValue(rt.GetDropPayloads())}
	m.CreateTime = timeValue(m.CreateTime, t.GetCreateTime())
	m.Etag = types.StringValue(t.GetEtag())
}

func (r *tenantResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var m tenantModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	t := &v1.Tenant{Name: m.Name.ValueString()}
	m.fill(t)
	out, err := r.client.Tenants().Create(ctx, t)
	if err != nil {
		addAPIError(&resp.Diagnostics, "Creating tenant "+m.Name.ValueString(), err)
		return
	}
	m.set(out)
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

func (r *tenantResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var m tenantModel
	out, ok := readObject(ctx, req, resp, &m, "tenant", func(m *tenantModel) string { return m.ID.ValueString() }, r.client.Tenants().Get)
	if !ok {
		return
	}
	m.set(out)
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

func (r *tenantResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var m, state tenantModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &m)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	out, err := r.client.Tenants().Update(ctx, state.ID.ValueString(), func(t *v1.Tenant) error {
		m.fill(t)
		return nil
	})
	if err != nil {
		addAPIError(&resp.Diagnostics, "Updating tenant "+state.ID.ValueString(), err)
		return
	}
	m.CreateTime = state.CreateTime
	m.set(out)
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

func (r *tenantResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var m tenantModel
	deleteObject(ctx, req, resp, &m, "tenant", func(m *tenantModel) string { return m.ID.ValueString() },
		func(ctx context.Context, id string) error { return r.client.Tenants().Delete(ctx, id) })
}

func (r *tenantResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	resource.ImportStatePassthroughID(ctx, path.Root("id"), req, resp)
}
