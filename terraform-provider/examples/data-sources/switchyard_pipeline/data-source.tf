data "switchyard_pipeline" "billing" {
  id = "pip_01j9zq3k4m5n6p7q8r9s0t1v2w"
}
