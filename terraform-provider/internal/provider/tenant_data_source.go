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
	_ datasource.DataSourceWithConfigure      = (*tenantDataSource)(nil)
	_ datasource.DataSourceWithValidateConfig = (*tenantDataSource)(nil)
)

func newTenantDataSource() datasource.DataSource { return &tenantDataSource{} }

// tenantDataSource is data.switchyard_tenant.
type tenantDataSource struct{ client *switchyard.Client }

func (d *tenantDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_tenant"
}

func (d *tenantDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	computed := func(desc string) schema.StringAttribute {
		return schema.StringAttribute{Description: desc, Computed: true}
	}
	count := func(desc string) schema.Int64Attribute {
		return schema.Int64Attribute{Description: desc, Computed: true}
	}
	resp.Schema = schema.Schema{
		Description: "Looks up a tenant by id or by name (set exactly one).",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				Description: "The tenant's id (ten_...).",
				Optional:    true,
				Computed:    true,
				Validators:  []validator.String{idOf("ten")},
			},
			"name": schema.StringAttribute{
				Description: "The tenant's name.",
				Optional:    true,
				Computed:    true,
				Validators:  []validator.String{slug()},
			},
			"display_name": computed("Free-form name for display."),
			"quotas": schema.SingleNestedAttribute{
				Description: "Limits on the tenant's producers.",
				Computed:    true,
				Attributes: map[string]schema.Attribute{
					"events_per_second": count("Sustained publish rate."),
					"burst":             count("Burst above the sustained rate."),
					"max_event_bytes":   count("Largest event payload accepted, in bytes."),
				},
			},
			"retention": schema.SingleNestedAttribute{
				Description: "How long the delivery ledger keeps the tenant's events.",
				Computed:    true,
				Attributes: map[string]schema.Attribute{
					"days":          count("Days events and delivery attempts are kept."),
					"drop_payloads": schema.BoolAttribute{Description: "Whether payloads are left out of the ledger.", Computed: true},
				},
			},
			"default_region_id": computed("Region of new topics that name none; empty: none."),
			"create_time":       computed("When the tenant was created (RFC 3339)."),
			"etag":              computed("Version of the tenant."),
		},
	}
}

func (d *tenantDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	d.client = clientFrom(req.ProviderData, &resp.Diagnostics)
}

func (d *tenantDataSource) ValidateConfig(ctx context.Context, req datasource.ValidateConfigRequest, resp *datasource.ValidateConfigResponse) {
	var m tenantModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() || m.ID.IsUnknown() || m.Name.IsUnknown() {
		return
	}
	if m.ID.IsNull() == m.Name.IsNull() {
		resp.Diagnostics.AddAttributeError(path.Root("id"), "Invalid tenant lookup", "set exactly one of id or name")
	}
}

func (d *tenantDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var m tenantModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	var found *v1.Tenant
	if !m.ID.IsNull() {
		t, err := d.client.Tenants().Get(ctx, m.ID.ValueString())
		if err != nil {
			addAPIError(&resp.Diagnostics, "Reading tenant "+m.ID.ValueString(), err)
			return
		}
		found = t
	} else {
		for t, err := range d.client.Tenants().List(ctx) {
			if err != nil {
				addAPIError(&resp.Diagnostics, "Listing tenants", err)
				return
			}
			if t.GetName() == m.Name.ValueString() {
				found = t
				break
			}
		}
		if found == nil {
			resp.Diagnostics.AddAttributeError(path.Root("name"), "Tenant not found", "no tenant is named "+m.Name.ValueString())
			return
		}
	}
	m.set(found)
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}
