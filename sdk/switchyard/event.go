package switchyard

import (
	"encoding/json"
	"fmt"
	"maps"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
)

// Event is a CloudEvent (v1.0) plus the key that orders it. Build one with
// [NewEvent], or fill the fields; an empty ID is given a UUIDv7 when the
// event is published, before the first attempt.
type Event struct {
	// ID is unique per source: the dedup and idempotency key end to end.
	ID string
	// Source is the context in which the event happened, a URI reference.
	Source string
	// Type is the type of event, e.g. "com.example.order.created".
	Type string
	// Subject is the subject of the event within its source.
	Subject string
	// Time is when the event happened; zero means the time Switchyard
	// received it.
	Time time.Time
	// DataContentType is the media type of Data, e.g. "application/json".
	DataContentType string
	// DataSchema is the URI of the schema Data adheres to.
	DataSchema string
	// Data is the payload.
	Data []byte
	// PartitionKey orders the event: events with the same key go to the
	// same partition and are delivered in order by KEY-ordered pipelines.
	// Empty means the ID.
	PartitionKey string
	// Extensions are CloudEvents extension attributes; names are 1-20
	// lower-case letters or digits.
	Extensions map[string]string
}

// An EventOption sets an attribute of an event made by [NewEvent].
type EventOption interface {
	applyEvent(*Event) error
}

// eventOptionFunc adapts a function to EventOption.
type eventOptionFunc func(*Event) error

func (f eventOptionFunc) applyEvent(e *Event) error { return f(e) }

// NewEvent returns an event of source and type typ with a new UUIDv7 id and
// the current time, changed by opts. The error is that of an option, e.g.
// data WithJSONData cannot marshal.
func NewEvent(source, typ string, opts ...EventOption) (*Event, error) {
	e := &Event{ID: newUUIDv7(), Source: source, Type: typ, Time: time.Now()}
	for _, o := range opts {
		if err := o.applyEvent(e); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// WithID sets the event's id, replacing the UUIDv7 NewEvent made: use an id
// of your domain (an order number, an outbox row id) to make publishing it
// again idempotent across processes.
func WithID(id string) EventOption {
	return eventOptionFunc(func(e *Event) error { e.ID = id; return nil })
}

// WithSubject sets the event's subject.
func WithSubject(subject string) EventOption {
	return eventOptionFunc(func(e *Event) error { e.Subject = subject; return nil })
}

// WithTime sets when the event happened.
func WithTime(t time.Time) EventOption {
	return eventOptionFunc(func(e *Event) error { e.Time = t; return nil })
}

// WithJSONData sets the data to the JSON encoding of v and the content type
// to application/json.
func WithJSONData(v any) EventOption {
	return eventOptionFunc(func(e *Event) error {
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("switchyard: encoding event data: %w", err)
		}
		e.Data, e.DataContentType = b, "application/json"
		return nil
	})
}

// WithData sets the data and its content type.
func WithData(data []byte, contentType string) EventOption {
	return eventOptionFunc(func(e *Event) error { e.Data, e.DataContentType = data, contentType; return nil })
}

// WithPartitionKey sets the key that chooses the event's partition and its
// order.
func WithPartitionKey(key string) EventOption {
	return eventOptionFunc(func(e *Event) error { e.PartitionKey = key; return nil })
}

// WithExtension sets a CloudEvents extension attribute.
func WithExtension(name, value string) EventOption {
	return eventOptionFunc(func(e *Event) error {
		if e.Extensions == nil {
			e.Extensions = make(map[string]string)
		}
		e.Extensions[name] = value
		return nil
	})
}

// fillProto sets pe, which is zero, to the API form of e with id as its id.
func (e *Event) fillProto(pe *v1.Event, id string) {
	*pe = v1.Event{
		Id:              id,
		Source:          e.Source,
		Type:            e.Type,
		Subject:         e.Subject,
		DataContentType: e.DataContentType,
		DataSchema:      e.DataSchema,
		Extensions:      maps.Clone(e.Extensions),
		Data:            e.Data,
		PartitionKey:    e.PartitionKey,
	}
	if !e.Time.IsZero() {
		pe.Time = timestamppb.New(e.Time)
	}
}

// prepare returns the API form of e with its id, a new UUIDv7 when e has
// none. e is not changed.
func (e *Event) prepare() *v1.Event {
	pe := new(v1.Event)
	e.prepareInto(pe)
	return pe
}

// prepareInto is prepare setting pe, which is zero.
func (e *Event) prepareInto(pe *v1.Event) {
	id := e.ID
	if id == "" {
		id = newUUIDv7()
	}
	e.fillProto(pe, id)
}

// EventFromProto returns the SDK form of an API event.
func EventFromProto(pe *v1.Event) *Event {
	e := &Event{
		ID:              pe.GetId(),
		Source:          pe.GetSource(),
		Type:            pe.GetType(),
		Subject:         pe.GetSubject(),
		DataContentType: pe.GetDataContentType(),
		DataSchema:      pe.GetDataSchema(),
		Data:            pe.GetData(),
		PartitionKey:    pe.GetPartitionKey(),
		Extensions:      maps.Clone(pe.GetExtensions()),
	}
	if pe.GetTime() != nil {
		e.Time = pe.GetTime().AsTime()
	}
	return e
}
