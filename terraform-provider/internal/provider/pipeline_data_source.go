package provider

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/switchyard-dev/switchyard/sdk/switchyard"
)

var _ datasource.DataSourceWithConfigure = (*pipelineDataSource)(nil)

func newPipelineDataSource() datasource.DataSource { return &pipelineDataSource{} }

// pipelineDataSource is data.switchyard_pipeline.
type pipelineDataSource struct{ client *switchyard.Client }

// pipelineDataModel is pipelineModel without the signing secrets, which the
// server shows only at creation.
type pipelineDataModel struct {
	ID               types.String           `tfsdk:"id"`
	TenantID         types.String           `tfsdk:"tenant_id"`
	TopicID          types.String           `tfsdk:"topic_id"`
	Name             types.String           `tfsdk:"name"`
	Description      types.String           `tfsdk:"description"`
	Filter           *filterModel           `tfsdk:"filter"`
	Transform        *transformModel        `tfsdk:"transform"`
	Destinations     []destinationModel     `tfsdk:"destination"`
	RetryPolicy      *retryPolicyModel      `tfsdk:"retry_policy"`
	DeadLetterPolicy *deadLetterPolicyModel `tfsdk:"dead_letter_policy"`
	Ordering         types.String           `tfsdk:"ordering"`
	Paused           types.Bool             `tfsdk:"paused"`
	ConsumerGroup    types.String           `tfsdk:"consumer_group"`
	DeadLetterTopic  types.String           `tfsdk:"dead_letter_topic"`
	CreateTime       types.String           `tfsdk:"create_time"`
	Etag             types.String           `tfsdk:"etag"`
}

func (d *pipelineDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_pipeline"
}

func (d *pipelineDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	str := func(desc string) schema.StringAttribute {
		return schema.StringAttribute{Description: desc, Computed: true}
	}
	num := func(desc string) schema.Int64Attribute {
		return schema.Int64Attribute{Description: desc, Computed: true}
	}
	obj := func(desc string, attrs map[string]schema.Attribute) schema.SingleNestedAttribute {
		return schema.SingleNestedAttribute{Description: desc, Computed: true, Attributes: attrs}
	}
	resp.Schema = schema.Schema{
		Description: "Reads a pipeline by id. Signing secrets are not shown: the server reveals them only at creation.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				Description: "The pipeline's id (pip_...).",
				Required:    true,
				Validators:  []validator.String{idOf("pip")},
			},
			"tenant_id":   str("The owning tenant."),
			"topic_id":    str("The topic the pipeline reads."),
			"name":        str("The pipeline's name."),
			"description": str("Free-form description."),
			"filter": obj("Which events are delivered; null: every event.", map[string]schema.Attribute{
				"event_types": schema.ListAttribute{Description: "CloudEvents types accepted.", Computed: true, ElementType: types.StringType},
				"expression":  str("CEL condition; empty: none."),
			}),
			"transform": obj("How events are reshaped; null: unchanged.", map[string]schema.Attribute{
				"expression": str("CEL expression whose value is delivered."),
			}),
			"destination": schema.ListNestedAttribute{
				Description: "Where events are delivered.",
				Computed:    true,
				NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
					"name": str("The destination's name."),
					"webhook": obj("HTTP delivery; null for other kinds.", map[string]schema.Attribute{
						"url":     str("The endpoint."),
						"headers": schema.MapAttribute{Description: "Extra request headers.", Computed: true, ElementType: types.StringType},
						"timeout": str("Time allowed for one request."),
					}),
					"kafka": obj("Kafka delivery; null for other kinds.", map[string]schema.Attribute{
						"topic": str("Name of the Kafka topic."),
					}),
					"max_in_flight": num("Most deliveries in flight at once."),
					"rate_limit": obj("Token-bucket rate limit; null: unlimited.", map[string]schema.Attribute{
						"per_second": schema.Float64Attribute{Description: "Sustained rate per second.", Computed: true},
						"burst":      num("Bucket size; 0 means max(1, per_second)."),
					}),
				}},
			},
			"retry_policy": obj("When and how failed deliveries are retried.", map[string]schema.Attribute{
				"max_attempts":               num("Attempts in all, the first included."),
				"max_age":                    str("Give up once an event is this old."),
				"initial_backoff":            str("Delay before the first retry."),
				"max_backoff":                str("Largest delay between attempts."),
				"multiplier":                 schema.Float64Attribute{Description: "Growth of the delay per attempt.", Computed: true},
				"jitter":                     str("Randomisation of delays: FULL, EQUAL or NONE."),
				"non_retryable_status_codes": schema.ListAttribute{Description: "HTTP status codes that fail at once.", Computed: true, ElementType: types.Int64Type},
			}),
			"dead_letter_policy": obj("How dead letters are kept.", map[string]schema.Attribute{
				"retention": str("How long the dead-letter topic keeps events."),
			}),
			"ordering":          str("Ordering guarantee: NONE or KEY."),
			"paused":            schema.BoolAttribute{Description: "Whether delivery is stopped.", Computed: true},
			"consumer_group":    str("Kafka consumer group of the pipeline."),
			"dead_letter_topic": str("Kafka topic holding the pipeline's dead letters."),
			"create_time":       str("When the pipeline was created (RFC 3339)."),
			"etag":              str("Version of the pipeline."),
		},
	}
}

func (d *pipelineDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	d.client = clientFrom(req.ProviderData, &resp.Diagnostics)
}

func (d *pipelineDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var id types.String
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, pathID, &id)...)
	if resp.Diagnostics.HasError() {
		return
	}
	p, err := d.client.Pipelines().Get(ctx, id.ValueString())
	if err != nil {
		addAPIError(&resp.Diagnostics, "Reading pipeline "+id.ValueString(), err)
		return
	}
	var m pipelineModel
	m.set(p)
	out := pipelineDataModel{
		ID: m.ID, TenantID: m.TenantID, TopicID: m.TopicID, Name: m.Name, Description: m.Description,
		Filter: m.Filter, Transform: m.Transform, Destinations: m.Destinations, RetryPolicy: m.RetryPolicy,
		DeadLetterPolicy: m.DeadLetterPolicy, Ordering: m.Ordering, Paused: m.Paused,
		ConsumerGroup: m.ConsumerGroup, DeadLetterTopic: m.DeadLetterTopic, CreateTime: m.CreateTime, Etag: m.Etag,
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &out)...)
}
