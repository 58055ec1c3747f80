data "switchyard_tenant" "acme" {
  name = "acme" # or id = "ten_..."
}
