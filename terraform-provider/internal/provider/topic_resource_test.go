package provider

import (
	"context"
	"regexp"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
)

// TestAccTopicAndAPIKey covers switchyard_topic and switchyard_api_key, and
// the tenant and topic data sources: create, empty plan, update in place,
// replacement on a role change, import, drift and destroy.
func TestAccTopicAndAPIKey(t *testing.T) {
	cp := startControlPlane(t)
	ctx := context.Background()
	cfg := func(partitions, role, desc string) string {
		return cp.config(baseConfig + `
resource "switchyard_topic" "audit" {
  tenant_id   = switchyard_tenant.t.id
  name        = "audit"
  description = "` + desc + `"
  partitions  = ` + partitions + `
  retention   = "48h"
}

resource "switchyard_api_key" "k" {
  tenant_id   = switchyard_tenant.t.id
  name        = "ingest"
  description = "` + desc + `"
  role        = "` + role + `"
  topic_ids   = ` + map[string]string{"producer": "[switchyard_topic.audit.id]", "admin": "[]"}[role] + `
}

data "switchyard_tenant" "by_name" {
  name       = "acme"
  depends_on = [switchyard_tenant.t]
}

data "switchyard_topic" "by_name" {
  tenant_id  = switchyard_tenant.t.id
  name       = "audit"
  depends_on = [switchyard_topic.audit]
}
`)
	}
	first, grown, admin := cfg("4", "producer", "one"), cfg("6", "producer", "two"), cfg("6", "admin", "two")
	var topicID, keyID, keySecret string
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6Factories,
		CheckDestroy: func(s *terraform.State) error {
			if err := checkGone("switchyard_api_key", func(ctx context.Context, id string) error {
				_, err := cp.client.APIKeys().Get(ctx, id)
				return err
			})(s); err != nil {
				return err
			}
			return checkGone("switchyard_topic", func(ctx context.Context, id string) error {
				_, err := cp.client.Topics().Get(ctx, id)
				return err
			})(s)
		},
		Steps: []resource.TestStep{
			{
				Config: first,
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckResourceAttr("switchyard_topic.audit", "retention", "48h"),
					resource.TestCheckResourceAttrPair("switchyard_topic.audit", "region_id", "switchyard_region.r", "id"),
					resource.TestMatchResourceAttr("switchyard_api_key.k", "secret", regexp.MustCompile(`^sy_`)),
					resource.TestCheckResourceAttrPair("data.switchyard_tenant.by_name", "id", "switchyard_tenant.t", "id"),
					resource.TestCheckResourceAttrPair("data.switchyard_topic.by_name", "id", "switchyard_topic.audit", "id"),
					resource.TestCheckResourceAttr("data.switchyard_topic.by_name", "partitions", "4"),
					func(s *terraform.State) error {
						topicID, _ = idOfResource(s, "switchyard_topic.audit")
						rs := s.RootModule().Resources["switchyard_api_key.k"]
						keyID, keySecret = rs.Primary.ID, rs.Primary.Attributes["secret"]
						return nil
					},
				),
			},
			{Config: first, PlanOnly: true},
			{
				Config: grown,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("switchyard_topic.audit", plancheck.ResourceActionUpdate),
					plancheck.ExpectResourceAction("switchyard_api_key.k", plancheck.ResourceActionUpdate),
				}},
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckResourceAttr("switchyard_topic.audit", "partitions", "6"),
					func(s *terraform.State) error {
						rs := s.RootModule().Resources["switchyard_api_key.k"]
						if rs.Primary.ID != keyID || rs.Primary.Attributes["secret"] != keySecret {
							t.Errorf("key replaced or secret lost on an in-place update")
						}
						k, err := cp.client.APIKeys().Get(ctx, keyID)
						if err == nil && k.GetDescription() != "two" {
							t.Errorf("server description = %q", k.GetDescription())
						}
						return err
					},
				),
			},
			{Config: grown, PlanOnly: true},
			{ResourceName: "switchyard_topic.audit", ImportState: true, ImportStateVerify: true},
			{ResourceName: "switchyard_api_key.k", ImportState: true, ImportStateVerify: true, ImportStateVerifyIgnore: []string{"secret"}},
			{
				// Fewer partitions cannot be applied in place.
				Config:             cfg("2", "producer", "two"),
				PlanOnly:           true,
				ExpectNonEmptyPlan: true,
				ConfigPlanChecks: resource.ConfigPlanChecks{PostApplyPostRefresh: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("switchyard_topic.audit", plancheck.ResourceActionReplace),
				}},
			},
			{
				Config: admin,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("switchyard_api_key.k", plancheck.ResourceActionDestroyBeforeCreate),
				}},
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckResourceAttr("switchyard_api_key.k", "role", "admin"),
					func(s *terraform.State) error {
						id, err := idOfResource(s, "switchyard_api_key.k")
						if err == nil && id == keyID {
							t.Errorf("role change kept key %s", id)
						}
						return err
					},
				),
			},
			{
				// Drift: a topic deleted through the API is created again.
				PreConfig: func() {
					if err := cp.client.Topics().Delete(ctx, topicID); err != nil {
						t.Fatal(err)
					}
				},
				Config: admin,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("switchyard_topic.audit", plancheck.ResourceActionCreate),
				}},
			},
		},
	})
}
