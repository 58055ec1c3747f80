package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/switchyard-dev/switchyard/dataplane/record"
	"github.com/switchyard-dev/switchyard/internal/kafkaname"
	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
)

// ceResponse is a decoded answer of the CloudEvents handler.
type ceResponse struct {
	status int
	header http.Header
	body   []byte
}

// post sends a CloudEvents request to /ce/<topic> with the token of key.
func (f *fixture) post(key, topic string, headers map[string]string, body string) ceResponse {
	f.t.Helper()
	return f.do(http.MethodPost, key, topic, headers, body)
}

func (f *fixture) do(method, key, topic string, headers map[string]string, body string) ceResponse {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, f.srv.URL+"/ce/"+topic, strings.NewReader(body))
	require.NoError(f.t, err)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+f.tokens[key])
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := f.srv.Client().Do(req)
	require.NoError(f.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(f.t, err)
	return ceResponse{status: resp.StatusCode, header: resp.Header, body: b}
}

func (r ceResponse) result(t *testing.T) ceResult {
	t.Helper()
	var res ceResult
	require.NoError(t, json.Unmarshal(r.body, &res), string(r.body))
	return res
}

func (r ceResponse) error(t *testing.T) ceError {
	t.Helper()
	var e ceError
	require.NoError(t, json.Unmarshal(r.body, &e), string(r.body))
	require.NotEmpty(t, e.Code, string(r.body))
	require.NotEmpty(t, e.Message, string(r.body))
	return e
}

func binaryHeaders(extra map[string]string) map[string]string {
	h := map[string]string{
		"ce-specversion": "1.0",
		"ce-id":          "b-1",
		"ce-source":      "/shop",
		"ce-type":        "order.created",
		"Content-Type":   "text/plain",
	}
	for k, v := range extra {
		if v == "" {
			delete(h, k)
			continue
		}
		h[k] = v
	}
	return h
}

// decodeOne returns the single record of a topic, decoded.
func decodeOne(t *testing.T, f *fixture, top *v1.Topic) (*kgo.Record, *v1.Event) {
	t.Helper()
	recs := consumeAll(t, f.brokers, kafkaTopic(top), 1)
	d, err := record.Decode(recs[0])
	require.NoError(t, err)
	return recs[0], d.Event
}

