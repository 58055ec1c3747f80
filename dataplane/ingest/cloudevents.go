package ingest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/switchyard-dev/switchyard/dataplane/record"
	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
)

// Media types of the CloudEvents JSON formats.
const (
	mediaStructured = "application/cloudevents+json"
	mediaBatch      = "application/cloudevents-batch+json"
	mediaCEPrefix   = "application/cloudevents"
)

// Names of CloudEvents attributes and of the partitioning extension.
const (
	ceSpecVersion     = "specversion"
	ceID              = "id"
	ceSource          = "source"
	ceType            = "type"
	ceSubject         = "subject"
	ceTime            = "time"
	ceDataContentType = "datacontenttype"
	ceDataSchema      = "dataschema"
	ceData            = "data"
	ceDataBase64      = "data_base64"
	cePartitionKey    = "partitionkey"
)

// errMalformed marks an error in what a client sent as a CloudEvent.
var errMalformed = errors.New("malformed CloudEvent")

// malformed returns an error wrapping errMalformed with a message naming the
// problem.
func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errMalformed, fmt.Sprintf(format, args...))
}

// ceMode is how a CloudEvents HTTP request carries its events.
type ceMode int

// Content modes of the CloudEvents HTTP binding.
const (
	modeBinary ceMode = iota + 1
	modeStructured
	modeBatch
)

// ceResult is one event's answer over the CloudEvents binding.
type ceResult struct {
	ID        string   `json:"id"`
	Partition *int32   `json:"partition,omitempty"`
	Offset    *int64   `json:"offset,omitempty"`
	Error     *ceError `json:"error,omitempty"`
}

// ceError is an error over the CloudEvents binding, of the request or of one
// event.
type ceError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// serveCloudEvents serves POST /ce/{topic}; see CloudEventsHandler.
func (s *Service) serveCloudEvents(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeJSONError(w, http.StatusMethodNotAllowed, "unimplemented", fmt.Sprintf("method %s is not allowed; use POST", r.Method))
		return
	}
	snap := s.snapshots.Current()
	p, cerr := s.authenticate(snap, r.Header.Get("Authorization"))
	if cerr != nil {
		s.metrics.add(resultUnauthorized, 1)
		w.Header().Set("WWW-Authenticate", "Bearer")
		writeConnectError(w, cerr)
		return
	}
	ref := topicRef(r)
	t, cerr := s.resolve(snap, p, "", ref)
	if cerr != nil {
		s.metrics.add(resultOfRefusal(cerr), 1)
		writeConnectError(w, cerr)
		return
	}
	mode, err := contentMode(r.Header.Get("Content-Type"))
	if err != nil {
		s.metrics.add(resultInvalid, 1)
		writeJSONError(w, http.StatusUnsupportedMediaType, codeInvalidArgument, err.Error())
		return
	}
	limit := int64(t.quotas.maxEventBytes)
	switch mode {
	case modeStructured:
		limit = s.maxBodyBytes(t.quotas.maxEventBytes, 1)
	case modeBatch:
		limit = s.maxBodyBytes(t.quotas.maxEventBytes, s.maxBatch)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		if mbe := new(http.MaxBytesError); errors.As(err, &mbe) {
			s.metrics.add(resultTooLarge, 1)
			writeJSONError(w, http.StatusRequestEntityTooLarge, codeResourceExhausted,
				fmt.Sprintf("request body over the limit of %d bytes", limit))
			return
		}
		s.metrics.add(resultInvalid, 1)
		writeJSONError(w, http.StatusBadRequest, codeInvalidArgument, "reading the request body: "+err.Error())
		return
	}

	var (
		events     []*v1.Event
		decodeErrs []*v1.ErrorStatus
	)
	switch mode {
	case modeBinary:
		ev, err := parseBinary(r.Header, body)
		if err != nil {
			s.metrics.add(resultInvalid, 1)
			writeJSONError(w, http.StatusBadRequest, codeInvalidArgument, err.Error())
			return
		}
		events = []*v1.Event{ev}
	case modeStructured:
		ev, err := decodeStructured(body)
		if err != nil {
			s.metrics.add(resultInvalid, 1)
			writeJSONError(w, http.StatusBadRequest, codeInvalidArgument, err.Error())
			return
		}
		events = []*v1.Event{ev}
	case modeBatch:
		events, decodeErrs, err = decodeBatch(body, s.maxBatch)
		if err != nil {
			s.metrics.add(resultInvalid, max(len(events), 1))
			writeJSONError(w, http.StatusBadRequest, codeInvalidArgument, err.Error())
			return
		}
	}

	results, err := s.publish(r.Context(), t, events, decodeErrs, traceFrom(r.Header))
	if err != nil {
		writeRateLimit(w, err)
		return
	}
	if mode == modeBatch {
		out := make([]ceResult, len(results))
		for i, res := range results {
			out[i] = toCEResult(res)
		}
		writeJSON(w, http.StatusOK, out)
		return
	}
	res := results[0]
	if e := res.GetError(); e != nil {
		writeJSONError(w, statusOfEventError(e.GetCode()), e.GetCode(), e.GetMessage())
		return
	}
	writeJSON(w, http.StatusAccepted, toCEResult(res))
}

