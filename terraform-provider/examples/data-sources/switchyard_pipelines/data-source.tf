data "switchyard_pipelines" "orders" {
  tenant_id = data.switchyard_tenant.acme.id
  topic_id  = data.switchyard_topic.orders.id # optional
}

output "order_pipelines" {
  value = [for p in data.switchyard_pipelines.orders.pipelines : p.name]
}
