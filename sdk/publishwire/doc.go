// Package publishwire is the binary Protobuf codec of Switchyard's publish
// path, shared by the ingest service and the Go SDK.
//
// [Codec] is Connect's "proto" codec with a fast path for the two messages
// of every publish, both ways: a PublishRequest or a PublishResponse is
// encoded by hand, without reflection, into the bytes proto.Marshal makes,
// and decoded by hand into one slice of events or results whose strings all
// share one copy of the body, instead of an allocation per message and per
// string. Any other message, and anything unusual (a field the fast path
// does not know, a wire type it does not expect, a string that is not
// UTF-8, a result with an error to encode), goes to protobuf, so results
// and errors are exactly protobuf's; fuzz tests prove both agree.
package publishwire
