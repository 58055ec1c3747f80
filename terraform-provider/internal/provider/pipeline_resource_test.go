package provider

import (
	"context"
	"fmt"
	"regexp"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"

	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
)

// baseConfig is a region, a tenant and a topic for pipelines and keys.
const baseConfig = `
resource "switchyard_region" "r" {
  name          = "local"
  kafka_brokers = ["127.0.0.1:9092"]
}

resource "switchyard_tenant" "t" {
  name              = "acme"
  default_region_id = switchyard_region.r.id
}

resource "switchyard_topic" "orders" {
  tenant_id = switchyard_tenant.t.id
  name      = "orders"
}
`

// fullPipeline sets every optional attribute and block of a pipeline.
const fullPipeline = `
resource "switchyard_pipeline" "p" {
  tenant_id   = switchyard_tenant.t.id
  topic_id    = switchyard_topic.orders.id
  name        = "orders-to-billing"
  description = "%s"
  filter = {
    event_types = ["order.*", "refund.created"]
    expression  = "data.total > 100"
  }
  transform = {
    expression = "{\"id\": event.id, \"total\": data.total}"
  }
  destination {
    name = "billing"
    webhook = {
      url     = "https://billing.example.com/hooks"
      headers = { "X-Api-Key" = "k1" }
      timeout = "30s"
    }
    max_in_flight = 4
    rate_limit = {
      per_second = 2.5
      burst      = 5
    }
  }
  destination {
    name  = "audit"
    kafka = { topic = "audit.orders" }
  }
  retry_policy = {
    max_attempts               = 5
    max_age                    = "12h"
    initial_backoff            = "1s"
    max_backoff                = "90m"
    multiplier                 = 3
    jitter                     = "EQUAL"
    non_retryable_status_codes = [400, 410]
  }
  dead_letter_policy = {
    retention = "72h"
  }
  ordering = "KEY"
  paused   = %t
}
`

