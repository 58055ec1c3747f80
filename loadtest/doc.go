// Package loadtest holds Switchyard's load generator and benchmark scenarios.
// It is a module of its own so that its dependencies stay out of the server
// and the SDK.
package loadtest
