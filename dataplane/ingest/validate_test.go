package ingest

import (
	"strconv"
	"strings"
	"testing"

	"buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"buf.build/go/protovalidate"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
)

// TestValidationRules pins the protovalidate rules that eventValid and
// publishRequestValid implement by hand: when a rule in event.proto or
// ingest.proto changes, this fails until the fast paths follow.
func TestValidationRules(t *testing.T) {
	t.Parallel()
	rules := func(m proto.Message) map[string]string {
		got := map[string]string{}
		md := m.ProtoReflect().Descriptor()
		require.Nil(t, proto.GetExtension(md.Options(), validate.E_Message).(*validate.MessageRules),
			"%s has message rules", md.FullName())
		for i := range md.Fields().Len() {
			fd := md.Fields().Get(i)
			fr, _ := proto.GetExtension(fd.Options(), validate.E_Field).(*validate.FieldRules)
			b, err := protojson.Marshal(fr)
			require.NoError(t, err)
			got[string(fd.Name())] = strings.ReplaceAll(string(b), " ", "")
		}
		return got
	}
	require.Equal(t, map[string]string{
		"id":                `{"string":{"maxLen":"256"}}`,
		"source":            `{"string":{"minLen":"1","maxLen":"1024"}}`,
		"type":              `{"string":{"minLen":"1","maxLen":"256"}}`,
		"subject":           `{"string":{"maxLen":"1024"}}`,
		"time":              `{}`,
		"data_content_type": `{"string":{"maxLen":"256"}}`,
		"data_schema":       `{"string":{"maxLen":"1024"}}`,
		"extensions":        `{"map":{"maxPairs":"32","keys":{"string":{"pattern":"^[a-z0-9]{1,20}$"}},"values":{"string":{"maxLen":"1024"}}}}`,
		"data":              `{"bytes":{"maxLen":"1048576"}}`,
		"partition_key":     `{"string":{"maxLen":"256"}}`,
	}, rules(&v1.Event{}))
	require.Equal(t, map[string]string{
		"tenant_id": `{"ignore":"IGNORE_IF_ZERO_VALUE","string":{"pattern":"^ten_[0-9a-z]{26}$"}}`,
		"topic":     `{"string":{"minLen":"1","maxLen":"63"}}`,
		"events":    `{"repeated":{"minItems":"1","maxItems":"500"}}`,
	}, rules(&v1.PublishRequest{}))
}

// stretch repeats s r times (at least once), so the fuzzer reaches the
// length limits from short inputs.
func stretch(s string, r byte) string { return strings.Repeat(s, max(int(r), 1)) }

// zeros backs the payloads of fuzzed events.
var zeros = make([]byte, maxDataLen+1)

