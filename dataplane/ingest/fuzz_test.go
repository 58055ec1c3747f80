package ingest

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
)

// encodeStructured writes an event in the CloudEvents JSON format, the
// payload as data_base64.
func encodeStructured(ev *v1.Event) []byte {
	obj := map[string]string{ceSpecVersion: "1.0"}
	for k, v := range ev.GetExtensions() {
		obj[k] = v
	}
	set := func(k, v string) {
		if v != "" {
			obj[k] = v
		}
	}
	set(ceID, ev.GetId())
	set(ceSource, ev.GetSource())
	set(ceType, ev.GetType())
	set(ceSubject, ev.GetSubject())
	set(ceDataContentType, ev.GetDataContentType())
	set(ceDataSchema, ev.GetDataSchema())
	set(cePartitionKey, ev.GetPartitionKey())
	if ev.GetTime() != nil {
		obj[ceTime] = ev.GetTime().AsTime().Format(time.RFC3339Nano)
	}
	if len(ev.GetData()) > 0 {
		obj[ceDataBase64] = base64.StdEncoding.EncodeToString(ev.GetData())
	}
	b, err := json.Marshal(obj)
	if err != nil {
		panic(err)
	}
	return b
}

// percentEncode escapes what the CloudEvents HTTP binding asks to escape in
// header values: bytes outside printable ASCII, space, '"' and '%'.
func percentEncode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || c == '"' || c == '%' {
			b.WriteString("%" + strings.ToUpper(hexByte(c)))
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

func hexByte(c byte) string {
	const digits = "0123456789abcdef"
	return string([]byte{digits[c>>4], digits[c&15]})
}

// encodeBinary writes an event in binary mode.
func encodeBinary(ev *v1.Event) (http.Header, []byte) {
	h := http.Header{}
	set := func(k, v string) {
		if v != "" {
			h.Set(k, percentEncode(v))
		}
	}
	for k, v := range ev.GetExtensions() {
		h["ce-"+k] = []string{percentEncode(v)}
	}
	h.Set("ce-specversion", "1.0")
	set("ce-id", ev.GetId())
	set("ce-source", ev.GetSource())
	set("ce-type", ev.GetType())
	set("ce-subject", ev.GetSubject())
	set("ce-dataschema", ev.GetDataSchema())
	set("ce-partitionkey", ev.GetPartitionKey())
	if ev.GetTime() != nil {
		h.Set("ce-time", ev.GetTime().AsTime().Format(time.RFC3339Nano))
	}
	if ev.GetDataContentType() != "" {
		h.Set("Content-Type", ev.GetDataContentType())
	}
	return h, ev.GetData()
}

func FuzzDecodeStructured(f *testing.F) {
	for _, seed := range []string{
		`{"specversion":"1.0","id":"1","source":"/s","type":"t","data":{"a":[1,2]}}`,
		`{"specversion":"1.0","source":"/s","type":"t","data_base64":"AAEC","datacontenttype":"application/octet-stream"}`,
		`{"specversion":"1.0","source":"/s","type":"t","time":"2026-01-02T03:04:05.123456789+02:00","ext":12,"flag":false,"partitionkey":"k"}`,
		`{"specversion":"1.0","source":"/s","type":"t","datacontenttype":"text/plain","data":"hi\u00e9"}`,
		`{"specversion":"1.0","data":null,"subject":null}`,
		`{"specversion":"1.0","data":1,"data_base64":""}`,
		`{}`, `[]`, `null`, `{"specversion":"1.0"} x`, `{"specversion":"1.0","x":1e999}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, err := decodeStructured(data)
		if err != nil {
			require.ErrorIs(t, err, errMalformed)
			require.Nil(t, ev)
			return
		}
		require.NotNil(t, ev)
		// What was read writes out and reads back the same.
		again, err := decodeStructured(encodeStructured(ev))
		require.NoError(t, err)
		require.True(t, proto.Equal(ev, again), "%v\n%v", ev, again)
		// The same object as a batch of one reads the same.
		events, errs, err := decodeBatch(append(append([]byte("["), data...), ']'), 1)
		require.NoError(t, err)
		require.Nil(t, errs)
		require.True(t, proto.Equal(ev, events[0]))
	})
}

func FuzzDecodeBatch(f *testing.F) {
	for _, seed := range []string{
		`[{"specversion":"1.0","id":"1","source":"/s","type":"t"},{"specversion":"0.3"},3,null]`,
		`[]`, `{}`, `null`, `[[]]`, `["x"]`, `[{"specversion":"1.0","id":5}]`,
	} {
		f.Add([]byte(seed), 4)
	}
	f.Fuzz(func(t *testing.T, data []byte, maxBatch int) {
		if maxBatch < 1 || maxBatch > MaxBatchLimit {
			maxBatch = MaxBatchLimit
		}
		events, errs, err := decodeBatch(data, maxBatch)
		if err != nil {
			require.ErrorIs(t, err, errMalformed)
			return
		}
		require.NotEmpty(t, events)
		require.LessOrEqual(t, len(events), maxBatch)
		if errs != nil {
			require.Len(t, errs, len(events))
		}
		for i, ev := range events {
			require.NotNil(t, ev, "event %d", i)
			if errs != nil && errs[i] != nil {
				require.Equal(t, codeInvalidArgument, errs[i].GetCode())
				continue
			}
			again, err := decodeStructured(encodeStructured(ev))
			require.NoError(t, err)
			require.True(t, proto.Equal(ev, again))
		}
	})
}

func FuzzParseBinary(f *testing.F) {
	f.Add("ce-id", "1", "ce-subject", "caf%C3%A9", "text/plain", []byte("hello"))
	f.Add("ce-partitionkey", "k", "Ce-Ext", "a%20b", "", []byte{})
	f.Add("ce-time", "2026-01-02T03:04:05Z", "ce-", "x", "application/json; charset=utf-8", []byte("{}"))
	f.Add("ce-datacontenttype", "x", "ce-specversion", "0.3", "", []byte(nil))
	f.Add("ce-source", "%zz", "ce-type", "%FF", "text/plain", []byte("x"))
	f.Fuzz(func(t *testing.T, k1, v1s, k2, v2s, contentType string, body []byte) {
		h := http.Header{}
		h["Ce-Specversion"] = []string{"1.0"}
		h[k1] = append(h[k1], v1s)
		h[k2] = append(h[k2], v2s)
		if contentType != "" {
			h.Set("Content-Type", contentType)
		}
		ev, err := parseBinary(h, body)
		if err != nil {
			require.ErrorIs(t, err, errMalformed)
			return
		}
		for name := range ev.GetExtensions() {
			require.Equal(t, strings.ToLower(name), name)
			require.NotEqual(t, cePartitionKey, name)
		}
		if !strings.ContainsAny(ev.GetDataContentType(), "\r\n") {
			hh, b := encodeBinary(ev)
			again, err := parseBinary(hh, b)
			require.NoError(t, err)
			require.True(t, proto.Equal(ev, again), "%v\n%v", ev, again)
		}
	})
}

func FuzzParseTraceparent(f *testing.F) {
	f.Add("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	f.Add("cc-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-what-the-future-holds")
	f.Add("00-00000000000000000000000000000000-b7ad6b7169203331-01")
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := parseTraceparent(s)
		if !ok {
			return
		}
		require.Len(t, got, 55)
		require.True(t, strings.HasPrefix(got, "00-"))
		again, ok := parseTraceparent(got)
		require.True(t, ok)
		require.Equal(t, got, again)
	})
}