// topicRef returns the topic a CloudEvents request names: the "topic" path
// value when the handler is mounted with a pattern naming it, else the last
// segment of the path.
func topicRef(r *http.Request) string {
	if v := r.PathValue("topic"); v != "" {
		return v
	}
	p := r.URL.Path
	return p[strings.LastIndexByte(p, '/')+1:]
}

// contentMode tells the mode of a request from its Content-Type.
func contentMode(contentType string) (ceMode, error) {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		// Not a media type we can read; in binary mode it is the data's
		// content type, kept as sent.
		return modeBinary, nil
	}
	switch {
	case mt == mediaStructured:
		return modeStructured, nil
	case mt == mediaBatch:
		return modeBatch, nil
	case strings.HasPrefix(mt, mediaCEPrefix):
		return 0, fmt.Errorf("unsupported event format %q: use %s, %s or binary mode", mt, mediaStructured, mediaBatch)
	default:
		return modeBinary, nil
	}
}

// parseBinary reads an event in binary mode: attributes from the ce-*
// headers (percent-decoded), the data content type from Content-Type, the
// data from body.
func parseBinary(h http.Header, body []byte) (*v1.Event, error) {
	ev := &v1.Event{DataContentType: h.Get("Content-Type")}
	if !utf8.ValidString(ev.DataContentType) {
		return nil, malformed("Content-Type is not valid UTF-8")
	}
	if len(body) > 0 {
		ev.Data = body
	}
	specVersion := ""
	for name, values := range h {
		lower := strings.ToLower(name)
		attr, ok := strings.CutPrefix(lower, "ce-")
		if !ok {
			continue
		}
		if len(values) != 1 {
			return nil, malformed("header %s appears %d times", lower, len(values))
		}
		v, err := url.PathUnescape(values[0])
		if err != nil {
			return nil, malformed("header %s: bad percent-encoding", lower)
		}
		if !utf8.ValidString(v) {
			return nil, malformed("header %s is not valid UTF-8 once percent-decoded", lower)
		}
		switch attr {
		case ceSpecVersion:
			specVersion = v
		case ceID:
			ev.Id = v
		case ceSource:
			ev.Source = v
		case ceType:
			ev.Type = v
		case ceSubject:
			ev.Subject = v
		case ceDataSchema:
			ev.DataSchema = v
		case ceTime:
			ts, err := parseTime(v)
			if err != nil {
				return nil, malformed("header %s: %v", lower, err)
			}
			ev.Time = ts
		case ceDataContentType:
			return nil, malformed("header %s: in binary mode the data content type is the Content-Type header", lower)
		case cePartitionKey:
			ev.PartitionKey = v
		case "":
			return nil, malformed("header %s names no attribute", lower)
		default:
			if ev.Extensions == nil {
				ev.Extensions = make(map[string]string)
			}
			ev.Extensions[attr] = v
		}
	}
	if specVersion == "" {
		return nil, malformed("missing ce-specversion header: a binary-mode CloudEvent needs ce-specversion: %s, ce-source and ce-type "+
			"(or send Content-Type %s or %s)", record.SpecVersion, mediaStructured, mediaBatch)
	}
	if specVersion != record.SpecVersion {
		return nil, malformed("ce-specversion %q is not supported; use %s", specVersion, record.SpecVersion)
	}
	return ev, nil
}

