// Package provider is the Terraform provider for Switchyard, built on
// terraform-plugin-framework over the SDK's admin client. It is a module of
// its own so that Terraform's dependencies stay out of the server and the SDK.
package provider

import (
	"context"
	"os"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/provider"
	"github.com/hashicorp/terraform-plugin-framework/provider/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/switchyard-dev/switchyard/sdk/switchyard"
)

// Address is the provider's registry address.
const Address = "registry.terraform.io/switchyard-dev/switchyard"

// Environment variables read when the provider block leaves a setting out.
const (
	EnvEndpoint = "SWITCHYARD_ENDPOINT"
	EnvToken    = "SWITCHYARD_TOKEN"
)

var _ provider.Provider = (*switchyardProvider)(nil)

// New returns a function that makes the provider, as providerserver wants.
func New(version string) func() provider.Provider {
	return func() provider.Provider { return &switchyardProvider{version: version} }
}

type switchyardProvider struct {
	version string
}

type providerModel struct {
	Endpoint types.String `tfsdk:"endpoint"`
	Token    types.String `tfsdk:"token"`
}

func (p *switchyardProvider) Metadata(_ context.Context, _ provider.MetadataRequest, resp *provider.MetadataResponse) {
	resp.TypeName = "switchyard"
	resp.Version = p.version
}

func (p *switchyardProvider) Schema(_ context.Context, _ provider.SchemaRequest, resp *provider.SchemaResponse) {
	resp.Schema = schema.Schema{
		Description: "Manages Switchyard tenants, regions, topics, pipelines and API keys through the control plane's API.",
		Attributes: map[string]schema.Attribute{
			"endpoint": schema.StringAttribute{
				Description: "Base URL of the control plane, e.g. http://127.0.0.1:8080. Default: the SWITCHYARD_ENDPOINT environment variable.",
				Optional:    true,
				Validators:  []validator.String{httpURL()},
			},
			"token": schema.StringAttribute{
				Description: "Bearer token: the operator token, or an admin API key of one tenant (which cannot manage tenants or regions). Default: the SWITCHYARD_TOKEN environment variable.",
				Optional:    true,
				Sensitive:   true,
			},
		},
	}
}

func (p *switchyardProvider) Configure(ctx context.Context, req provider.ConfigureRequest, resp *provider.ConfigureResponse) {
	var cfg providerModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &cfg)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if cfg.Endpoint.IsUnknown() || cfg.Token.IsUnknown() {
		resp.Diagnostics.AddError("Provider configuration not yet known",
			"endpoint and token must be known at plan time; they cannot depend on resources of this configuration.")
		return
	}
	endpoint := cfg.Endpoint.ValueString()
	if endpoint == "" {
		endpoint = os.Getenv(EnvEndpoint)
	}
	token := cfg.Token.ValueString()
	if token == "" {
		token = os.Getenv(EnvToken)
	}
	if endpoint == "" {
		resp.Diagnostics.AddAttributeError(path.Root("endpoint"), "Missing endpoint",
			"Set endpoint in the provider block or the "+EnvEndpoint+" environment variable.")
	}
	if token == "" {
		resp.Diagnostics.AddAttributeError(path.Root("token"), "Missing token",
			"Set token in the provider block or the "+EnvToken+" environment variable.")
	}
	if resp.Diagnostics.HasError() {
		return
	}
	client, err := switchyard.NewClient(endpoint, switchyard.WithToken(token))
	if err != nil {
		resp.Diagnostics.AddError("Cannot create the Switchyard client", err.Error())
		return
	}
	resp.ResourceData = client
	resp.DataSourceData = client
}

func (p *switchyardProvider) Resources(context.Context) []func() resource.Resource {
	return []func() resource.Resource{
		newTenantResource,
		newRegionResource,
		newTopicResource,
		newPipelineResource,
		newAPIKeyResource,
	}
}

func (p *switchyardProvider) DataSources(context.Context) []func() datasource.DataSource {
	return []func() datasource.DataSource{
		newTenantDataSource,
		newTopicDataSource,
		newPipelineDataSource,
		newPipelinesDataSource,
	}
}
