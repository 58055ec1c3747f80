package provider

import (
	"context"
	"regexp"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"

	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
)

// TestAccRegionAndTenant covers switchyard_region and switchyard_tenant:
// create with server defaults, an empty plan after apply, in-place update,
// import, drift (changed and deleted behind Terraform's back) and destroy.
func TestAccRegionAndTenant(t *testing.T) {
	cp := startControlPlane(t)
	ctx := context.Background()
	minimal := cp.config(`
resource "switchyard_region" "r" {
  name          = "eu-west-1"
  kafka_brokers = ["kafka-1:9092"]
}

resource "switchyard_tenant" "t" {
  name              = "acme"
  default_region_id = switchyard_region.r.id
}
`)
	updated := cp.config(`
resource "switchyard_region" "r" {
  name          = "eu-west-1"
  display_name  = "Ireland"
  kafka_brokers = ["kafka-1:9092", "kafka-2:9092"]
  status        = "DRAINING"
}

resource "switchyard_tenant" "t" {
  name              = "acme"
  display_name      = "Acme Corp"
  default_region_id = switchyard_region.r.id
  quotas = {
    events_per_second = 50
    max_event_bytes   = 1024
  }
  retention = {
    days          = 7
    drop_payloads = true
  }
}
`)
	var tenantID string
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6Factories,
		CheckDestroy: func(s *terraform.State) error {
			if err := checkGone("switchyard_tenant", func(ctx context.Context, id string) error {
				_, err := cp.client.Tenants().Get(ctx, id)
				return err
			})(s); err != nil {
				return err
			}
			return checkGone("switchyard_region", func(ctx context.Context, id string) error {
				_, err := cp.client.Regions().Get(ctx, id)
				return err
			})(s)
		},
		Steps: []resource.TestStep{
			{
				Config: minimal,
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestMatchResourceAttr("switchyard_region.r", "id", regexp.MustCompile(`^reg_[0-9a-z]{26}$`)),
					resource.TestCheckResourceAttr("switchyard_region.r", "status", "ACTIVE"),
					resource.TestMatchResourceAttr("switchyard_tenant.t", "id", regexp.MustCompile(`^ten_[0-9a-z]{26}$`)),
					resource.TestCheckResourceAttr("switchyard_tenant.t", "quotas.events_per_second", "1000"),
					resource.TestCheckResourceAttr("switchyard_tenant.t", "quotas.burst", "1000"),
					resource.TestCheckResourceAttr("switchyard_tenant.t", "quotas.max_event_bytes", "262144"),
					resource.TestCheckResourceAttr("switchyard_tenant.t", "retention.days", "30"),
					resource.TestCheckResourceAttrSet("switchyard_tenant.t", "create_time"),
					resource.TestCheckResourceAttrSet("switchyard_tenant.t", "etag"),
					func(s *terraform.State) (err error) {
						tenantID, err = idOfResource(s, "switchyard_tenant.t")
						return err
					},
				),
			},
			{Config: minimal, PlanOnly: true},
			{
				Config: updated,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("switchyard_tenant.t", plancheck.ResourceActionUpdate),
					plancheck.ExpectResourceAction("switchyard_region.r", plancheck.ResourceActionUpdate),
				}},
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckResourceAttr("switchyard_region.r", "status", "DRAINING"),
					resource.TestCheckResourceAttr("switchyard_region.r", "kafka_brokers.#", "2"),
					resource.TestCheckResourceAttr("switchyard_tenant.t", "display_name", "Acme Corp"),
					resource.TestCheckResourceAttr("switchyard_tenant.t", "quotas.events_per_second", "50"),
					resource.TestCheckResourceAttr("switchyard_tenant.t", "quotas.burst", "1000"),
					resource.TestCheckResourceAttr("switchyard_tenant.t", "retention.drop_payloads", "true"),
					func(*terraform.State) error {
						got, err := cp.client.Tenants().Get(ctx, tenantID)
						if err != nil {
							return err
						}
						if got.GetQuotas().GetMaxEventBytes() != 1024 || got.GetRetention().GetDays() != 7 {
							t.Errorf("server has quotas %v retention %v", got.GetQuotas(), got.GetRetention())
						}
						return nil
					},
				),
			},
			{Config: updated, PlanOnly: true},
			{ResourceName: "switchyard_tenant.t", ImportState: true, ImportStateVerify: true},
			{ResourceName: "switchyard_region.r", ImportState: true, ImportStateVerify: true},
			{
				// Drift: a change made through the API is planned away.
				PreConfig: func() {
					if _, err := cp.client.Tenants().Update(ctx, tenantID, func(t *v1.Tenant) error {
						t.DisplayName = "changed elsewhere"
						return nil
					}); err != nil {
						t.Fatal(err)
					}
				},
				Config: updated,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("switchyard_tenant.t", plancheck.ResourceActionUpdate),
				}},
				Check: resource.TestCheckResourceAttr("switchyard_tenant.t", "display_name", "Acme Corp"),
			},
			{
				// Drift: a tenant deleted through the API is created again.
				PreConfig: func() {
					if err := cp.client.Tenants().Delete(ctx, tenantID); err != nil {
						t.Fatal(err)
					}
				},
				Config: updated,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("switchyard_tenant.t", plancheck.ResourceActionCreate),
				}},
				Check: func(s *terraform.State) error {
					id, err := idOfResource(s, "switchyard_tenant.t")
					if err == nil && id == tenantID {
						t.Errorf("tenant id %s was not replaced", id)
					}
					return err
				},
			},
		},
	})
}
