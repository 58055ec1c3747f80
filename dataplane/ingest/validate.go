package ingest

import (
	"unicode/utf8"

	"buf.build/go/protovalidate"
	"google.golang.org/protobuf/proto"

	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
)

// Limits of the protovalidate rules of Event and PublishRequest
// (proto/switchyard/v1/event.proto and ingest.proto). TestValidationRules
// fails when the rules in the descriptors change, so these stay in step.
const (
	maxIDLen              = 256
	maxSourceLen          = 1024
	maxTypeLen            = 256
	maxSubjectLen         = 1024
	maxDataContentTypeLen = 256
	maxDataSchemaLen      = 1024
	maxExtensions         = 32
	maxExtensionNameLen   = 20
	maxExtensionValueLen  = 1024
	maxDataLen            = 1 << 20
	maxPartitionKeyLen    = 256
	maxTopicRefLen        = 63
	minEvents             = 1
	maxEvents             = 500
	tenantIDLen           = len("ten_") + 26
)

// eventValid reports whether ev passes the protovalidate rules of Event. It
// is the fast path of validation, without reflection or allocation: an event
// it accepts is valid, and one it refuses is checked again by protovalidate,
// which builds the violations (field paths, rule ids and messages). So the
// errors are protovalidate's own; FuzzEventValid proves both agree on which
// events are valid.
func eventValid(ev *v1.Event) bool {
	if !maxChars(ev.GetId(), maxIDLen) ||
		ev.GetSource() == "" || !maxChars(ev.GetSource(), maxSourceLen) ||
		ev.GetType() == "" || !maxChars(ev.GetType(), maxTypeLen) ||
		!maxChars(ev.GetSubject(), maxSubjectLen) ||
		!maxChars(ev.GetDataContentType(), maxDataContentTypeLen) ||
		!maxChars(ev.GetDataSchema(), maxDataSchemaLen) ||
		len(ev.GetData()) > maxDataLen ||
		!maxChars(ev.GetPartitionKey(), maxPartitionKeyLen) {
		return false
	}
	ext := ev.GetExtensions()
	if len(ext) > maxExtensions {
		return false
	}
	for k, v := range ext {
		if !extensionName(k) || !maxChars(v, maxExtensionValueLen) {
			return false
		}
	}
	return true
}

// publishRequestValid reports whether req passes the protovalidate rules of
// PublishRequest, leaving out those of its events (see requestValidator).
// Like eventValid, it is a fast path: protovalidate checks again what it
// refuses.
func publishRequestValid(req *v1.PublishRequest) bool {
	n := len(req.GetEvents())
	return (req.GetTenantId() == "" || tenantIDPattern(req.GetTenantId())) &&
		req.GetTopic() != "" && maxChars(req.GetTopic(), maxTopicRefLen) &&
		n >= minEvents && n <= maxEvents
}

// maxChars reports whether s has at most n characters (code points, as
// protovalidate counts them: an invalid byte is one).
func maxChars(s string, n int) bool {
	return len(s) <= n || utf8.RuneCountInString(s) <= n
}

// extensionName reports whether s matches ^[a-z0-9]{1,20}$.
func extensionName(s string) bool {
	if len(s) == 0 || len(s) > maxExtensionNameLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// tenantIDPattern reports whether s matches ^ten_[0-9a-z]{26}$.
func tenantIDPattern(s string) bool {
	if len(s) != tenantIDLen || s[:4] != "ten_" {
		return false
	}
	for i := 4; i < len(s); i++ {
		if c := s[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// validateEvent applies the protovalidate rules of Event to ev: nil when it
// is valid, else protovalidate's *protovalidate.ValidationError.
func (s *Service) validateEvent(ev *v1.Event) error {
	if eventValid(ev) {
		return nil
	}
	return s.validator.Validate(ev)
}

// requestValidator applies the API's protovalidate rules to requests, except
// the rules of the events of a PublishRequest: those are checked per event
// by the handler, so a bad event fails alone. The rules on the list of
// events itself (how many) still apply.
type requestValidator struct{ v protovalidate.Validator }

// Validate implements protovalidate.Validator.
func (r requestValidator) Validate(msg proto.Message, opts ...protovalidate.ValidationOption) error {
	if req, ok := msg.(*v1.PublishRequest); ok {
		if len(opts) == 0 && publishRequestValid(req) {
			return nil
		}
		opts = append(opts, skipEvents)
	}
	return r.v.Validate(msg, opts...)
}
