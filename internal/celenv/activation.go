package celenv

import (
	"encoding/json"
	"mime"
	"strings"
	"unicode/utf8"

	"cel.dev/cel-go/interpreter"

	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
)

// activation binds the variables to one event. Each is built on first use
// only, so a filter on attributes never parses the payload.
type activation struct {
	ev        *v1.Event
	event     map[string]any
	data      any
	dataReady bool
}

var _ interpreter.Activation = (*activation)(nil)

func newActivation(ev *v1.Event) *activation {
	return &activation{ev: ev}
}

// ResolveName implements interpreter.Activation.
func (a *activation) ResolveName(name string) (any, bool) {
	switch name {
	case varEvent:
		if a.event == nil {
			a.event = eventAttributes(a.ev)
		}
		return a.event, true
	case varData:
		if !a.dataReady {
			a.data = decodeData(a.ev.GetDataContentType(), a.ev.GetData())
			a.dataReady = true
		}
		return a.data, true
	default:
		return nil, false
	}
}

// Parent implements interpreter.Activation.
func (a *activation) Parent() interpreter.Activation { return nil }

// eventAttributes builds the event variable: see the package documentation.
func eventAttributes(ev *v1.Event) map[string]any {
	m := make(map[string]any, 9+len(ev.GetExtensions()))
	for k, v := range ev.GetExtensions() {
		m[k] = v
	}
	m["specversion"] = "1.0"
	m["id"] = ev.GetId()
	m["source"] = ev.GetSource()
	m["type"] = ev.GetType()
	m["partitionkey"] = ev.GetId()
	if k := ev.GetPartitionKey(); k != "" {
		m["partitionkey"] = k
	}
	// Optional attributes are absent when unset, and an extension may not
	// pose as one.
	setOptional(m, "subject", ev.GetSubject())
	setOptional(m, "datacontenttype", ev.GetDataContentType())
	setOptional(m, "dataschema", ev.GetDataSchema())
	if ev.GetTime() != nil {
		m["time"] = ev.GetTime().AsTime()
	} else {
		delete(m, "time")
	}
	return m
}

// setOptional sets m[k] to v, or removes k when v is empty.
func setOptional(m map[string]any, k, v string) {
	if v == "" {
		delete(m, k)
		return
	}
	m[k] = v
}

// decodeData builds the data variable: see the package documentation.
func decodeData(contentType string, data []byte) any {
	if len(data) == 0 {
		return nil
	}
	if isJSON(contentType) {
		var v any
		if err := json.Unmarshal(data, &v); err == nil {
			return v
		}
	}
	if utf8.Valid(data) {
		return string(data)
	}
	return strings.ToValidUTF8(string(data), "\uFFFD")
}

// isJSON reports whether a content type (empty meaning JSON) is JSON.
func isJSON(contentType string) bool {
	if contentType == "" {
		return true
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		mt, _, _ = strings.Cut(contentType, ";")
		mt = strings.ToLower(strings.TrimSpace(mt))
	}
	return mt == "application/json" || mt == "text/json" || strings.HasSuffix(mt, "+json")
}
