package provider

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/float64default"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64default"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/listdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/mapdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/mapplanmodifier"
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
	_ resource.ResourceWithConfigure      = (*pipelineResource)(nil)
	_ resource.ResourceWithImportState    = (*pipelineResource)(nil)
	_ resource.ResourceWithValidateConfig = (*pipelineResource)(nil)
)

// Server defaults of a pipeline.
const (
	defaultMaxAttempts      = 10
	defaultMaxAge           = "24h"
	defaultInitialBackoff   = "5s"
	defaultMaxBackoff       = "2h"
	defaultMultiplier       = 2.0
	defaultJitter           = "FULL"
	defaultNonRetryable     = 410
	defaultDeadLetterRetain = "336h"
	defaultWebhookTimeout   = "10s"
	defaultMaxInFlight      = 16
	defaultOrdering         = "NONE"
)

func newPipelineResource() resource.Resource { return &pipelineResource{} }

// pipelineResource is switchyard_pipeline.
type pipelineResource struct{ client *switchyard.Client }

type pipelineModel struct {
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
	SigningSecrets   types.Map              `tfsdk:"signing_secrets"`
	ConsumerGroup    types.String           `tfsdk:"consumer_group"`
	DeadLetterTopic  types.String           `tfsdk:"dead_letter_topic"`
	CreateTime       types.String           `tfsdk:"create_time"`
	Etag             types.String           `tfsdk:"etag"`
}

type filterModel struct {
	EventTypes types.List   `tfsdk:"event_types"`
	Expression types.String `tfsdk:"expression"`
}

type transformModel struct {
	Expression types.String `tfsdk:"expression"`
}

type destinationModel struct {
	Name        types.String    `tfsdk:"name"`
	Webhook     *webhookModel   `tfsdk:"webhook"`
	Kafka       *kafkaModel     `tfsdk:"kafka"`
	MaxInFlight types.Int64     `tfsdk:"max_in_flight"`
	RateLimit   *rateLimitModel `tfsdk:"rate_limit"`
}

type webhookModel struct {
	URL     types.String `tfsdk:"url"`
	Headers types.Map    `tfsdk:"headers"`
	Timeout types.String `tfsdk:"timeout"`
}

type kafkaModel struct {
	Topic types.String `tfsdk:"topic"`
}

type rateLimitModel struct {
	PerSecond types.Float64 `tfsdk:"per_second"`
	Burst     types.Int64   `tfsdk:"burst"`
}

type retryPolicyModel struct {
	MaxAttempts             types.Int64   `tfsdk:"max_attempts"`
	MaxAge                  types.String  `tfsdk:"max_age"`
	InitialBackoff          types.String  `tfsdk:"initial_backoff"`
	MaxBackoff              types.String  `tfsdk:"max_backoff"`
	Multiplier              types.Float64 `tfsdk:"multiplier"`
	Jitter                  types.String  `tfsdk:"jitter"`
	NonRetryableStatusCodes types.List    `tfsdk:"non_retryable_status_codes"`
}

type deadLetterPolicyModel struct {
	Retention types.String `tfsdk:"retention"`
}

func defaultNonRetryableList() types.List {
	return types.ListValueMust(types.Int64Type, []attr.Value{types.Int64Value(defaultNonRetryable)})
}

func (r *pipelineResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_pipeline"
}

