package webhook

import (
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/switchyard-dev/switchyard/sdk/switchyard"
)

// DefaultMaxBody bounds the body Middleware reads: 2 MiB, above the largest
// event Switchyard accepts.
const DefaultMaxBody = 2 << 20

// Middleware returns a handler that verifies each request with [Verify]
// (against the current time, with [DefaultTolerance]), decodes the event
// from its CloudEvents binary-mode ce-* headers and its body, and calls next
// with it. It answers 401 to a request whose signature does not verify, 400
// to one that carries no valid event, and 413 to a body over
// [DefaultMaxBody]; next is not called then. The request's body has been
// read when next runs: the event's Data holds it.
func Middleware(secrets []string, next func(http.ResponseWriter, *http.Request, *switchyard.Event)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, DefaultMaxBody))
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
				return
			}
			http.Error(w, "reading the body failed", http.StatusBadRequest)
			return
		}
		if err := Verify(secrets, r.Header, body, time.Now(), 0); err != nil {
			if errors.Is(err, ErrBadSecret) {
				http.Error(w, "the receiver is misconfigured", http.StatusInternalServerError)
				return
			}
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		ev, err := DecodeEvent(r.Header, body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		next(w, r, ev)
	})
}

// ErrNotAnEvent is the error of DecodeEvent for headers that do not carry
// a CloudEvent: no ce-id, ce-source or ce-type, or a malformed ce-time.
var ErrNotAnEvent = errors.New("webhook: the request does not carry a CloudEvent")

// coreHeaders are the ce-* headers of attributes that are not extensions.
var coreHeaders = map[string]bool{
	"specversion": true, "id": true, "source": true, "type": true, "subject": true,
	"time": true, "dataschema": true, "datacontenttype": true,
}

// DecodeEvent returns the event of a webhook request: its attributes from
// the CloudEvents binary-mode ce-* headers (percent-decoded), its content
// type from Content-Type, its data the body. Other ce-* headers are
// extensions. The partition key is not sent with webhooks.
func DecodeEvent(h http.Header, body []byte) (*switchyard.Event, error) {
	get := func(name string) (string, error) {
		v := h.Get("Ce-" + name)
		if !strings.Contains(v, "%") {
			return v, nil
		}
		d, err := url.PathUnescape(v)
		if err != nil {
			return "", errors.Join(ErrNotAnEvent, errors.New("ce-"+strings.ToLower(name)+": bad percent-encoding"))
		}
		return d, nil
	}
	ev := &switchyard.Event{Data: body, DataContentType: h.Get("Content-Type")}
	var err error
	for _, f := range []struct {
		name string
		dst  *string
	}{{"Id", &ev.ID}, {"Source", &ev.Source}, {"Type", &ev.Type}, {"Subject", &ev.Subject}, {"Dataschema", &ev.DataSchema}} {
		if *f.dst, err = get(f.name); err != nil {
			return nil, err
		}
	}
	if ev.ID == "" || ev.Source == "" || ev.Type == "" {
		return nil, errors.Join(ErrNotAnEvent, errors.New("ce-id, ce-source and ce-type are required"))
	}
	if v := h.Get("Ce-Specversion"); v != "" && v != "1.0" {
		return nil, errors.Join(ErrNotAnEvent, errors.New("ce-specversion: only 1.0 is supported"))
	}
	if ts, err := get("Time"); err != nil {
		return nil, err
	} else if ts != "" {
		t, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			return nil, errors.Join(ErrNotAnEvent, errors.New("ce-time: not an RFC 3339 time"))
		}
		ev.Time = t
	}
	for k := range h {
		lk := strings.ToLower(k)
		name, ok := strings.CutPrefix(lk, "ce-")
		if !ok || name == "" || coreHeaders[name] {
			continue
		}
		v, err := get(name)
		if err != nil {
			return nil, err
		}
		if ev.Extensions == nil {
			ev.Extensions = make(map[string]string)
		}
		ev.Extensions[name] = v
	}
	return ev, nil
}
