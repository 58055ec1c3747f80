package provider

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"

	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
	"github.com/switchyard-dev/switchyard/sdk/switchyard"
)

var (
	_ datasource.DataSourceWithConfigure      = (*topicDataSource)(nil)
	_ datasource.DataSourceWithValidateConfig = (*topicDataSource)(nil)
)

func newTopicDataSource() datasource.DataSource { return &topicDataSource{} }

// topicDataSource is data.switchyard_topic.
type topicDataSource struct{ client *switchyard.Client }

func (d *topicDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_topic"
}

func (d *topicDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	computed := func(desc string) schema.StringAttribute {
		return schema.StringAttribute{Description: desc, Computed: true}
	}
	resp.Schema = schema.Schema{
		Description: "Looks up a topic by id, or by tenant_id and name.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				Description: "The topic's id (top_...).",
				Optional:    true,
				Computed:    true,
				Validators:  []validator.String{idOf("top")},
			},
			"tenant_id": schema.StringAttribute{
				Description: "The owning tenant (ten_...); with name.",
				Optional:    true,
				Computed:    true,
				Validators:  []validator.String{idOf("ten")},
			},
			"name": schema.StringAttribute{
				Description: "The topic's name; with tenant_id.",
				Optional:    true,
				Computed:    true,
				Validators:  []validator.String{slug()},
			},
			"description": computed("Free-form description."),
			"region_id":   computed("Home region."),
			"partitions":  schema.Int64Attribute{Description: "Kafka partitions.", Computed: true},
			"retention":   computed("How long Kafka keeps the topic's events, e.g. 168h."),
			"kafka_topic": computed("The Kafka topic backing the topic."),
			"create_time": computed("When the topic was created (RFC 3339)."),
			"etag":        computed("Version of the topic."),
		},
	}
}

func (d *topicDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	d.client = clientFrom(req.ProviderData, &resp.Diagnostics)
}

func (d *topicDataSource) ValidateConfig(ctx context.Context, req datasource.ValidateConfigRequest, resp *datasource.ValidateConfigResponse) {
	var m topicModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() || m.ID.IsUnknown() || m.TenantID.IsUnknown() || m.Name.IsUnknown() {
		return
	}
	byID := !m.ID.IsNull()
	byName := !m.TenantID.IsNull() && !m.Name.IsNull()
	if byID == byName || (byID && (!m.TenantID.IsNull() || !m.Name.IsNull())) {
		resp.Diagnostics.AddAttributeError(path.Root("id"), "Invalid topic lookup", "set either id, or tenant_id and name")
	}
}

func (d *topicDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var m topicModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	var found *v1.Topic
	if !m.ID.IsNull() {
		t, err := d.client.Topics().Get(ctx, m.ID.ValueString())
		if err != nil {
			addAPIError(&resp.Diagnostics, "Reading topic "+m.ID.ValueString(), err)
			return
		}
		found = t
	} else {
		for t, err := range d.client.Topics().List(ctx, m.TenantID.ValueString()) {
			if err != nil {
				addAPIError(&resp.Diagnostics, "Listing topics of "+m.TenantID.ValueString(), err)
				return
			}
			if t.GetName() == m.Name.ValueString() {
				found = t
				break
			}
		}
		if found == nil {
			resp.Diagnostics.AddAttributeError(path.Root("name"), "Topic not found",
				"tenant "+m.TenantID.ValueString()+" has no topic named "+m.Name.ValueString())
			return
		}
	}
	m.set(found)
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}