func (r *pipelineResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	durationAttr := func(desc, def string, lo, hi time.Duration) schema.StringAttribute {
		return schema.StringAttribute{
			Description: desc + " Default " + def + ".",
			Optional:    true,
			Computed:    true,
			Default:     stringdefault.StaticString(def),
			Validators:  []validator.String{durationBetween(lo, hi)},
		}
	}
	retryTypes := map[string]attr.Type{
		"max_attempts": types.Int64Type, "max_age": types.StringType, "initial_backoff": types.StringType,
		"max_backoff": types.StringType, "multiplier": types.Float64Type, "jitter": types.StringType,
		"non_retryable_status_codes": types.ListType{ElemType: types.Int64Type},
	}
	resp.Schema = schema.Schema{
		Description: "A pipeline: reads one topic, filters and transforms its events and delivers them to destinations. " +
			"Webhook signing secrets are known only when the pipeline is created and are kept in the state. Import by id (pip_...).",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				Description:   "Server-assigned id, pip_ followed by 26 characters.",
				Computed:      true,
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"tenant_id": schema.StringAttribute{
				Description:   "The owning tenant (ten_...). Changing it replaces the pipeline.",
				Required:      true,
				Validators:    []validator.String{idOf("ten")},
				PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplace()},
			},
			"topic_id": schema.StringAttribute{
				Description:   "The topic the pipeline reads (top_...). Changing it replaces the pipeline.",
				Required:      true,
				Validators:    []validator.String{idOf("top")},
				PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplace()},
			},
			"name": schema.StringAttribute{
				Description:   "Slug, unique within the tenant. Changing it replaces the pipeline.",
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
			"filter": schema.SingleNestedAttribute{
				Description: "Which events to deliver; unset delivers every event.",
				Optional:    true,
				Attributes: map[string]schema.Attribute{
					"event_types": schema.ListAttribute{
						Description: "CloudEvents types to accept, at most 64; a trailing .* matches a prefix (order.*). Empty: every type.",
						Optional:    true,
						Computed:    true,
						ElementType: types.StringType,
						Default:     listdefault.StaticValue(listOf(nil)),
						Validators:  []validator.List{eachString(matches(eventTypePattern, "must be a CloudEvents type, optionally ending in .*")), listSize(0, 64)},
					},
					"expression": schema.StringAttribute{
						Description: "CEL expression over event and data returning bool, e.g. data.total > 100. Empty: no condition.",
						Optional:    true,
						Computed:    true,
						Default:     stringdefault.StaticString(""),
						Validators:  []validator.String{maxLen(4096)},
					},
				},
			},
			"transform": schema.SingleNestedAttribute{
				Description: "How to reshape each event before delivery; unset delivers it unchanged.",
				Optional:    true,
				Attributes: map[string]schema.Attribute{
					"expression": schema.StringAttribute{
						Description: "CEL expression over event and data whose value becomes the delivered JSON payload.",
						Required:    true,
						Validators:  []validator.String{maxLen(4096)},
					},
				},
			},
			"retry_policy": schema.SingleNestedAttribute{
				Description: "When and how failed deliveries are retried.",
				Optional:    true,
				Computed:    true,
				Default: objectdefault.StaticValue(types.ObjectValueMust(retryTypes, map[string]attr.Value{
					"max_attempts":               types.Int64Value(defaultMaxAttempts),
					"max_age":                    types.StringValue(defaultMaxAge),
					"initial_backoff":            types.StringValue(defaultInitialBackoff),
					"max_backoff":                types.StringValue(defaultMaxBackoff),
					"multiplier":                 types.Float64Value(defaultMultiplier),
					"jitter":                     types.StringValue(defaultJitter),
					"non_retryable_status_codes": defaultNonRetryableList(),
				})),
				Attributes: map[string]schema.Attribute{
					"max_attempts": schema.Int64Attribute{
						Description: "Attempts in all, the first included, 1 to 100. Default 10.",
						Optional:    true,
						Computed:    true,
						Default:     int64default.StaticInt64(defaultMaxAttempts),
						Validators:  []validator.Int64{between(1, 100)},
					},
					"max_age":         durationAttr("Give up once an event is this old, 1s to 336h.", defaultMaxAge, time.Second, 14*24*time.Hour),
					"initial_backoff": durationAttr("Delay before the first retry, 1ms to 24h.", defaultInitialBackoff, time.Millisecond, 24*time.Hour),
					"max_backoff":     durationAttr("Largest delay between attempts, 1ms to 24h, not less than initial_backoff.", defaultMaxBackoff, time.Millisecond, 24*time.Hour),
					"multiplier": schema.Float64Attribute{
						Description: "Growth of the delay per attempt, 1 to 10. Default 2.",
						Optional:    true,
						Computed:    true,
						Default:     float64default.StaticFloat64(defaultMultiplier),
						Validators:  []validator.Float64{float64Range{lo: 1, hi: 10}},
					},
					"jitter": schema.StringAttribute{
						Description: "Randomisation of delays: FULL (uniform in [0, backoff]), EQUAL ([backoff/2, backoff]) or NONE. Default FULL.",
						Optional:    true,
						Computed:    true,
						Default:     stringdefault.StaticString(defaultJitter),
						Validators:  []validator.String{oneOf("FULL", "EQUAL", "NONE")},
					},
					"non_retryable_status_codes": schema.ListAttribute{
						Description: "HTTP status codes (400 to 599) that fail at once, without retry. Default [410].",
						Optional:    true,
						Computed:    true,
						ElementType: types.Int64Type,
						Default:     listdefault.StaticValue(defaultNonRetryableList()),
						Validators:  []validator.List{statusCodes{}},
					},
				},
			},
			"dead_letter_policy": schema.SingleNestedAttribute{
				Description: "How dead letters (events whose retries are exhausted) are kept.",
				Optional:    true,
				Computed:    true,
				Default: objectdefault.StaticValue(types.ObjectValueMust(map[string]attr.Type{"retention": types.StringType},
					map[string]attr.Value{"retention": types.StringValue(defaultDeadLetterRetain)})),
				Attributes: map[string]schema.Attribute{
					"retention": durationAttr("How long the dead-letter topic keeps events, 1h to 8760h.", defaultDeadLetterRetain, time.Hour, 365*24*time.Hour),
				},
			},
			"ordering": schema.StringAttribute{
				Description: "Ordering guarantee: NONE (full parallelism) or KEY (in order per partition key). Default NONE.",
				Optional:    true,
				Computed:    true,
				Default:     stringdefault.StaticString(defaultOrdering),
				Validators:  []validator.String{oneOf("NONE", "KEY")},
			},
			"paused": schema.BoolAttribute{
				Description: "Delivery is stopped while paused; events wait in Kafka. Default false.",
				Optional:    true,
				Computed:    true,
				Default:     booldefault.StaticBool(false),
			},
			"signing_secrets": schema.MapAttribute{
				Description:   "Signing secret of each webhook destination, by destination name. Known only when the pipeline is created; kept in the state. Webhook destinations added later get a secret the server does not show again (rotate it to learn it).",
				Computed:      true,
				Sensitive:     true,
				ElementType:   types.StringType,
				PlanModifiers: []planmodifier.Map{mapplanmodifier.UseStateForUnknown()},
			},
			"consumer_group": schema.StringAttribute{
				Description:   "Kafka consumer group of the pipeline.",
				Computed:      true,
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"dead_letter_topic": schema.StringAttribute{
				Description:   "Kafka topic holding the pipeline's dead letters.",
				Computed:      true,
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"create_time": schema.StringAttribute{
				Description:   "When the pipeline was created (RFC 3339).",
				Computed:      true,
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"etag": schema.StringAttribute{
				Description: "Version of the pipeline; changes on every update.",
				Computed:    true,
			},
		},
		Blocks: map[string]schema.Block{
			"destination": schema.ListNestedBlock{
				Description: "Where to deliver: 1 to 16 blocks, each with a unique name and exactly one of webhook or kafka.",
				Validators:  []validator.List{listSize(1, 16)},
				NestedObject: schema.NestedBlockObject{
					Attributes: map[string]schema.Attribute{
						"name": schema.StringAttribute{
							Description: "Slug naming the destination within the pipeline.",
							Required:    true,
							Validators:  []validator.String{slug()},
						},
						"webhook": schema.SingleNestedAttribute{
							Description: "Deliver by HTTP POST, signed per the Standard Webhooks specification.",
							Optional:    true,
							Attributes: map[string]schema.Attribute{
								"url": schema.StringAttribute{
									Description: "The endpoint, http or https.",
									Required:    true,
									Validators:  []validator.String{httpURL(), maxLen(2048)},
								},
								"headers": schema.MapAttribute{
									Description: "Extra request headers, e.g. an API key of the receiver.",
									Optional:    true,
									Computed:    true,
									ElementType: types.StringType,
									Default:     mapdefault.StaticValue(types.MapValueMust(types.StringType, map[string]attr.Value{})),
								},
								"timeout": durationAttr("Time allowed for one request, 100ms to 2m.", defaultWebhookTimeout, 100*time.Millisecond, 2*time.Minute),
							},
						},
						"kafka": schema.SingleNestedAttribute{
							Description: "Produce to a Kafka topic in the pipeline's region, keyed by partition key.",
							Optional:    true,
							Attributes: map[string]schema.Attribute{
								"topic": schema.StringAttribute{
									Description: "Name of the Kafka topic.",
									Required:    true,
									Validators:  []validator.String{matches(kafkaTopicPattern, "must be 1 to 249 letters, digits, dots, underscores and dashes")},
								},
							},
						},
						"max_in_flight": schema.Int64Attribute{
							Description: "Most deliveries in flight at once to this destination, 1 to 1000. Default 16.",
							Optional:    true,
							Computed:    true,
							Default:     int64default.StaticInt64(defaultMaxInFlight),
							Validators:  []validator.Int64{between(1, 1000)},
						},
						"rate_limit": schema.SingleNestedAttribute{
							Description: "Token-bucket rate limit; unset means unlimited.",
							Optional:    true,
							Attributes: map[string]schema.Attribute{
								"per_second": schema.Float64Attribute{
									Description: "Sustained rate in requests per second, above 0 and at most 100000.",
									Required:    true,
									Validators:  []validator.Float64{float64Range{lo: 0, hi: 100000, exclusive: true}},
								},
								"burst": schema.Int64Attribute{
									Description: "Bucket size, 0 to 100000; 0 means max(1, per_second). Default 0.",
									Optional:    true,
									Computed:    true,
									Default:     int64default.StaticInt64(0),
									Validators:  []validator.Int64{between(0, 100000)},
								},
							},
						},
					},
				},
			},
		},
	}
}

// ValidateConfig checks what a schema cannot say: each destination has
// exactly one kind, and destination names are unique.
func (r *pipelineResource) ValidateConfig(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	var dests types.List
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("destination"), &dests)...)
	if resp.Diagnostics.HasError() || dests.IsNull() || dests.IsUnknown() {
		return
	}
	seen := map[string]bool{}
	for i, e := range dests.Elements() {
		obj, ok := e.(types.Object)
		if !ok || obj.IsNull() || obj.IsUnknown() {
			continue
		}
		p := path.Root("destination").AtListIndex(i)
		attrs := obj.Attributes()
		webhook, _ := attrs["webhook"].(types.Object)
		kafka, _ := attrs["kafka"].(types.Object)
		if !webhook.IsUnknown() && !kafka.IsUnknown() && webhook.IsNull() == kafka.IsNull() {
			resp.Diagnostics.AddAttributeError(p, "Invalid destination",
				fmt.Sprintf("%s: set exactly one of webhook or kafka", p))
		}
		name, _ := attrs["name"].(types.String)
		if name.IsNull() || name.IsUnknown() {
			continue
		}
		if seen[name.ValueString()] {
			resp.Diagnostics.AddAttributeError(p.AtName("name"), "Invalid destination name",
				fmt.Sprintf("%s: destination names must be unique; %q appears twice", p.AtName("name"), name.ValueString()))
		}
		seen[name.ValueString()] = true
	}
}

