package acklog

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard-dev/switchyard/internal/kafkaname"
)

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 3, 15, 0, 0, 123, time.UTC)
	in := &Ack{
		EventID: "e1", TenantID: "ten_a", TopicID: "top_b", PipelineID: "pip_c", Destination: "hook",
		Attempt: 2, Outcome: Retrying, HTTPStatus: 503, Latency: 1500 * time.Microsecond, Error: "503",
		NodeID: "nod_x", Time: now, NextAttemptTime: now.Add(5 * time.Second), Origin: "sy.t/3/42",
		Event: &Attributes{Source: "/s", Type: "t", Extensions: map[string]string{"a": "b"}},
	}
	rec, err := Record(in)
	require.NoError(t, err)
	require.Equal(t, kafkaname.AckLogTopic, rec.Topic)
	require.Equal(t, "top_b/e1", string(rec.Key))
	require.Equal(t, ID("sy.t/3/42", "pip_c", "hook", 2), in.ID)
	out, err := Decode(rec.Value)
	require.NoError(t, err)
	require.Equal(t, in, out)
}

func TestIDIsDeterministicAndDistinct(t *testing.T) {
	t.Parallel()
	a := ID("t/0/1", "pip", "d", 1)
	require.Len(t, a, 32)
	require.Equal(t, a, ID("t/0/1", "pip", "d", 1))
	for _, other := range []string{ID("t/0/2", "pip", "d", 1), ID("t/0/1", "pip2", "d", 1), ID("t/0/1", "pip", "e", 1), ID("t/0/1", "pip", "d", 2), ID("t/0/1", "pipd", "", 1)} {
		require.NotEqual(t, a, other)
	}
}

func TestDecodeRefuses(t *testing.T) {
	t.Parallel()
	for name, in := range map[string]string{
		"not json":   "{",
		"version":    `{"v":2,"id":"x","pipeline_id":"p","outcome":"delivered"}`,
		"no id":      `{"v":1,"pipeline_id":"p","outcome":"delivered"}`,
		"no outcome": `{"v":1,"id":"x","pipeline_id":"p","outcome":"lost"}`,
	} {
		_, err := Decode([]byte(in))
		require.Error(t, err, name)
	}
}
