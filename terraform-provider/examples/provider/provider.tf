provider "switchyard" {
  endpoint = "http://127.0.0.1:8080" # or SWITCHYARD_ENDPOINT
  # token: set SWITCHYARD_TOKEN rather than writing it here.
}
