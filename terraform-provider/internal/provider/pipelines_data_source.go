package provider

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/switchyard-dev/switchyard/sdk/switchyard"
)

var _ datasource.DataSourceWithConfigure = (*pipelinesDataSource)(nil)

// pathID is the path of the id attribute.
var pathID = path.Root("id")

func newPipelinesDataSource() datasource.DataSource { return &pipelinesDataSource{} }

// pipelinesDataSource is data.switchyard_pipelines.
type pipelinesDataSource struct{ client *switchyard.Client }

type pipelinesModel struct {
	TenantID  types.String      `tfsdk:"tenant_id"`
	TopicID   types.String      `tfsdk:"topic_id"`
	Pipelines []pipelineSummary `tfsdk:"pipelines"`
}

type pipelineSummary struct {
	ID          types.String `tfsdk:"id"`
	TopicID     types.String `tfsdk:"topic_id"`
	Name        types.String `tfsdk:"name"`
	Description types.String `tfsdk:"description"`
	Ordering    types.String `tfsdk:"ordering"`
	Paused      types.Bool   `tfsdk:"paused"`
	Etag        types.String `tfsdk:"etag"`
}

func (d *pipelinesDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_pipelines"
}

func (d *pipelinesDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	str := func(desc string) schema.StringAttribute {
		return schema.StringAttribute{Description: desc, Computed: true}
	}
	resp.Schema = schema.Schema{
		Description: "Lists the pipelines of a tenant, optionally only those reading one topic, ordered by id. Use data.switchyard_pipeline for the details of one.",
		Attributes: map[string]schema.Attribute{
			"tenant_id": schema.StringAttribute{
				Description: "The tenant whose pipelines to list (ten_...).",
				Required:    true,
				Validators:  []validator.String{idOf("ten")},
			},
			"topic_id": schema.StringAttribute{
				Description: "Only pipelines reading this topic (top_...).",
				Optional:    true,
				Validators:  []validator.String{idOf("top")},
			},
			"pipelines": schema.ListNestedAttribute{
				Description: "The pipelines found.",
				Computed:    true,
				NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
					"id":          str("The pipeline's id."),
					"topic_id":    str("The topic it reads."),
					"name":        str("The pipeline's name."),
					"description": str("Free-form description."),
					"ordering":    str("Ordering guarantee: NONE or KEY."),
					"paused":      schema.BoolAttribute{Description: "Whether delivery is stopped.", Computed: true},
					"etag":        str("Version of the pipeline."),
				}},
			},
		},
	}
}

func (d *pipelinesDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	d.client = clientFrom(req.ProviderData, &resp.Diagnostics)
}

func (d *pipelinesDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var m pipelinesModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	m.Pipelines = []pipelineSummary{}
	for p, err := range d.client.Pipelines().List(ctx, m.TenantID.ValueString()) {
		if err != nil {
			addAPIError(&resp.Diagnostics, "Listing pipelines of "+m.TenantID.ValueString(), err)
			return
		}
		if !m.TopicID.IsNull() && p.GetTopicId() != m.TopicID.ValueString() {
			continue
		}
		m.Pipelines = append(m.Pipelines, pipelineSummary{
			ID:          types.StringValue(p.GetId()),
			TopicID:     types.StringValue(p.GetTopicId()),
			Name:        types.StringValue(p.GetName()),
			Description: types.StringValue(p.GetDescription()),
			Ordering:    types.StringValue(enumName(p.GetOrdering().String(), "ORDERING_MODE_")),
			Paused:      types.BoolValue(p.GetPaused()),
			Etag:        types.StringValue(p.GetEtag()),
		})
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}
