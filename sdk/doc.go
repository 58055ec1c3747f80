// Package sdk is the Go SDK of Switchyard, an event orchestration platform.
//
// The generated API lives in [github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1]
// (messages) and its switchyardv1connect subpackage (Connect clients and
// handlers). Higher-level producer, admin and webhook packages build on it.
package sdk