// TestAccPipeline covers switchyard_pipeline with every optional block set:
// an empty plan after apply, in-place update (including pause), the signing
// secret kept from creation on, import, drift and destroy; and the
// pipeline data sources.
func TestAccPipeline(t *testing.T) {
	cp := startControlPlane(t)
	ctx := context.Background()
	v1cfg := cp.config(baseConfig + fmt.Sprintf(fullPipeline, "first", false))
	v2cfg := cp.config(baseConfig + fmt.Sprintf(fullPipeline, "second", true) + `
data "switchyard_pipeline" "p" {
  id = switchyard_pipeline.p.id
}

data "switchyard_pipelines" "all" {
  tenant_id  = switchyard_tenant.t.id
  topic_id   = switchyard_topic.orders.id
  depends_on = [switchyard_pipeline.p]
}
`)
	var pipelineID, secret string
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6Factories,
		CheckDestroy: checkGone("switchyard_pipeline", func(ctx context.Context, id string) error {
			_, err := cp.client.Pipelines().Get(ctx, id)
			return err
		}),
		Steps: []resource.TestStep{
			{
				Config: v1cfg,
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestMatchResourceAttr("switchyard_pipeline.p", "id", regexp.MustCompile(`^pip_`)),
					resource.TestMatchResourceAttr("switchyard_pipeline.p", "signing_secrets.billing", regexp.MustCompile(`^whsec_`)),
					resource.TestCheckNoResourceAttr("switchyard_pipeline.p", "signing_secrets.audit"),
					resource.TestCheckResourceAttr("switchyard_pipeline.p", "destination.1.max_in_flight", "16"),
					resource.TestCheckResourceAttr("switchyard_pipeline.p", "retry_policy.max_backoff", "90m"),
					resource.TestCheckResourceAttr("switchyard_topic.orders", "partitions", "8"),
					resource.TestCheckResourceAttr("switchyard_topic.orders", "retention", "168h"),
					func(s *terraform.State) error {
						rs := s.RootModule().Resources["switchyard_pipeline.p"]
						pipelineID, secret = rs.Primary.ID, rs.Primary.Attributes["signing_secrets.billing"]
						p, err := cp.client.Pipelines().Get(ctx, pipelineID)
						if err != nil {
							return err
						}
						if got := p.GetRetryPolicy().GetMaxBackoff().AsDuration().String(); got != "1h30m0s" {
							t.Errorf("server max_backoff = %s", got)
						}
						if p.GetOrdering() != v1.OrderingMode_ORDERING_MODE_KEY || len(p.GetDestinations()) != 2 {
							t.Errorf("server pipeline = %v", p)
						}
						return nil
					},
				),
			},
			{Config: v1cfg, PlanOnly: true},
			{
				Config: v2cfg,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("switchyard_pipeline.p", plancheck.ResourceActionUpdate),
				}},
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckResourceAttr("switchyard_pipeline.p", "description", "second"),
					resource.TestCheckResourceAttr("switchyard_pipeline.p", "paused", "true"),
					func(s *terraform.State) error {
						if got := s.RootModule().Resources["switchyard_pipeline.p"].Primary.Attributes["signing_secrets.billing"]; got != secret {
							t.Errorf("signing secret changed on update: %q, was %q", got, secret)
						}
						return nil
					},
					resource.TestCheckResourceAttr("data.switchyard_pipeline.p", "destination.0.webhook.url", "https://billing.example.com/hooks"),
					resource.TestCheckResourceAttr("data.switchyard_pipeline.p", "retry_policy.jitter", "EQUAL"),
					resource.TestCheckResourceAttr("data.switchyard_pipelines.all", "pipelines.#", "1"),
					resource.TestCheckResourceAttrPair("data.switchyard_pipelines.all", "pipelines.0.id", "switchyard_pipeline.p", "id"),
				),
			},
			{Config: v2cfg, PlanOnly: true},
			{
				ResourceName:      "switchyard_pipeline.p",
				ImportState:       true,
				ImportStateVerify: true,
				// Secrets are not readable after creation; an import has no
				// configured spelling to keep, so it writes 90m as 1h30m.
				ImportStateVerifyIgnore: []string{"signing_secrets", "retry_policy.max_backoff"},
			},
			{
				// Drift: a change made through the API is planned away.
				PreConfig: func() {
					if _, err := cp.client.Pipelines().Update(ctx, pipelineID, func(p *v1.Pipeline) error {
						p.RetryPolicy.MaxAttempts = 99
						return nil
					}); err != nil {
						t.Fatal(err)
					}
				},
				Config: v2cfg,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("switchyard_pipeline.p", plancheck.ResourceActionUpdate),
				}},
				Check: resource.TestCheckResourceAttr("switchyard_pipeline.p", "retry_policy.max_attempts", "5"),
			},
			{
				// Drift: a pipeline deleted through the API is created again.
				PreConfig: func() {
					if err := cp.client.Pipelines().Delete(ctx, pipelineID); err != nil {
						t.Fatal(err)
					}
				},
				Config: v2cfg,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("switchyard_pipeline.p", plancheck.ResourceActionCreate),
				}},
				Check: resource.TestMatchResourceAttr("switchyard_pipeline.p", "signing_secrets.billing", regexp.MustCompile(`^whsec_`)),
			},
		},
	})
}