func TestCloudEventsBinary(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	resp := f.post(keyProducer, "orders", binaryHeaders(map[string]string{
		"ce-subject":      "caf%C3%A9%20au%20lait",
		"ce-time":         "2026-12-01T08:30:00.5+01:00",
		"ce-dataschema":   "https://example.com/s.json",
		"Ce-Region":       "eu",
		"ce-partitionkey": "customer-7",
		"traceparent":     "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
	}), "hello")
	require.Equal(t, http.StatusAccepted, resp.status, string(resp.body))
	res := resp.result(t)
	require.Equal(t, "b-1", res.ID)
	require.NotNil(t, res.Partition)
	require.NotNil(t, res.Offset)
	require.Nil(t, res.Error)

	rec, ev := decodeOne(t, f, f.orders)
	require.Equal(t, *res.Partition, rec.Partition)
	require.Equal(t, *res.Offset, rec.Offset)
	require.Equal(t, "customer-7", string(rec.Key))
	require.Equal(t, "café au lait", ev.GetSubject())
	require.Equal(t, "2026-12-01T07:30:00.5Z", header(rec, kafkaname.HeaderCEPrefix+"time"))
	require.Equal(t, "https://example.com/s.json", ev.GetDataSchema())
	require.Equal(t, map[string]string{"region": "eu"}, ev.GetExtensions(), "partitionkey is not kept as an extension")
	require.Equal(t, "text/plain", ev.GetDataContentType())
	require.Equal(t, "hello", string(ev.GetData()))
	require.Equal(t, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", header(rec, kafkaname.HeaderTraceparent))
}

func TestCloudEventsStructured(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	ct := map[string]string{"Content-Type": "application/cloudevents+json; charset=utf-8"}
	bodies := []string{
		`{"specversion":"1.0","id":"s-1","source":"/shop","type":"order.created","data":{"total": 3},"partitionkey":"k","priority":5,"urgent":true}`,
		`{"specversion":"1.0","id":"s-2","source":"/shop","type":"order.created","datacontenttype":"application/octet-stream","data_base64":"AAEC/w=="}`,
		`{"specversion":"1.0","id":"s-3","source":"/shop","type":"order.created","datacontenttype":"text/plain","data":"plain text","subject":null}`,
		`{"specversion":"1.0","source":"/shop","type":"order.created"}`,
	}
	ids := make([]string, len(bodies))
	for i, b := range bodies {
		resp := f.post(keyAdmin, f.orders.Id, ct, b)
		require.Equal(t, http.StatusAccepted, resp.status, string(resp.body))
		ids[i] = resp.result(t).ID
	}
	require.Equal(t, []string{"s-1", "s-2", "s-3"}, ids[:3])
	require.NotEmpty(t, ids[3])

	recs := consumeAll(t, f.brokers, kafkaTopic(f.orders), 4)
	got := map[string]*v1.Event{}
	keys := map[string]string{}
	for _, r := range recs {
		d, err := record.Decode(r)
		require.NoError(t, err)
		got[d.Event.GetId()] = d.Event
		keys[d.Event.GetId()] = string(r.Key)
	}
	require.Equal(t, `{"total": 3}`, string(got["s-1"].GetData()))
	require.Equal(t, "application/json", got["s-1"].GetDataContentType())
	require.Equal(t, map[string]string{"priority": "5", "urgent": "true"}, got["s-1"].GetExtensions())
	require.Equal(t, "k", keys["s-1"])
	require.Equal(t, []byte{0, 1, 2, 0xff}, got["s-2"].GetData())
	require.Equal(t, "plain text", string(got["s-3"].GetData()))
	require.Empty(t, got["s-3"].GetSubject())
	require.Empty(t, got[ids[3]].GetData())
	require.NotNil(t, got[ids[3]].GetTime())
}

func TestCloudEventsBatch(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{quotas: &v1.TenantQuotas{MaxEventBytes: 16}})
	body := `[
		{"specversion":"1.0","id":"a-1","source":"/s","type":"t","data":"ok"},
		{"specversion":"0.3","id":"a-2","source":"/s","type":"t"},
		{"specversion":"1.0","id":"a-3","source":"/s"},
		"not an object",
		{"specversion":"1.0","id":"a-5","source":"/s","type":"t","data":"this payload is over sixteen bytes"},
		{"specversion":"1.0","id":"a-6","source":"/s","type":"t","data_base64":"aGk="}
	]`
	resp := f.post(keyProducer, "orders", map[string]string{"Content-Type": "application/cloudevents-batch+json"}, body)
	require.Equal(t, http.StatusOK, resp.status, string(resp.body))
	var results []ceResult
	require.NoError(t, json.Unmarshal(resp.body, &results))
	require.Len(t, results, 6)
	wantErr := map[int]string{1: codeInvalidArgument, 2: codeInvalidArgument, 3: codeInvalidArgument, 4: codeResourceExhausted}
	for i, r := range results {
		if code, ok := wantErr[i]; ok {
			require.NotNil(t, r.Error, "event %d", i)
			require.Equal(t, code, r.Error.Code, "event %d: %s", i, r.Error.Message)
			require.Nil(t, r.Partition)
			continue
		}
		require.Nil(t, r.Error, "event %d", i)
		require.NotNil(t, r.Partition)
		require.NotNil(t, r.Offset)
	}
	require.Equal(t, "a-2", results[1].ID)
	require.Contains(t, results[1].Error.Message, "specversion")
	require.Contains(t, results[2].Error.Message, "type")
	require.Contains(t, results[3].Error.Message, "not a JSON object")

	recs := consumeAll(t, f.brokers, kafkaTopic(f.orders), 2)
	var got []string
	for _, r := range recs {
		got = append(got, header(r, kafkaname.HeaderCEPrefix+"id"))
	}
	require.ElementsMatch(t, []string{"a-1", "a-6"}, got)
}

