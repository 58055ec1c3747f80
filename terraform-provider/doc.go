// Package provider is the Terraform provider for Switchyard, built on
// terraform-plugin-framework over the SDK's admin client. It is a module of
// its own so that Terraform's dependencies stay out of the server and the SDK.
package provider
