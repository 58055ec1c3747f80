// Package record maps events to Kafka records and back, per the CloudEvents
// Kafka protocol binding in binary mode: attributes travel as "ce_" headers,
// the data as the record value, the partition key as the record key.
// Switchyard's own routing headers ("sy-...") ride along.
package record

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/switchyard-dev/switchyard/internal/kafkaname"
	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
)

// SpecVersion is the CloudEvents version Switchyard speaks.
const SpecVersion = "1.0"

// Core attribute names (without the "ce_" prefix).
const (
	attrID          = "id"
	attrSource      = "source"
	attrType        = "type"
	attrSubject     = "subject"
	attrTime        = "time"
	attrDataSchema  = "dataschema"
	attrSpecVersion = "specversion"
)

// ErrMalformed is returned by Decode for a record that is not an event.
var ErrMalformed = errors.New("malformed event record")

// Encode builds the record of an event published to a tenant's topic. The
// event must be complete (id, source, type and time set). The record's Topic
// is the Kafka topic of (tenantID, topicID); its key is the partition key, or
// the event id when that is empty.
func Encode(tenantID, topicID string, ev *v1.Event) *kgo.Record {
	r := new(kgo.Record)
	e := Encoder{kafkaTopic: kafkaname.TenantTopic(tenantID, topicID), tenantID: tenantID, topicID: topicID, exact: true}
	e.Encode(r, ev)
	return r
}

// maxTimeLen bounds the length of a time in RFC 3339 with nanoseconds
// ("-2006-01-02T15:04:05.999999999Z" and a five-digit year at most).
const maxTimeLen = 40

// headerCount is the number of headers of ev's record besides its
// extensions and the extra ones: specversion, tenant and topic always, the
// other attributes when set.
func headerCount(ev *v1.Event) int {
	n := 3
	for _, s := range [...]string{ev.GetId(), ev.GetSource(), ev.GetType(), ev.GetSubject(),
		ev.GetDataSchema(), ev.GetDataContentType()} {
		if s != "" {
			n++
		}
	}
	if ev.GetTime() != nil {
		n++
	}
	return n
}

// Sizes of the allocations an Encoder carves records out of: about 150
// records' worth each for small events.
const (
	bytesChunk   = 32 << 10
	headersChunk = 1024
)

// An Encoder builds the records of many events of one topic, as Encode
// does, sharing what it can among them: the Kafka topic's name is made
// once, and the keys, header values and header lists of the records are
// carved out of a few large allocations instead of two per record. The
// values every record has in common (tenant, topic, and the time of events
// published at the same instant) are shared, not copied. Every slice is
// clipped to its record's own room, so appending to one never touches
// another; header values must not be written in place. An Encoder is not
// safe for concurrent use.
type Encoder struct {
	kafkaTopic, tenantID, topicID string
	extra                         []kgo.RecordHeader
	headers                       []kgo.RecordHeader // free room for header lists
	bytes                         []byte             // free room for keys and values
	exact                         bool               // allocate only what each record needs

	tenantValue, topicValue []byte // shared header values
	timeSeconds             int64  // the last time encoded, and its text
	timeNanos               int32
	timeText                []byte
}

// NewEncoder returns an Encoder of records of (tenantID, topicID) that
// carry extra headers (e.g. the trace context) after their own.
func NewEncoder(tenantID, topicID string, extra []kgo.RecordHeader) *Encoder {
	return &Encoder{
		kafkaTopic: kafkaname.TenantTopic(tenantID, topicID), tenantID: tenantID, topicID: topicID, extra: extra,
		tenantValue: clipped(tenantID), topicValue: clipped(topicID),
	}
}

// clipped returns the bytes of s, or nil for "", with no room to append.
func clipped(s string) []byte {
	if s == "" {
		return nil
	}
	b := []byte(s)
	return b[:len(b):len(b)]
}

