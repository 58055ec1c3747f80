package pipeline

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/switchyard-dev/switchyard/dataplane/deliver"
	"github.com/switchyard-dev/switchyard/dataplane/record"
	"github.com/switchyard-dev/switchyard/internal/acklog"
	"github.com/switchyard-dev/switchyard/internal/kafkaname"
	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
)

// TestRetryRecordWithDestinationOverride checks that a retry record with a
// destination override (as a redrive writes it) goes to the override's URL,
// signed with the named destination's secret, that its acks name the
// override, and that its retry keeps going there.
func TestRetryRecordWithDestinationOverride(t *testing.T) {
	t.Parallel()
	e := newFakeEnv(t)
	createAckTopic(t, e.brokers)
	top := e.topic("top_a", 1)
	original := newSink(t, nil)
	p := e.pipeline("pip_o", top, original.srv.URL)
	e.publish(p)

	// The override answers 503 to each event's first request.
	var (
		mu       sync.Mutex
		requests = map[string]int{}
		accepted = map[string]int{}
		problems []string
	)
	override := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		id := r.Header.Get("Webhook-Id")
		mu.Lock()
		defer mu.Unlock()
		requests[id]++
		ts, err := strconv.ParseInt(r.Header.Get("Webhook-Timestamp"), 10, 64)
		if err != nil {
			problems = append(problems, "bad webhook-timestamp")
		}
		want, err := deliver.Sign([]string{testSecret}, id, time.Unix(ts, 0), body)
		if err != nil || r.Header.Get("Webhook-Signature") != want {
			problems = append(problems, id+": not signed with the destination's secret")
		}
		if requests[id] == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		accepted[id]++
	}))
	t.Cleanup(override.Close)
	o, err := proto.Marshal(&v1.Destination{Name: "d0", Kind: &v1.Destination_Webhook{Webhook: &v1.WebhookDestination{Url: override.URL + "/fixed"}}})
	require.NoError(t, err)

	var ids []string
	var recs []*kgo.Record
	now := time.Now().UTC().Format(time.RFC3339Nano)
	for i := range 5 {
		id := "evt_o" + strconv.Itoa(i)
		rec := record.Encode(testTenant, top.GetId(), &v1.Event{Id: id, Source: "test", Type: "order.created",
			Time: timestamppb.Now(), DataContentType: "application/json", Data: []byte(`{"n":` + strconv.Itoa(i) + `}`)})
		rec.Topic = e.tiers[0].Topic
		for k, v := range map[string]string{
			kafkaname.HeaderPipeline: p.GetId(), kafkaname.HeaderDestination: "d0", kafkaname.HeaderAttempt: "0",
			kafkaname.HeaderFirstAttempt: now, kafkaname.HeaderDue: now, kafkaname.HeaderOrigin: "sy.x/0/" + strconv.Itoa(i),
		} {
			record.SetHeader(rec, k, v)
		}
		rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: kafkaname.HeaderDestinationOverride, Value: o})
		recs = append(recs, rec)
		ids = append(ids, id)
	}
	require.NoError(t, e.producer.ProduceSync(t.Context(), recs...).FirstErr())

	cfg := e.config(e.webhook)
	cfg.Acks = e.producer
	e.start(cfg)
	acks := readAcks(t, e.brokers, 2*len(ids), 30*time.Second, 300*time.Millisecond)
	require.Len(t, acks, 2*len(ids))
	for _, a := range acks {
		require.Equal(t, override.URL+"/fixed", a.Target, "ack %s attempt %d", a.EventID, a.Attempt)
		require.Equal(t, "d0", a.Destination)
		require.Nil(t, a.Data, "retry records carry no payload in acks")
		// A redriven record's sy-attempt is 0; the tier numbers its next
		// attempt 2.
		switch a.Attempt {
		case 2:
			require.Equal(t, acklog.Retrying, a.Outcome)
		case 3:
			require.Equal(t, acklog.Delivered, a.Outcome)
		default:
			t.Fatalf("unexpected attempt %d", a.Attempt)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	require.Empty(t, problems)
	for _, id := range ids {
		require.Equal(t, 1, accepted[id], id)
		require.Equal(t, 2, requests[id], "the retry went to the override too: %s", id)
	}
	original.mu.Lock()
	defer original.mu.Unlock()
	require.Zero(t, original.requests, "nothing went to the pipeline's own URL")
}