func (r *pipelineResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.client = clientFrom(req.ProviderData, &resp.Diagnostics)
}

// fill sets p's mutable fields from m.
func (m *pipelineModel) fill(p *v1.Pipeline, diags *diag.Diagnostics) {
	p.Description = m.Description.ValueString()
	p.Filter = nil
	if f := m.Filter; f != nil {
		p.Filter = &v1.Filter{EventTypes: stringsOf(f.EventTypes), Expression: f.Expression.ValueString()}
	}
	p.Transform = nil
	if t := m.Transform; t != nil {
		p.Transform = &v1.Transform{Expression: t.Expression.ValueString()}
	}
	p.Destinations = nil
	for i, d := range m.Destinations {
		dp := path.Root("destination").AtListIndex(i)
		out := &v1.Destination{Name: d.Name.ValueString(), MaxInFlight: u32(d.MaxInFlight)}
		switch {
		case d.Webhook != nil:
			wh := &v1.WebhookDestination{Url: d.Webhook.URL.ValueString(),
				Timeout: durationProto(d.Webhook.Timeout, dp.AtName("webhook").AtName("timeout"), diags)}
			if !d.Webhook.Headers.IsNull() && !d.Webhook.Headers.IsUnknown() {
				wh.Headers = map[string]string{}
				for k, v := range d.Webhook.Headers.Elements() {
					if s, ok := v.(types.String); ok {
						wh.Headers[k] = s.ValueString()
					}
				}
			}
			out.Kind = &v1.Destination_Webhook{Webhook: wh}
		case d.Kafka != nil:
			out.Kind = &v1.Destination_Kafka{Kafka: &v1.KafkaDestination{Topic: d.Kafka.Topic.ValueString()}}
		}
		if rl := d.RateLimit; rl != nil {
			out.RateLimit = &v1.RateLimit{PerSecond: rl.PerSecond.ValueFloat64(), Burst: u32(rl.Burst)}
		}
		p.Destinations = append(p.Destinations, out)
	}
	p.RetryPolicy = nil
	if rp := m.RetryPolicy; rp != nil {
		rpp := path.Root("retry_policy")
		p.RetryPolicy = &v1.RetryPolicy{
			MaxAttempts:    u32(rp.MaxAttempts),
			MaxAge:         durationProto(rp.MaxAge, rpp.AtName("max_age"), diags),
			InitialBackoff: durationProto(rp.InitialBackoff, rpp.AtName("initial_backoff"), diags),
			MaxBackoff:     durationProto(rp.MaxBackoff, rpp.AtName("max_backoff"), diags),
			Multiplier:     rp.Multiplier.ValueFloat64(),
			Jitter:         v1.Jitter(enumValue(v1.Jitter_value, "JITTER_", rp.Jitter.ValueString())),
		}
		if !rp.NonRetryableStatusCodes.IsNull() && !rp.NonRetryableStatusCodes.IsUnknown() {
			for _, e := range rp.NonRetryableStatusCodes.Elements() {
				if n, ok := e.(types.Int64); ok {
					p.RetryPolicy.NonRetryableStatusCodes = append(p.RetryPolicy.NonRetryableStatusCodes, u32(n))
				}
			}
		}
	}
	p.DeadLetterPolicy = nil
	if dl := m.DeadLetterPolicy; dl != nil {
		p.DeadLetterPolicy = &v1.DeadLetterPolicy{Retention: durationProto(dl.Retention, path.Root("dead_letter_policy").AtName("retention"), diags)}
	}
	p.Ordering = v1.OrderingMode(enumValue(v1.OrderingMode_value, "ORDERING_MODE_", m.Ordering.ValueString()))
}

