package provider

import (
	"context"
	"regexp"

	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
	"github.com/switchyard-dev/switchyard/sdk/switchyard"
)

var (
	_ resource.ResourceWithConfigure   = (*regionResource)(nil)
	_ resource.ResourceWithImportState = (*regionResource)(nil)
)

// brokerPattern is the API's rule for Kafka bootstrap brokers.
var brokerPattern = regexp.MustCompile(`^[A-Za-z0-9.\-\[\]:]+:[0-9]{1,5}$`)

func newRegionResource() resource.Resource { return &regionResource{} }

// regionResource is switchyard_region.
type regionResource struct{ client *switchyard.Client }

type regionModel struct {
	ID               types.String `tfsdk:"id"`
	Name             types.String `tfsdk:"name"`
	DisplayName      types.String `tfsdk:"display_name"`
	KafkaBrokers     types.List   `tfsdk:"kafka_brokers"`
	Status           types.String `tfsdk:"status"`
	FailoverRegionID types.String `tfsdk:"failover_region_id"`
	CreateTime       types.String `tfsdk:"create_time"`
	Etag             types.String `tfsdk:"etag"`
}

func (r *regionResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_region"
}

func (r *regionResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		Description: "A region: a Kafka cluster and the data-plane nodes beside it. Needs the operator token. Import by id (reg_...).",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				Description:   "Server-assigned id, reg_ followed by 26 characters.",
				Computed:      true,
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"name": schema.StringAttribute{
				Description:   "Unique slug, e.g. eu-west-1. Changing it replaces the region.",
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
			"kafka_brokers": schema.ListAttribute{
				Description: "Bootstrap brokers of the region's Kafka cluster, as host:port; 1 to 32.",
				Required:    true,
				ElementType: types.StringType,
				Validators:  []validator.List{eachString(matches(brokerPattern, "must be host:port")), listSize(1, 32)},
			},
			"status": schema.StringAttribute{
				Description: "Operating state: ACTIVE, DRAINING or FAILED. Default ACTIVE.",
				Optional:    true,
				Computed:    true,
				Default:     stringdefault.StaticString("ACTIVE"),
				Validators:  []validator.String{oneOf("ACTIVE", "DRAINING", "FAILED")},
			},
			"failover_region_id": schema.StringAttribute{
				Description: "Region that takes over this region's topics and pipelines when it fails (reg_...). Empty: none.",
				Optional:    true,
				Computed:    true,
				Default:     stringdefault.StaticString(""),
				Validators:  []validator.String{emptyOr(idOf("reg"))},
			},
			"create_time": schema.StringAttribute{
				Description:   "When the region was created (RFC 3339).",
				Computed:      true,
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"etag": schema.StringAttribute{
				Description: "Version of the region; changes on every update.",
				Computed:    true,
			},
		},
	}
}

func (r *regionResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.client = clientFrom(req.ProviderData, &resp.Diagnostics)
}

func (m *regionModel) fill(g *v1.Region) {
	g.DisplayName = m.DisplayName.ValueString()
	g.KafkaBrokers = stringsOf(m.KafkaBrokers)
	g.Status = v1.RegionStatus(enumValue(v1.RegionStatus_value, "REGION_STATUS_", m.Status.ValueString()))
	g.FailoverRegionId = m.FailoverRegionID.ValueString()
}

func (m *regionModel) set(g *v1.Region) {
	m.ID = types.StringValue(g.GetId())
	m.Name = types.StringValue(g.GetName())
	m.DisplayName = types.StringValue(g.GetDisplayName())
	m.KafkaBrokers = listOf(g.GetKafkaBrokers())
	m.Status = types.StringValue(enumName(g.GetStatus().String(), "REGION_STATUS_"))
	m.FailoverRegionID = types.StringValue(g.GetFailoverRegionId())
	m.CreateTime = timeValue(m.CreateTime, g.GetCreateTime())
	m.Etag = types.StringValue(g.GetEtag())
}

func (r *regionResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var m regionModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	g := &v1.Region{Name: m.Name.ValueString()}
	m.fill(g)
	out, err := r.client.Regions().Create(ctx, g)
	if err != nil {
		addAPIError(&resp.Diagnostics, "Creating region "+m.Name.ValueString(), err)
		return
	}
	m.set(out)
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

func (r *regionResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var m regionModel
	out, ok := readObject(ctx, req, resp, &m, "region", func(m *regionModel) string { return m.ID.ValueString() }, r.client.Regions().Get)
	if !ok {
		return
	}
	m.set(out)
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

func (r *regionResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var m, state regionModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &m)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	out, err := r.client.Regions().Update(ctx, state.ID.ValueString(), func(g *v1.Region) error {
		m.fill(g)
		return nil
	})
	if err != nil {
		addAPIError(&resp.Diagnostics, "Updating region "+state.ID.ValueString(), err)
		return
	}
	m.CreateTime = state.CreateTime
	m.set(out)
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

func (r *regionResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var m regionModel
	deleteObject(ctx, req, resp, &m, "region", func(m *regionModel) string { return m.ID.ValueString() },
		func(ctx context.Context, id string) error { return r.client.Regions().Delete(ctx, id) })
}

func (r *regionResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	resource.ImportStatePassthroughID(ctx, path.Root("id"), req, resp)
}