func TestCloudEventsMalformed(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{maxBatch: 2})
	structured := map[string]string{"Content-Type": "application/cloudevents+json"}
	batch := map[string]string{"Content-Type": "application/cloudevents-batch+json"}
	cases := []struct {
		name    string
		headers map[string]string
		body    string
		status  int
		msg     string
	}{
		{"binary without specversion", binaryHeaders(map[string]string{"ce-specversion": ""}), "x", 400, "ce-specversion"},
		{"binary old specversion", binaryHeaders(map[string]string{"ce-specversion": "0.3"}), "x", 400, `"0.3" is not supported`},
		{"binary bad time", binaryHeaders(map[string]string{"ce-time": "yesterday"}), "x", 400, "RFC 3339"},
		{"binary bad percent-encoding", binaryHeaders(map[string]string{"ce-subject": "100%"}), "x", 400, "percent-encoding"},
		{"binary invalid UTF-8", binaryHeaders(map[string]string{"ce-subject": "%FF"}), "x", 400, "UTF-8"},
		{"binary datacontenttype header", binaryHeaders(map[string]string{"ce-datacontenttype": "text/plain"}), "x", 400, "Content-Type"},
		{"binary without type", binaryHeaders(map[string]string{"ce-type": ""}), "x", 400, "type"},
		{"binary bad extension name", binaryHeaders(map[string]string{"ce-with_underscore": "x"}), "x", 400, "extensions"},
		{"structured not JSON", structured, `{"specversion":`, 400, "not a JSON object"},
		{"structured array", structured, `[]`, 400, "not a JSON object"},
		{"structured trailing data", structured, `{"specversion":"1.0","source":"/s","type":"t"} {}`, 400, "data after"},
		{"structured without specversion", structured, `{"source":"/s","type":"t"}`, 400, "specversion"},
		{"structured specversion number", structured, `{"specversion":1.0,"source":"/s","type":"t"}`, 400, "specversion"},
		{"structured data and data_base64", structured, `{"specversion":"1.0","source":"/s","type":"t","data":1,"data_base64":"AA=="}`, 400, "both"},
		{"structured bad base64", structured, `{"specversion":"1.0","source":"/s","type":"t","data_base64":"***"}`, 400, "base64"},
		{"structured id number", structured, `{"specversion":"1.0","id":7,"source":"/s","type":"t"}`, 400, `"id" must be a JSON string`},
		{"structured extension object", structured, `{"specversion":"1.0","source":"/s","type":"t","ext":{"a":1}}`, 400, "object or array"},
		{"structured bad time", structured, `{"specversion":"1.0","source":"/s","type":"t","time":"noon"}`, 400, "RFC 3339"},
		{"structured without source", structured, `{"specversion":"1.0","type":"t"}`, 400, "source"},
		{"batch not an array", batch, `{"specversion":"1.0"}`, 400, "not a JSON array"},
		{"batch null", batch, `null`, 400, "not a JSON array"},
		{"batch empty", batch, `[]`, 400, "empty"},
		{"batch over MaxBatch", batch, `[{},{},{}]`, 400, "limit of 2"},
		{"unsupported format", map[string]string{"Content-Type": "application/cloudevents+avro"}, "x", 415, "unsupported event format"},
	}
	for _, tc := range cases {
		resp := f.post(keyProducer, "orders", tc.headers, tc.body)
		require.Equal(t, tc.status, resp.status, "%s: %s", tc.name, resp.body)
		e := resp.error(t)
		require.Equal(t, codeInvalidArgument, e.Code, tc.name)
		require.Contains(t, e.Message, tc.msg, tc.name)
		require.Equal(t, "application/json", resp.header.Get("Content-Type"))
	}
	consumeAll(t, f.brokers, kafkaTopic(f.orders), 0)
	require.EqualValues(t, len(cases)+2, f.counter("invalid")) // the batch over MaxBatch counts its 3 events
}

