// Package webhook verifies the webhooks Switchyard delivers, per the
// Standard Webhooks specification (https://www.standardwebhooks.com), and
// decodes the event they carry.
//
// Each request carries webhook-id (the event's id: deduplicate on it),
// webhook-timestamp (Unix seconds) and webhook-signature: one or more
// space-separated "v1,<base64 HMAC-SHA256 of id.timestamp.body>", one per
// signing secret while a secret is being rotated. [Verify] checks them;
// [Middleware] verifies each request of an [http.Handler] and hands it on
// with the event decoded from the CloudEvents ce-* headers.
package webhook
