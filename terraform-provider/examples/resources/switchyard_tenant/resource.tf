resource "switchyard_tenant" "acme" {
  name              = "acme"
  display_name      = "Acme Corp"
  default_region_id = switchyard_region.eu.id
  quotas = {
    events_per_second = 500
    burst             = 1000
  }
  retention = {
    days = 14
  }
}