// FuzzEventValid proves that the fast path eventValid accepts exactly the
// events protovalidate accepts, and that validateEvent's error is
// protovalidate's.
func FuzzEventValid(f *testing.F) {
	v, err := protovalidate.New()
	require.NoError(f, err)
	s := &Service{validator: v}
	long := func(n int) string { return strings.Repeat("a", n) }
	type seed struct {
		id, source, typ, subject, ct, schema, key, extName, extValue string
		reps                                                         []byte
		nExt                                                         uint8
		dataLen                                                      uint32
		secs                                                         int64
	}
	for _, sd := range []seed{
		{source: "/s", typ: "t"},
		{id: "x", source: "/s", typ: "t", ct: "application/json", extName: "trace", extValue: "1", nExt: 1, dataLen: 64},
		{id: long(256), source: long(1024), typ: long(256), subject: long(1024), ct: long(256), schema: long(1024), key: long(256)},
		{id: long(257), source: "/s", typ: "t"},
		{source: "", typ: "t"},
		{source: "/s", typ: ""},
		{source: "/s", typ: "t", key: "é", reps: []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 255}},
		{source: "/s", typ: "t", key: "\xff", reps: []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 255}},
		{source: "/s", typ: "t", extName: "Abc", extValue: "v", nExt: 1},
		{source: "/s", typ: "t", extName: "abcdefghij0123456789", extValue: "v", nExt: 1},
		{source: "/s", typ: "t", extName: "abcdefghij0123456789x", extValue: "v", nExt: 1},
		{source: "/s", typ: "t", extName: "e", extValue: "v", nExt: 32},
		{source: "/s", typ: "t", extName: "e", extValue: "v", nExt: 33},
		{source: "/s", typ: "t", extName: "", extValue: "v", nExt: 1},
		{source: "/s", typ: "t", extName: "e", extValue: long(1025), nExt: 1},
		{source: "/s", typ: "t", dataLen: maxDataLen},
		{source: "/s", typ: "t", dataLen: maxDataLen + 1},
		{source: "/s", typ: "t", secs: -1 << 62},
	} {
		f.Add(sd.id, sd.source, sd.typ, sd.subject, sd.ct, sd.schema, sd.key, sd.extName, sd.extValue,
			sd.reps, sd.nExt, sd.dataLen, sd.secs)
	}
	f.Fuzz(func(t *testing.T, id, source, typ, subject, ct, schema, key, extName, extValue string,
		reps []byte, nExt uint8, dataLen uint32, secs int64) {
		rep := func(i int) byte {
			if i < len(reps) {
				return reps[i]
			}
			return 1
		}
		ev := &v1.Event{
			Id: stretch(id, rep(0)), Source: stretch(source, rep(1)), Type: stretch(typ, rep(2)),
			Subject: stretch(subject, rep(3)), DataContentType: stretch(ct, rep(4)),
			DataSchema: stretch(schema, rep(5)), PartitionKey: stretch(key, rep(9)),
			Data: zeros[:dataLen%uint32(len(zeros)+1)],
		}
		if secs != 0 {
			ev.Time = &timestamppb.Timestamp{Seconds: secs, Nanos: int32(secs % 2_000_000_000)}
		}
		for i := range int(nExt % 40) {
			if ev.Extensions == nil {
				ev.Extensions = map[string]string{}
			}
			name := extName
			if i > 0 {
				name += strconv.Itoa(i)
			}
			ev.Extensions[name] = stretch(extValue, rep(6))
		}
		want := v.Validate(ev)
		require.Equal(t, want == nil, eventValid(ev), "eventValid disagrees with protovalidate: %v", want)
		got := s.validateEvent(ev)
		if want == nil {
			require.NoError(t, got)
			return
		}
		// Violations of map entries come in map order: compare them as sets.
		require.ElementsMatch(t, violations(t, want), violations(t, got))
	})
}

// violations returns the violations of a protovalidate error in their wire
// form (field path, rule path, rule id, message).
func violations(t *testing.T, err error) []string {
	t.Helper()
	ve, ok := err.(*protovalidate.ValidationError)
	require.True(t, ok, "%T is not a validation error", err)
	var out []string
	for _, v := range ve.ToProto().GetViolations() {
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(v)
		require.NoError(t, err)
		out = append(out, string(b))
	}
	return out
}

// FuzzPublishRequestValid proves that publishRequestValid accepts exactly
// the requests protovalidate accepts when the events' own rules are left
// out, and that requestValidator's error is protovalidate's.
func FuzzPublishRequestValid(f *testing.F) {
	v, err := protovalidate.New()
	require.NoError(f, err)
	r := requestValidator{v}
	f.Add("", "orders", byte(1), uint16(1))
	f.Add("ten_0123456789abcdefghjkmnpqrs", "orders", byte(1), uint16(500))
	f.Add("ten_0123456789abcdefghjkmnpqrS", "orders", byte(1), uint16(1))
	f.Add("ten_0123456789abcdefghjkmnpqr", "orders", byte(1), uint16(1))
	f.Add("", "", byte(1), uint16(1))
	f.Add("", "a", byte(63), uint16(1))
	f.Add("", "a", byte(64), uint16(1))
	f.Add("", "é", byte(63), uint16(1))
	f.Add("", "orders", byte(1), uint16(0))
	f.Add("", "orders", byte(1), uint16(501))
	ev := &v1.Event{}
	f.Fuzz(func(t *testing.T, tenantID, topic string, topicRep byte, n uint16) {
		req := &v1.PublishRequest{TenantId: tenantID, Topic: stretch(topic, topicRep)}
		for range n % 600 {
			req.Events = append(req.Events, ev)
		}
		want := v.Validate(req, skipEvents)
		require.Equal(t, want == nil, publishRequestValid(req), "publishRequestValid disagrees with protovalidate: %v", want)
		got := r.Validate(req)
		if want == nil {
			require.NoError(t, got)
			return
		}
		require.ElementsMatch(t, violations(t, want), violations(t, got))
	})
}
