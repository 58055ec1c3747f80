resource "switchyard_api_key" "checkout" {
  tenant_id = switchyard_tenant.acme.id
  name      = "checkout-service"
  role      = "producer"
  topic_ids = [switchyard_topic.orders.id]
}

output "checkout_key" {
  value     = switchyard_api_key.checkout.secret
  sensitive = true
}