func TestCloudEventsRefusals(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{maxBatch: 4, quotas: &v1.TenantQuotas{MaxEventBytes: 64, EventsPerSecond: 1, Burst: 3}})
	ok := binaryHeaders(nil)

	resp := f.post("", "orders", ok, "x")
	require.Equal(t, http.StatusUnauthorized, resp.status)
	require.Equal(t, "unauthenticated", resp.error(t).Code)
	require.Equal(t, "Bearer", resp.header.Get("WWW-Authenticate"))
	for _, key := range []string{keyExpired, keyRevoked, keyWrongSecret} {
		resp = f.post(key, "orders", ok, "x")
		require.Equal(t, http.StatusUnauthorized, resp.status, key)
		require.Equal(t, msgInvalidToken, resp.error(t).Message, key)
	}

	resp = f.post(keyScoped, "orders", ok, "x")
	require.Equal(t, http.StatusForbidden, resp.status)
	require.Equal(t, "permission_denied", resp.error(t).Code)

	resp = f.post(keyProducer, "nope", ok, "x")
	require.Equal(t, http.StatusNotFound, resp.status)
	require.Equal(t, "not_found", resp.error(t).Code)
	resp = f.post(keyOther, f.orders.Id, ok, "x")
	require.Equal(t, http.StatusNotFound, resp.status)
	resp = f.post(keyProducer, "", ok, "x")
	require.Equal(t, http.StatusNotFound, resp.status)

	resp = f.do(http.MethodGet, keyProducer, "orders", nil, "")
	require.Equal(t, http.StatusMethodNotAllowed, resp.status)
	require.Equal(t, http.MethodPost, resp.header.Get("Allow"))

	// Binary mode: the body is the data, bounded by max_event_bytes.
	resp = f.post(keyProducer, "orders", ok, strings.Repeat("x", 65))
	require.Equal(t, http.StatusRequestEntityTooLarge, resp.status, string(resp.body))
	require.Equal(t, codeResourceExhausted, resp.error(t).Code)
	// Structured mode: the body fits, the data does not.
	resp = f.post(keyProducer, "orders", map[string]string{"Content-Type": "application/cloudevents+json"},
		`{"specversion":"1.0","id":"big","source":"/s","type":"t","datacontenttype":"text/plain","data":"`+strings.Repeat("x", 65)+`"}`)
	require.Equal(t, http.StatusRequestEntityTooLarge, resp.status, string(resp.body))
	require.Contains(t, resp.error(t).Message, "65 bytes")
	// Batch mode: the body itself over the bound.
	resp = f.post(keyProducer, "orders", map[string]string{"Content-Type": "application/cloudevents-batch+json"},
		"["+strings.Repeat(" ", int(f.svc.maxBodyBytes(64, 4)))+"]")
	require.Equal(t, http.StatusRequestEntityTooLarge, resp.status)

	// Rate limit: burst 3 at 1/s.
	for i := range 3 {
		resp = f.post(keyProducer, "orders", ok, "x")
		require.Equal(t, http.StatusAccepted, resp.status, "event %d: %s", i, resp.body)
	}
	resp = f.post(keyProducer, "orders", ok, "x")
	require.Equal(t, http.StatusTooManyRequests, resp.status)
	require.Equal(t, "1", resp.header.Get("Retry-After"))
	require.Equal(t, codeResourceExhausted, resp.error(t).Code)
	batchOf4 := `[` + strings.Repeat(`{"specversion":"1.0","source":"/s","type":"t"},`, 3) + `{"specversion":"1.0","source":"/s","type":"t"}]`
	resp = f.post(keyProducer, "orders", map[string]string{"Content-Type": "application/cloudevents-batch+json"}, batchOf4)
	require.Equal(t, http.StatusRequestEntityTooLarge, resp.status, "a batch larger than the burst never fits")
	require.Contains(t, resp.error(t).Message, "burst of 3")

	consumeAll(t, f.brokers, kafkaTopic(f.orders), 3)
	require.EqualValues(t, 5, f.counter("unauthorized"))
	require.EqualValues(t, 3, f.counter("unknown_topic"))
	require.EqualValues(t, 3, f.counter("too_large"))
	require.EqualValues(t, 1+4, f.counter("rate_limited"))
}

func TestContentMode(t *testing.T) {
	t.Parallel()
	for ct, want := range map[string]ceMode{
		"":                                   modeBinary,
		"text/plain":                         modeBinary,
		"application/json":                   modeBinary,
		"not a media type;;":                 modeBinary,
		"application/cloudevents+json":       modeStructured,
		"Application/CloudEvents+JSON; x=1":  modeStructured,
		"application/cloudevents-batch+json": modeBatch,
	} {
		got, err := contentMode(ct)
		require.NoError(t, err, ct)
		require.Equal(t, want, got, ct)
	}
	_, err := contentMode("application/cloudevents+protobuf")
	require.Error(t, err)
}

func TestDataBytes(t *testing.T) {
	t.Parallel()
	require.Equal(t, `"s"`, string(dataBytes("application/json", []byte(`"s"`))))
	require.Equal(t, `"s"`, string(dataBytes("application/vnd.x+json; v=1", []byte(`"s"`))))
	require.Equal(t, "s", string(dataBytes("text/plain", []byte(`"s"`))))
	require.Equal(t, `[1]`, string(dataBytes("text/plain", []byte(`[1]`))))
	require.True(t, bytes.Equal([]byte(`{}`), dataBytes("", []byte(`{}`))))
}
