// Package cloudevents converts between the events of the CloudEvents Go SDK
// (github.com/cloudevents/sdk-go/v2, [event.Event]) and those of the
// Switchyard SDK ([switchyard.Event]), both ways.
//
// The conversion keeps id, source, type, subject, time, datacontenttype,
// dataschema, data and the extension attributes. The CloudEvents
// partitioning extension, "partitionkey", is the Switchyard event's
// PartitionKey, not one of its Extensions. Extension values are strings on
// the Switchyard side: values of other CloudEvents types (integer, boolean,
// binary, URI, timestamp) become their canonical string form.
//
// It is a module of its own, so that the Switchyard SDK does not depend on
// the CloudEvents SDK:
//
//	go get github.com/switchyard-dev/switchyard/sdk/cloudevents
package cloudevents

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"mime"
	"slices"
	"strings"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"

	"github.com/switchyard-dev/switchyard/sdk/switchyard"
)

// PartitionKeyExtension is the CloudEvents extension attribute (of the
// partitioning extension) that carries a Switchyard event's PartitionKey.
const PartitionKeyExtension = "partitionkey"

// ToCloudEvent returns the CloudEvents (v1.0) form of e. The event must be a
// valid CloudEvent: it needs an id (an event made by [switchyard.NewEvent]
// has one), a source and a type; the error says what is wrong otherwise.
// e's PartitionKey, when set, is the "partitionkey" extension, and replaces
// an extension of that name. The data is shared, not copied.
func ToCloudEvent(e *switchyard.Event) (event.Event, error) {
	if e == nil {
		return event.Event{}, errors.New("cloudevents: nil event")
	}
	ce := event.New(event.CloudEventsVersionV1)
	ec := ce.Context.(*event.EventContextV1)
	ec.ID = e.ID
	ec.Type = e.Type
	if err := ec.SetSource(e.Source); err != nil {
		return event.Event{}, fmt.Errorf("cloudevents: source %q: %w", e.Source, err)
	}
	if e.Subject != "" {
		subject := e.Subject
		ec.Subject = &subject
	}
	if err := ec.SetTime(e.Time); err != nil {
		return event.Event{}, fmt.Errorf("cloudevents: time: %w", err)
	}
	if e.DataContentType != "" {
		ct := e.DataContentType
		ec.DataContentType = &ct
	}
	if err := ec.SetDataSchema(e.DataSchema); err != nil {
		return event.Event{}, fmt.Errorf("cloudevents: dataschema %q: %w", e.DataSchema, err)
	}
	for name, v := range e.Extensions {
		if name == PartitionKeyExtension && e.PartitionKey != "" {
			continue
		}
		if !validExtensionName(name) {
			return event.Event{}, fmt.Errorf("cloudevents: extension name %q: want 1-20 lower-case letters or digits", name)
		}
		if err := ec.SetExtension(name, v); err != nil {
			return event.Event{}, fmt.Errorf("cloudevents: extension %q: %w", name, err)
		}
	}
	if e.PartitionKey != "" {
		if err := ec.SetExtension(PartitionKeyExtension, e.PartitionKey); err != nil {
			return event.Event{}, fmt.Errorf("cloudevents: extension %q: %w", PartitionKeyExtension, err)
		}
	}
	if e.Data != nil {
		ce.DataEncoded = e.Data
		// In the JSON format, JSON data is written as JSON and anything
		// else as data_base64.
		ce.DataBase64 = !(isJSON(e.DataContentType) && json.Valid(e.Data))
	}
	if err := ce.Validate(); err != nil {
		return event.Event{}, fmt.Errorf("cloudevents: %w", err)
	}
	return ce, nil
}

// FromCloudEvent returns the Switchyard form of ce, which must be a valid
// CloudEvent (of spec version 1.0 or 0.3). Its "partitionkey" extension is
// the PartitionKey; its other extensions are Extensions, in their string
// form. The data is shared, not copied.
func FromCloudEvent(ce event.Event) (*switchyard.Event, error) {
	if ce.Context == nil {
		return nil, errors.New("cloudevents: event has no context")
	}
	if err := ce.Validate(); err != nil {
		return nil, fmt.Errorf("cloudevents: %w", err)
	}
	e := &switchyard.Event{
		ID:              ce.ID(),
		Source:          ce.Source(),
		Type:            ce.Type(),
		Subject:         ce.Subject(),
		Time:            ce.Time(),
		DataContentType: ce.DataContentType(),
		DataSchema:      ce.DataSchema(),
		Data:            ce.Data(),
	}
	exts := ce.Extensions()
	for _, name := range sortedKeys(exts) {
		s, err := types.Format(exts[name])
		if err != nil {
			return nil, fmt.Errorf("cloudevents: extension %q: %w", name, err)
		}
		if name == PartitionKeyExtension {
			e.PartitionKey = s
			continue
		}
		if e.Extensions == nil {
			e.Extensions = make(map[string]string, len(exts))
		}
		e.Extensions[name] = s
	}
	return e, nil
}

// sortedKeys returns the keys of m in order, so that the first error is
// always the same one.
func sortedKeys(m map[string]any) []string {
	return slices.Sorted(maps.Keys(m))
}

// isJSON reports whether the media type ct is JSON ("application/json" or a
// "+json" suffix); an empty ct is JSON, as in the CloudEvents JSON format.
func isJSON(ct string) bool {
	if ct == "" {
		return true
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	return mt == "application/json" || mt == "text/json" || strings.HasSuffix(mt, "+json")
}

// validExtensionName reports whether name is 1-20 lower-case letters or
// digits, the names Switchyard accepts. The CloudEvents SDK would lower-case
// other letters, renaming the attribute.
func validExtensionName(name string) bool {
	if name == "" || len(name) > 20 {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}