// decodeStructured reads one event in the CloudEvents JSON format.
func decodeStructured(data []byte) (*v1.Event, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	var obj map[string]json.RawMessage
	if err := dec.Decode(&obj); err != nil {
		return nil, malformed("the body is not a JSON object: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, malformed("data after the event's JSON object")
	}
	return eventFromJSON(obj)
}

// decodeBatch reads a batch in the CloudEvents JSON batch format: at most
// maxBatch events. An element that is not a valid event gets an
// invalid_argument error in decodeErrs (and an event holding what could be
// read of it, perhaps its id); a body that is not a JSON array of 1 to
// maxBatch elements is an error.
func decodeBatch(data []byte, maxBatch int) (events []*v1.Event, decodeErrs []*v1.ErrorStatus, err error) {
	var raws []json.RawMessage
	if err := json.Unmarshal(data, &raws); err != nil {
		return nil, nil, malformed("the body is not a JSON array of events: %v", err)
	}
	if raws == nil {
		return nil, nil, malformed("the body is not a JSON array of events: null")
	}
	if len(raws) == 0 {
		return nil, nil, malformed("the batch is empty")
	}
	if len(raws) > maxBatch {
		return make([]*v1.Event, len(raws)), nil, malformed("the batch holds %d events, more than the limit of %d", len(raws), maxBatch)
	}
	events = make([]*v1.Event, len(raws))
	for i, raw := range raws {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
			events[i] = &v1.Event{}
			decodeErrs = setErr(decodeErrs, len(raws), i, fmt.Sprintf("%v: event %d is not a JSON object", errMalformed, i))
			continue
		}
		ev, err := eventFromJSON(obj)
		if err != nil {
			events[i] = partialEvent(obj)
			decodeErrs = setErr(decodeErrs, len(raws), i, fmt.Sprintf("event %d: %v", i, err))
			continue
		}
		events[i] = ev
	}
	return events, decodeErrs, nil
}

// setErr records an invalid_argument error for element i of n.
func setErr(errs []*v1.ErrorStatus, n, i int, msg string) []*v1.ErrorStatus {
	if errs == nil {
		errs = make([]*v1.ErrorStatus, n)
	}
	errs[i] = &v1.ErrorStatus{Code: codeInvalidArgument, Message: msg}
	return errs
}

// partialEvent returns the id of a malformed event when it has a readable
// one, so its error result can name it.
func partialEvent(obj map[string]json.RawMessage) *v1.Event {
	var id string
	if raw, ok := obj[ceID]; ok && json.Unmarshal(raw, &id) == nil && len(id) <= 256 {
		return &v1.Event{Id: id}
	}
	return &v1.Event{}
}

// eventFromJSON reads an event from the members of a JSON object in the
// CloudEvents JSON format.
func eventFromJSON(obj map[string]json.RawMessage) (*v1.Event, error) {
	ev := &v1.Event{}
	raw, ok := obj[ceSpecVersion]
	if !ok {
		return nil, malformed("missing %q: a CloudEvent needs \"specversion\": %q", ceSpecVersion, record.SpecVersion)
	}
	sv, isStr, err := jsonScalar(raw)
	if err != nil || !isStr {
		return nil, malformed("%q must be the string %q", ceSpecVersion, record.SpecVersion)
	}
	if sv != record.SpecVersion {
		return nil, malformed("specversion %q is not supported; use %s", sv, record.SpecVersion)
	}
	var (
		data       json.RawMessage
		hasData    bool
		dataBase64 string
		hasBase64  bool
	)
	for name, raw := range obj {
		switch name {
		case ceSpecVersion:
			continue
		case ceData:
			if !isJSONNull(raw) {
				data, hasData = raw, true
			}
			continue
		}
		v, isStr, err := jsonScalar(raw)
		if err != nil {
			return nil, malformed("attribute %q: %v", name, err)
		}
		if v == "" && !isStr {
			continue // null: the attribute is absent
		}
		switch name {
		case ceID, ceSource, ceType, ceSubject, ceDataContentType, ceDataSchema, ceTime, ceDataBase64:
			if !isStr {
				return nil, malformed("attribute %q must be a JSON string", name)
			}
		}
		switch name {
		case ceID:
			ev.Id = v
		case ceSource:
			ev.Source = v
		case ceType:
			ev.Type = v
		case ceSubject:
			ev.Subject = v
		case ceDataContentType:
			ev.DataContentType = v
		case ceDataSchema:
			ev.DataSchema = v
		case ceTime:
			ts, err := parseTime(v)
			if err != nil {
				return nil, malformed("attribute %q: %v", name, err)
			}
			ev.Time = ts
		case ceDataBase64:
			dataBase64, hasBase64 = v, true
		case cePartitionKey:
			ev.PartitionKey = v
		default:
			if ev.Extensions == nil {
				ev.Extensions = make(map[string]string)
			}
			ev.Extensions[name] = v
		}
	}
	switch {
	case hasData && hasBase64:
		return nil, malformed("both %q and %q are set; send one", ceData, ceDataBase64)
	case hasBase64:
		b, err := base64.StdEncoding.DecodeString(dataBase64)
		if err != nil {
			return nil, malformed("%q is not valid base64: %v", ceDataBase64, err)
		}
		if len(b) > 0 {
			ev.Data = b
		}
	case hasData:
		if ev.DataContentType == "" {
			// The JSON format: data without a datacontenttype is JSON.
			ev.DataContentType = "application/json"
		}
		ev.Data = dataBytes(ev.DataContentType, data)
	}
	return ev, nil
}

