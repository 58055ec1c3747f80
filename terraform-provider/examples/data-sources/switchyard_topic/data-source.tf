data "switchyard_topic" "orders" {
  tenant_id = data.switchyard_tenant.acme.id
  name      = "orders" # or id = "top_..."
}