// TestAccPipelineDefaults checks that a minimal pipeline gets the server's
// defaults in the state and plans empty afterwards.
func TestAccPipelineDefaults(t *testing.T) {
	cp := startControlPlane(t)
	cfg := cp.config(baseConfig + `
resource "switchyard_pipeline" "p" {
  tenant_id = switchyard_tenant.t.id
  topic_id  = switchyard_topic.orders.id
  name      = "minimal"
  destination {
    name    = "hook"
    webhook = { url = "http://127.0.0.1:9000/hook" }
  }
}
`)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6Factories,
		Steps: []resource.TestStep{
			{
				Config: cfg,
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckResourceAttr("switchyard_pipeline.p", "ordering", "NONE"),
					resource.TestCheckResourceAttr("switchyard_pipeline.p", "retry_policy.max_attempts", "10"),
					resource.TestCheckResourceAttr("switchyard_pipeline.p", "retry_policy.max_age", "24h"),
					resource.TestCheckResourceAttr("switchyard_pipeline.p", "retry_policy.initial_backoff", "5s"),
					resource.TestCheckResourceAttr("switchyard_pipeline.p", "retry_policy.max_backoff", "2h"),
					resource.TestCheckResourceAttr("switchyard_pipeline.p", "retry_policy.multiplier", "2"),
					resource.TestCheckResourceAttr("switchyard_pipeline.p", "retry_policy.jitter", "FULL"),
					resource.TestCheckResourceAttr("switchyard_pipeline.p", "retry_policy.non_retryable_status_codes.0", "410"),
					resource.TestCheckResourceAttr("switchyard_pipeline.p", "dead_letter_policy.retention", "336h"),
					resource.TestCheckResourceAttr("switchyard_pipeline.p", "destination.0.webhook.timeout", "10s"),
					resource.TestCheckResourceAttr("switchyard_pipeline.p", "destination.0.max_in_flight", "16"),
				),
			},
			{Config: cfg, PlanOnly: true},
		},
	})
}

// TestAccInvalidConfig checks that configurations the API would refuse fail
// at plan, naming the attribute.
func TestAccInvalidConfig(t *testing.T) {
	cp := startControlPlane(t)
	pipeline := func(dest, extra string) string {
		return cp.config(fmt.Sprintf(`
resource "switchyard_pipeline" "p" {
  tenant_id = "ten_00000000000000000000000000"
  topic_id  = "top_00000000000000000000000000"
  name      = "p"
  destination {
    name = "d"
    %s
  }
  %s
}
`, dest, extra))
	}
	hook := `webhook = { url = "https://example.com" }`
	cases := []struct {
		name, config string
		want         *regexp.Regexp
	}{
		{"bad url scheme", pipeline(`webhook = { url = "ftp://example.com" }`, ""), regexp.MustCompile(`destination\[0\]\.webhook\.url`)},
		{"negative retry", pipeline(hook, `retry_policy = { max_attempts = -1 }`), regexp.MustCompile(`retry_policy\.max_attempts`)},
		{"unknown enum", pipeline(hook, `ordering = "RANDOM"`), regexp.MustCompile(`(?s)ordering.*"RANDOM" is not one of NONE, KEY`)},
		{"unknown jitter", pipeline(hook, `retry_policy = { jitter = "SOME" }`), regexp.MustCompile(`retry_policy\.jitter`)},
		{"bad duration", pipeline(hook, `dead_letter_policy = { retention = "forever" }`), regexp.MustCompile(`dead_letter_policy\.retention`)},
		{"two kinds", pipeline(hook+"\n    kafka = { topic = \"t\" }", ""), regexp.MustCompile(`destination\[0\]: set exactly one of webhook or kafka`)},
		{"bad slug", cp.config(`resource "switchyard_tenant" "t" { name = "Not_A_Slug" }`), regexp.MustCompile(`(?s)Invalid name.*"Not_A_Slug"`)},
		{"api key role", cp.config(`
resource "switchyard_api_key" "k" {
  tenant_id = "ten_00000000000000000000000000"
  name      = "k"
  role      = "owner"
}`), regexp.MustCompile(`(?s)Invalid role.*"owner" is not one of admin, producer`)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resource.Test(t, resource.TestCase{
				ProtoV6ProviderFactories: protoV6Factories,
				Steps:                    []resource.TestStep{{Config: c.config, PlanOnly: true, ExpectError: c.want}},
			})
		})
	}
}