// Encode sets r to the record of ev.
func (e *Encoder) Encode(r *kgo.Record, ev *v1.Event) {
	key := ev.GetPartitionKey()
	if key == "" {
		key = ev.GetId()
	}
	ext := ev.GetExtensions()
	n := len(key) + len(SpecVersion) + len(ev.GetId()) + len(ev.GetSource()) + len(ev.GetType()) +
		len(ev.GetSubject()) + len(ev.GetDataSchema()) + len(ev.GetDataContentType())
	if e.tenantValue == nil {
		n += len(e.tenantID)
	}
	if e.topicValue == nil {
		n += len(e.topicID)
	}
	if ev.GetTime() != nil {
		n += maxTimeLen
	}
	for _, v := range ext {
		n += len(v)
	}
	buf := e.takeBytes(n)
	h := e.takeHeaders(headerCount(ev) + len(ext) + len(e.extra))
	add := func(k, v string) {
		if v != "" {
			start := len(buf)
			buf = append(buf, v...)
			h = append(h, kgo.RecordHeader{Key: k, Value: buf[start:len(buf):len(buf)]})
		}
	}
	buf = append(buf, key...)
	keyBytes := buf[:len(key):len(key)]
	add(kafkaname.HeaderCEPrefix+attrSpecVersion, SpecVersion)
	add(kafkaname.HeaderCEPrefix+attrID, ev.GetId())
	add(kafkaname.HeaderCEPrefix+attrSource, ev.GetSource())
	add(kafkaname.HeaderCEPrefix+attrType, ev.GetType())
	add(kafkaname.HeaderCEPrefix+attrSubject, ev.GetSubject())
	if t := ev.GetTime(); t != nil {
		if e.timeText == nil || t.GetSeconds() != e.timeSeconds || t.GetNanos() != e.timeNanos {
			start := len(buf)
			buf = time.Unix(t.GetSeconds(), int64(t.GetNanos())).UTC().AppendFormat(buf, time.RFC3339Nano)
			e.timeSeconds, e.timeNanos, e.timeText = t.GetSeconds(), t.GetNanos(), buf[start:len(buf):len(buf)]
		}
		h = append(h, kgo.RecordHeader{Key: kafkaname.HeaderCEPrefix + attrTime, Value: e.timeText})
	}
	add(kafkaname.HeaderCEPrefix+attrDataSchema, ev.GetDataSchema())
	add(kafkaname.HeaderContentType, ev.GetDataContentType())
	for k, v := range ext {
		add(kafkaname.HeaderCEPrefix+k, v)
	}
	if e.tenantValue != nil {
		h = append(h, kgo.RecordHeader{Key: kafkaname.HeaderTenant, Value: e.tenantValue})
	} else {
		add(kafkaname.HeaderTenant, e.tenantID)
	}
	if e.topicValue != nil {
		h = append(h, kgo.RecordHeader{Key: kafkaname.HeaderTopic, Value: e.topicValue})
	} else {
		add(kafkaname.HeaderTopic, e.topicID)
	}
	*r = kgo.Record{
		Topic:   e.kafkaTopic,
		Key:     keyBytes,
		Value:   ev.GetData(),
		Headers: append(h, e.extra...),
	}
}

// takeBytes returns an empty slice with room for n bytes, carved from the
// shared room.
func (e *Encoder) takeBytes(n int) []byte {
	if e.exact {
		return make([]byte, 0, n)
	}
	if len(e.bytes) < n {
		e.bytes = make([]byte, max(n, bytesChunk))
	}
	b := e.bytes[:0:n]
	e.bytes = e.bytes[n:]
	return b
}

// takeHeaders returns an empty slice with room for n headers, carved from
// the shared room.
func (e *Encoder) takeHeaders(n int) []kgo.RecordHeader {
	if e.exact {
		return make([]kgo.RecordHeader, 0, n)
	}
	if len(e.headers) < n {
		e.headers = make([]kgo.RecordHeader, max(n, headersChunk))
	}
	h := e.headers[:0:n]
	e.headers = e.headers[n:]
	return h
}

// Decoded is an event read back from a record, with where it was published.
type Decoded struct {
	Event    *v1.Event
	TenantID string
	TopicID  string
}

// Decode reads an event from a record written by Encode (or by any producer
// following the CloudEvents Kafka binding in binary mode). Headers it does not
// know are ignored, except "ce_" ones, which become extensions.
func Decode(r *kgo.Record) (*Decoded, error) {
	ev := &v1.Event{Data: r.Value, PartitionKey: string(r.Key)}
	d := &Decoded{Event: ev}
	for _, h := range r.Headers {
		v := string(h.Value)
		switch h.Key {
		case kafkaname.HeaderContentType:
			ev.DataContentType = v
			continue
		case kafkaname.HeaderTenant:
			d.TenantID = v
			continue
		case kafkaname.HeaderTopic:
			d.TopicID = v
			continue
		}
		name, ok := strings.CutPrefix(h.Key, kafkaname.HeaderCEPrefix)
		if !ok {
			continue
		}
		switch name {
		case attrSpecVersion:
			if v != SpecVersion {
				return nil, fmt.Errorf("%w: specversion %q", ErrMalformed, v)
			}
		case attrID:
			ev.Id = v
		case attrSource:
			ev.Source = v
		case attrType:
			ev.Type = v
		case attrSubject:
			ev.Subject = v
		case attrDataSchema:
			ev.DataSchema = v
		case attrTime:
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return nil, fmt.Errorf("%w: time %q: %v", ErrMalformed, v, err)
			}
			ev.Time = timestamppb.New(t)
		default:
			if name == "" {
				continue
			}
			if ev.Extensions == nil {
				ev.Extensions = make(map[string]string)
			}
			ev.Extensions[name] = v
		}
	}
	if ev.Id == "" || ev.Source == "" || ev.Type == "" {
		return nil, fmt.Errorf("%w: id, source and type are required", ErrMalformed)
	}
	if ev.PartitionKey == ev.Id {
		// Encode keys an event without a partition key by its id.
		ev.PartitionKey = ""
	}
	return d, nil
}

// Header returns the value of the last header named key, and whether there
// is one.
func Header(r *kgo.Record, key string) (string, bool) {
	for i := len(r.Headers) - 1; i >= 0; i-- {
		if r.Headers[i].Key == key {
			return string(r.Headers[i].Value), true
		}
	}
	return "", false
}

// SetHeader replaces every header named key with one of value v.
func SetHeader(r *kgo.Record, key, v string) {
	out := r.Headers[:0]
	for _, h := range r.Headers {
		if h.Key != key {
			out = append(out, h)
		}
	}
	r.Headers = append(out, kgo.RecordHeader{Key: key, Value: []byte(v)})
}
