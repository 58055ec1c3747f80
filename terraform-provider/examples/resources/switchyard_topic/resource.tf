resource "switchyard_topic" "orders" {
  tenant_id   = switchyard_tenant.acme.id
  name        = "orders"
  description = "Order lifecycle events"
  partitions  = 16
  retention   = "168h"
}
