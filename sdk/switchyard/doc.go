// Package switchyard is the Go client of Switchyard, an event orchestration
// platform: publish events to a data-plane node, synchronously with
// [Client.Publish] or in batches with a [Producer], and manage tenants,
// regions, topics, pipelines and API keys on the control plane.
//
// A [Client] talks to one Switchyard service: create one with the URL of a
// data-plane node to publish, and one with the URL of the control plane for
// the admin calls ([Client.Tenants], [Client.Topics], ...). Both speak
// Connect by default, or gRPC with [WithGRPC].
//
// # Errors
//
// Every error a call returns for a refusal of the server is an [*Error]; it
// matches the sentinels [ErrNotFound], [ErrAlreadyExists], [ErrConflict],
// [ErrPermissionDenied], [ErrUnauthenticated], [ErrInvalidArgument],
// [ErrResourceExhausted], [ErrFailedPrecondition] and [ErrUnavailable]
// with [errors.Is], and lists the fields a bad request broke with
// [Error.FieldViolations].
//
// # Idempotency
//
// Every event gets its id on the client, a UUIDv7, before it is first sent
// (or keeps the one given with [WithID]). Retries resend the same id, and
// Switchyard uses the id as the idempotency key end to end: a webhook
// receiver sees it as Webhook-Id and deduplicates on it.
package switchyard
