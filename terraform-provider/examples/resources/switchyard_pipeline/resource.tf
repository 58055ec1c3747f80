resource "switchyard_pipeline" "billing" {
  tenant_id = switchyard_tenant.acme.id
  topic_id  = switchyard_topic.orders.id
  name      = "orders-to-billing"

  filter = {
    event_types = ["order.*"]
    expression  = "data.total > 100"
  }
  transform = {
    expression = "{\"id\": event.id, \"total\": data.total}"
  }

  destination {
    name = "billing"
    webhook = {
      url     = "https://billing.example.com/hooks/orders"
      headers = { "X-Api-Key" = var.billing_api_key }
      timeout = "30s"
    }
    rate_limit = {
      per_second = 50
    }
  }
  destination {
    name  = "archive"
    kafka = { topic = "archive.orders" }
  }

  retry_policy = {
    max_attempts = 20
    max_age      = "48h"
  }
  ordering = "KEY"
}

# The receiver verifies signatures with this secret.
output "billing_signing_secret" {
  value     = switchyard_pipeline.billing.signing_secrets["billing"]
  sensitive = true
}