// set sets m from the server's p, keeping the spelling of durations that are
// equal to those of m.
func (m *pipelineModel) set(p *v1.Pipeline) {
	m.ID = types.StringValue(p.GetId())
	m.TenantID = types.StringValue(p.GetTenantId())
	m.TopicID = types.StringValue(p.GetTopicId())
	m.Name = types.StringValue(p.GetName())
	m.Description = types.StringValue(p.GetDescription())
	m.Filter = nil
	if f := p.GetFilter(); f != nil {
		m.Filter = &filterModel{EventTypes: listOf(f.GetEventTypes()), Expression: types.StringValue(f.GetExpression())}
	}
	m.Transform = nil
	if t := p.GetTransform(); t != nil {
		m.Transform = &transformModel{Expression: types.StringValue(t.GetExpression())}
	}
	prior := map[string]destinationModel{}
	for _, d := range m.Destinations {
		prior[d.Name.ValueString()] = d
	}
	m.Destinations = nil
	for _, d := range p.GetDestinations() {
		was := prior[d.GetName()]
		out := destinationModel{Name: types.StringValue(d.GetName()), MaxInFlight: i64(d.GetMaxInFlight())}
		if wh := d.GetWebhook(); wh != nil {
			priorTimeout := types.StringNull()
			if was.Webhook != nil {
				priorTimeout = was.Webhook.Timeout
			}
			headers := map[string]attr.Value{}
			for k, v := range wh.GetHeaders() {
				headers[k] = types.StringValue(v)
			}
			out.Webhook = &webhookModel{URL: types.StringValue(wh.GetUrl()),
				Headers: types.MapValueMust(types.StringType, headers),
				Timeout: durationValue(priorTimeout, wh.GetTimeout())}
		}
		if k := d.GetKafka(); k != nil {
			out.Kafka = &kafkaModel{Topic: types.StringValue(k.GetTopic())}
		}
		if rl := d.GetRateLimit(); rl != nil {
			out.RateLimit = &rateLimitModel{PerSecond: types.Float64Value(rl.GetPerSecond()), Burst: i64(rl.GetBurst())}
		}
		m.Destinations = append(m.Destinations, out)
	}
	priorRetry := m.RetryPolicy
	if priorRetry == nil {
		priorRetry = &retryPolicyModel{MaxAge: types.StringNull(), InitialBackoff: types.StringNull(), MaxBackoff: types.StringNull()}
	}
	rp := p.GetRetryPolicy()
	codes := make([]attr.Value, 0, len(rp.GetNonRetryableStatusCodes()))
	for _, c := range rp.GetNonRetryableStatusCodes() {
		codes = append(codes, i64(c))
	}
	m.RetryPolicy = &retryPolicyModel{
		MaxAttempts:             i64(rp.GetMaxAttempts()),
		MaxAge:                  durationValue(priorRetry.MaxAge, rp.GetMaxAge()),
		InitialBackoff:          durationValue(priorRetry.InitialBackoff, rp.GetInitialBackoff()),
		MaxBackoff:              durationValue(priorRetry.MaxBackoff, rp.GetMaxBackoff()),
		Multiplier:              types.Float64Value(rp.GetMultiplier()),
		Jitter:                  types.StringValue(enumName(rp.GetJitter().String(), "JITTER_")),
		NonRetryableStatusCodes: types.ListValueMust(types.Int64Type, codes),
	}
	priorDL := types.StringNull()
	if m.DeadLetterPolicy != nil {
		priorDL = m.DeadLetterPolicy.Retention
	}
	m.DeadLetterPolicy = &deadLetterPolicyModel{Retention: durationValue(priorDL, p.GetDeadLetterPolicy().GetRetention())}
	m.Ordering = types.StringValue(enumName(p.GetOrdering().String(), "ORDERING_MODE_"))
	m.Paused = types.BoolValue(p.GetPaused())
	m.ConsumerGroup = types.StringValue(p.GetConsumerGroup())
	m.DeadLetterTopic = types.StringValue(p.GetDeadLetterTopic())
	m.CreateTime = timeValue(m.CreateTime, p.GetCreateTime())
	m.Etag = types.StringValue(p.GetEtag())
	if m.SigningSecrets.IsUnknown() {
		m.SigningSecrets = types.MapNull(types.StringType)
	}
}

