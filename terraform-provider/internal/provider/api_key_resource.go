package provider

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/listdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
	"github.com/switchyard-dev/switchyard/sdk/switchyard"
)

var (
	_ resource.ResourceWithConfigure   = (*apiKeyResource)(nil)
	_ resource.ResourceWithImportState = (*apiKeyResource)(nil)
)

func newAPIKeyResource() resource.Resource { return &apiKeyResource{} }

// apiKeyResource is switchyard_api_key.
type apiKeyResource struct{ client *switchyard.Client }

type apiKeyModel struct {
	ID          types.String `tfsdk:"id"`
	TenantID    types.String `tfsdk:"tenant_id"`
	Name        types.String `tfsdk:"name"`
	Description types.String `tfsdk:"description"`
	Role        types.String `tfsdk:"role"`
	TopicIDs    types.List   `tfsdk:"topic_ids"`
	ExpireTime  types.String `tfsdk:"expire_time"`
	Prefix      types.String `tfsdk:"prefix"`
	Secret      types.String `tfsdk:"secret"`
	CreateTime  types.String `tfsdk:"create_time"`
	Etag        types.String `tfsdk:"etag"`
}

func (r *apiKeyResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_api_key"
}

func (r *apiKeyResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		Description: "An API key of a tenant. Its secret is known only when the key is created and is kept in the state (mark outputs that use it sensitive). Import by id (key_...); an imported key has no secret.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				Description:   "Server-assigned id, key_ followed by 26 characters.",
				Computed:      true,
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"tenant_id": schema.StringAttribute{
				Description:   "The owning tenant (ten_...). Changing it replaces the key.",
				Required:      true,
				Validators:    []validator.String{idOf("ten")},
				PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplace()},
			},
			"name": schema.StringAttribute{
				Description: "Slug, unique within the tenant.",
				Required:    true,
				Validators:  []validator.String{slug()},
			},
			"description": schema.StringAttribute{
				Description: "Free-form description, at most 1000 characters.",
				Optional:    true,
				Computed:    true,
				Default:     stringdefault.StaticString(""),
				Validators:  []validator.String{maxLen(1000)},
			},
			"role": schema.StringAttribute{
				Description:   "What the key may do: admin (manage the tenant) or producer (publish events). Changing it replaces the key.",
				Required:      true,
				Validators:    []validator.String{oneOf("admin", "producer")},
				PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplace()},
			},
			"topic_ids": schema.ListAttribute{
				Description: "For producer keys: the topics (top_...) the key may publish to; empty means all.",
				Optional:    true,
				Computed:    true,
				ElementType: types.StringType,
				Default:     listdefault.StaticValue(listOf(nil)),
				Validators:  []validator.List{eachString(idOf("top")), listSize(0, 100)},
			},
			"expire_time": schema.StringAttribute{
				Description:   "When the key stops working (RFC 3339); unset means never. Changing it replaces the key.",
				Optional:      true,
				Validators:    []validator.String{rfc3339()},
				PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplace()},
			},
			"prefix": schema.StringAttribute{
				Description:   "The first characters of the secret, to recognise it.",
				Computed:      true,
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"secret": schema.StringAttribute{
				Description:   "The key's secret, sent as \"Authorization: Bearer <secret>\". Known only at creation; kept in the state.",
				Computed:      true,
				Sensitive:     true,
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"create_time": schema.StringAttribute{
				Description:   "When the key was created (RFC 3339).",
				Computed:      true,
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"etag": schema.StringAttribute{
				Description: "Version of the key; changes on every update.",
				Computed:    true,
			},
		},
	}
}

func (r *apiKeyResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.client = clientFrom(req.ProviderData, &resp.Diagnostics)
}

// roles maps the role attribute to the API's enum.
var roles = map[string]v1.ApiKeyRole{"admin": v1.ApiKeyRole_API_KEY_ROLE_ADMIN, "producer": v1.ApiKeyRole_API_KEY_ROLE_PRODUCER}

func roleName(r v1.ApiKeyRole) string {
	for name, v := range roles {
		if v == r {
			return name
		}
	}
	return r.String()
}

func (m *apiKeyModel) fill(k *v1.ApiKey) {
	k.Name = m.Name.ValueString()
	k.Description = m.Description.ValueString()
	k.TopicIds = stringsOf(m.TopicIDs)
}

func (m *apiKeyModel) set(k *v1.ApiKey) {
	m.ID = types.StringValue(k.GetId())
	m.TenantID = types.StringValue(k.GetTenantId())
	m.Name = types.StringValue(k.GetName())
	m.Description = types.StringValue(k.GetDescription())
	m.Role = types.StringValue(roleName(k.GetRole()))
	m.TopicIDs = listOf(k.GetTopicIds())
	m.ExpireTime = timeValue(m.ExpireTime, k.GetExpireTime())
	m.Prefix = types.StringValue(k.GetPrefix())
	m.CreateTime = timeValue(m.CreateTime, k.GetCreateTime())
	m.Etag = types.StringValue(k.GetEtag())
	if m.Secret.IsUnknown() {
		m.Secret = types.StringNull()
	}
}

func (r *apiKeyResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var m apiKeyModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	k := &v1.ApiKey{Role: roles[m.Role.ValueString()]}
	m.fill(k)
	k.ExpireTime = timeProto(m.ExpireTime, path.Root("expire_time"), &resp.Diagnostics)
	if resp.Diagnostics.HasError() {
		return
	}
	out, secret, err := r.client.APIKeys().Create(ctx, m.TenantID.ValueString(), k)
	if err != nil {
		addAPIError(&resp.Diagnostics, "Creating API key "+m.Name.ValueString(), err)
		return
	}
	m.Secret = types.StringValue(secret)
	m.set(out)
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

func (r *apiKeyResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var m apiKeyModel
	out, ok := readObject(ctx, req, resp, &m, "API key", func(m *apiKeyModel) string { return m.ID.ValueString() }, r.client.APIKeys().Get)
	if !ok {
		return
	}
	m.set(out)
	if out.GetRevokeTime() != nil {
		// A revoked key is useless: drop it so the next apply makes a new one.
		resp.Diagnostics.AddWarning("API key revoked", "API key "+m.ID.ValueString()+" was revoked; it will be replaced.")
		resp.State.RemoveResource(ctx)
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

func (r *apiKeyResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var m, state apiKeyModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &m)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	out, err := r.client.APIKeys().Update(ctx, state.ID.ValueString(), func(k *v1.ApiKey) error {
		m.fill(k)
		return nil
	})
	if err != nil {
		addAPIError(&resp.Diagnostics, "Updating API key "+state.ID.ValueString(), err)
		return
	}
	m.Secret = state.Secret
	m.CreateTime = state.CreateTime
	m.set(out)
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

func (r *apiKeyResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var m apiKeyModel
	deleteObject(ctx, req, resp, &m, "API key", func(m *apiKeyModel) string { return m.ID.ValueString() },
		func(ctx context.Context, id string) error { return r.client.APIKeys().Delete(ctx, id) })
}

func (r *apiKeyResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	resource.ImportStatePassthroughID(ctx, path.Root("id"), req, resp)
}