// dataBytes returns the payload of a "data" member: the JSON value itself
// when the content type is JSON, else the text of a JSON string, else the
// JSON text.
func dataBytes(contentType string, raw json.RawMessage) []byte {
	if !isJSONMediaType(contentType) {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return []byte(s)
		}
	}
	return bytes.Clone(raw)
}

// isJSONMediaType reports whether a content type is JSON: application/json,
// text/json, or a +json suffix.
func isJSONMediaType(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	return mt == "application/json" || mt == "text/json" || strings.HasSuffix(mt, "+json")
}

// isJSONNull reports whether raw is the JSON literal null.
func isJSONNull(raw json.RawMessage) bool {
	return string(bytes.TrimSpace(raw)) == "null"
}

// jsonScalar returns the value of a JSON string, boolean or number as text,
// and whether it was a string. null is ("", false). Objects and arrays are
// errors: CloudEvents attributes are scalars.
func jsonScalar(raw json.RawMessage) (string, bool, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "", false, errors.New("empty value")
	}
	switch raw[0] {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", false, err
		}
		return s, true, nil
	case 'n':
		return "", false, nil
	case 't', 'f':
		var b bool
		if err := json.Unmarshal(raw, &b); err != nil {
			return "", false, err
		}
		return strconv.FormatBool(b), false, nil
	case '{', '[':
		return "", false, errors.New("must be a string, number or boolean, not an object or array")
	default:
		var n json.Number
		if err := json.Unmarshal(raw, &n); err != nil {
			return "", false, err
		}
		if f, err := n.Float64(); err != nil || math.IsInf(f, 0) {
			return "", false, fmt.Errorf("number %s out of range", n)
		}
		return n.String(), false, nil
	}
}

// parseTime reads an RFC 3339 timestamp.
func parseTime(v string) (*timestamppb.Timestamp, error) {
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return nil, fmt.Errorf("%q is not an RFC 3339 timestamp", v)
	}
	ts := timestamppb.New(t)
	if err := ts.CheckValid(); err != nil {
		return nil, fmt.Errorf("%q is out of range", v)
	}
	return ts, nil
}

// toCEResult converts a publish result to its CloudEvents-binding JSON.
func toCEResult(res *v1.PublishResult) ceResult {
	out := ceResult{ID: res.GetEventId()}
	if e := res.GetError(); e != nil {
		out.Error = &ceError{Code: e.GetCode(), Message: e.GetMessage()}
		return out
	}
	partition, offset := res.GetPartition(), res.GetOffset()
	out.Partition, out.Offset = &partition, &offset
	return out
}

// statusOfEventError is the HTTP status of a single event's error.
func statusOfEventError(code string) int {
	switch code {
	case codeInvalidArgument:
		return http.StatusBadRequest
	case codeResourceExhausted:
		return http.StatusRequestEntityTooLarge
	case codeDeadlineExceeded:
		return http.StatusGatewayTimeout
	default:
		return http.StatusServiceUnavailable
	}
}

// writeRateLimit answers a batch refused by the rate limit: 429 with
// Retry-After (whole seconds, rounded up), or 413 for a batch larger than
// the burst.
func writeRateLimit(w http.ResponseWriter, err error) {
	rl := new(rateLimitError)
	if !errors.As(err, &rl) {
		writeJSONError(w, http.StatusInternalServerError, "internal", msgInternal)
		return
	}
	if rl.retryAfter <= 0 {
		writeJSONError(w, http.StatusRequestEntityTooLarge, codeResourceExhausted, rl.Error())
		return
	}
	secs := int64(math.Ceil(rl.retryAfter.Seconds()))
	w.Header().Set("Retry-After", strconv.FormatInt(max(secs, 1), 10))
	writeJSONError(w, http.StatusTooManyRequests, codeResourceExhausted, rl.Error())
}

// writeConnectError answers with a Connect error's code (snake case) and
// message, and the HTTP status Connect maps the code to.
func writeConnectError(w http.ResponseWriter, err *connect.Error) {
	status := http.StatusInternalServerError
	switch err.Code() {
	case connect.CodeUnauthenticated:
		status = http.StatusUnauthorized
	case connect.CodePermissionDenied:
		status = http.StatusForbidden
	case connect.CodeNotFound:
		status = http.StatusNotFound
	case connect.CodeInvalidArgument:
		status = http.StatusBadRequest
	}
	writeJSONError(w, status, err.Code().String(), err.Message())
}

// writeJSONError answers with {"code","message"}.
func writeJSONError(w http.ResponseWriter, status int, code, message string) {
	writeJSON(w, status, ceError{Code: code, Message: message})
}

// writeJSON answers with v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// The response types hold only strings and numbers: unreachable.
		status, b = http.StatusInternalServerError, []byte(`{"code":"internal","message":"internal error"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