// setPaused pauses or resumes p to match want, returning the pipeline after.
func (r *pipelineResource) setPaused(ctx context.Context, p *v1.Pipeline, want bool) (*v1.Pipeline, error) {
	if p.GetPaused() == want {
		return p, nil
	}
	if want {
		return r.client.Pipelines().Pause(ctx, p.GetId())
	}
	return r.client.Pipelines().Resume(ctx, p.GetId())
}

func (r *pipelineResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var m pipelineModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	p := &v1.Pipeline{Name: m.Name.ValueString(), TopicId: m.TopicID.ValueString()}
	m.fill(p, &resp.Diagnostics)
	if resp.Diagnostics.HasError() {
		return
	}
	out, err := r.client.Pipelines().Create(ctx, m.TenantID.ValueString(), p)
	if err != nil {
		addAPIError(&resp.Diagnostics, "Creating pipeline "+m.Name.ValueString(), err)
		return
	}
	secrets := map[string]attr.Value{}
	for _, d := range out.GetDestinations() {
		if s := d.GetWebhook().GetSigningSecret(); s != "" {
			secrets[d.GetName()] = types.StringValue(s)
		}
	}
	m.SigningSecrets = types.MapValueMust(types.StringType, secrets)
	// Save what exists before pausing, so that a failure leaves it tracked.
	paused := m.Paused.ValueBool()
	m.set(out)
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
	if out, err = r.setPaused(ctx, out, paused); err != nil {
		addAPIError(&resp.Diagnostics, "Pausing pipeline "+out.GetId(), err)
		return
	}
	m.set(out)
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

func (r *pipelineResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var m pipelineModel
	out, ok := readObject(ctx, req, resp, &m, "pipeline", func(m *pipelineModel) string { return m.ID.ValueString() }, r.client.Pipelines().Get)
	if !ok {
		return
	}
	m.set(out)
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

func (r *pipelineResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var m, state pipelineModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &m)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	id := state.ID.ValueString()
	out, err := r.client.Pipelines().Update(ctx, id, func(p *v1.Pipeline) error {
		m.fill(p, &resp.Diagnostics)
		if resp.Diagnostics.HasError() {
			return fmt.Errorf("invalid configuration")
		}
		return nil
	})
	if resp.Diagnostics.HasError() {
		return
	}
	if err == nil {
		out, err = r.setPaused(ctx, out, m.Paused.ValueBool())
	}
	if err != nil {
		addAPIError(&resp.Diagnostics, "Updating pipeline "+id, err)
		return
	}
	m.SigningSecrets = state.SigningSecrets
	m.CreateTime = state.CreateTime
	m.set(out)
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

func (r *pipelineResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var m pipelineModel
	deleteObject(ctx, req, resp, &m, "pipeline", func(m *pipelineModel) string { return m.ID.ValueString() },
		func(ctx context.Context, id string) error { return r.client.Pipelines().Delete(ctx, id) })
}

func (r *pipelineResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	resource.ImportStatePassthroughID(ctx, path.Root("id"), req, resp)
}
