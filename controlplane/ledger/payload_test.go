package ledger

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard-dev/switchyard/internal/acklog"
	"github.com/switchyard-dev/switchyard/internal/testenv/pgtest"
)

// payloadAck returns the first ack of event id of tenant ten, carrying
// data when it is not nil.
func payloadAck(ten, id string, attempt int, data []byte, at time.Time) *acklog.Ack {
	origin := "sy." + ten + ".top_" + ten + "/0/" + id
	return &acklog.Ack{
		V: acklog.Version, ID: acklog.ID(origin, "pip_"+ten, "hook", attempt),
		EventID: id, TenantID: ten, TopicID: "top_" + ten, PipelineID: "pip_" + ten, Destination: "hook",
		Origin: origin, Attempt: attempt, Outcome: acklog.Delivered, HTTPStatus: 200, Time: at,
		IngestTime: at.Add(-time.Second), Data: data,
		Event: &acklog.Attributes{Source: "/s", Type: "t", DataContentType: "application/json"},
	}
}

func TestPayloadsKeptDroppedAndPurged(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	pool := newPool(t, pgtest.NewDB(t, migrated))
	_, err := pool.Exec(ctx, `INSERT INTO tenants (id, name, retention_days, retention_drop_payloads) VALUES
		('ten_keep', 'keep', 30, false), ('ten_drop', 'drop', 30, true), ('ten_other', 'other', NULL, NULL)`)
	require.NoError(t, err)
	w, r := NewWriter(pool), NewReader(pool)
	now := time.Now().UTC()
	big := bytes.Repeat([]byte("x"), acklog.MaxData) // the largest payload
	data := func(ten, id string) []byte {
		t.Helper()
		rec, _, err := r.GetEvent(ctx, "top_"+ten, id)
		require.NoError(t, err)
		return rec.GetEvent().GetData()
	}

	_, err = w.Write(ctx, []*acklog.Ack{
		payloadAck("ten_keep", "k1", 1, []byte(`{"n":1}`), now),
		payloadAck("ten_keep", "big", 1, big, now),
		payloadAck("ten_drop", "d1", 1, []byte(`{"secret":1}`), now),
		payloadAck("ten_other", "o1", 1, []byte(`{"o":1}`), now),
		// Not in the tenants table: nothing is known of its policy.
		payloadAck("ten_gone", "g1", 1, []byte(`{"g":1}`), now),
		// In one batch, a later ack of k1 without a payload and an ack of k2
		// without one before the ack with it.
		payloadAck("ten_keep", "k1", 2, nil, now.Add(time.Second)),
		payloadAck("ten_keep", "k2", 2, nil, now.Add(-time.Minute)),
		payloadAck("ten_keep", "k2", 1, []byte(`{"n":2}`), now),
	})
	require.NoError(t, err)
	require.JSONEq(t, `{"n":1}`, string(data("ten_keep", "k1")))
	require.JSONEq(t, `{"n":2}`, string(data("ten_keep", "k2")), "the ack with the payload wins over an earlier one without")
	require.Equal(t, big, data("ten_keep", "big"))
	require.JSONEq(t, `{"o":1}`, string(data("ten_other", "o1")), "no policy keeps payloads")
	require.Empty(t, data("ten_drop", "d1"), "a tenant that drops payloads has none stored")
	require.Empty(t, data("ten_gone", "g1"), "an unknown tenant has none stored")

	// A payload is never rewritten; an event first stored without one gets
	// it from a later ack.
	_, err = w.Write(ctx, []*acklog.Ack{
		payloadAck("ten_keep", "k1", 3, []byte(`{"n":"changed"}`), now.Add(2*time.Second)),
		payloadAck("ten_keep", "k3", 2, nil, now),
	})
	require.NoError(t, err)
	require.JSONEq(t, `{"n":1}`, string(data("ten_keep", "k1")))
	require.Empty(t, data("ten_keep", "k3"))
	_, err = w.Write(ctx, []*acklog.Ack{payloadAck("ten_keep", "k3", 1, []byte(`{"n":3}`), now)})
	require.NoError(t, err)
	require.JSONEq(t, `{"n":3}`, string(data("ten_keep", "k3")))
	// ListEvents leaves payloads out.
	list, err := r.ListEvents(ctx, EventQuery{TenantID: "ten_keep", Limit: 10})
	require.NoError(t, err)
	require.Len(t, list, 4)
	for _, e := range list {
		require.Empty(t, e.GetEvent().GetData())
	}

	// ten_keep turns drop_payloads on: the retention pass purges its
	// payloads, and only its own (and the unknown tenant's, already none).
	_, err = pool.Exec(ctx, `UPDATE tenants SET retention_drop_payloads = true WHERE id = 'ten_keep'`)
	require.NoError(t, err)
	l, err := New(Config{Pool: pool, Regions: fakeRegions{}, Logger: testLogger()})
	require.NoError(t, err)
	p, err := l.Prune(ctx, now)
	require.NoError(t, err)
	require.EqualValues(t, 4, p.Payloads)
	for _, id := range []string{"k1", "k2", "k3", "big"} {
		require.Empty(t, data("ten_keep", id), id)
	}
	require.JSONEq(t, `{"o":1}`, string(data("ten_other", "o1")), "another tenant's payload stays")
	require.Equal(t, 1, count(t, pool, `SELECT count(*) FROM events WHERE data IS NOT NULL`))

	// New payloads of ten_keep are not stored any more.
	_, err = w.Write(ctx, []*acklog.Ack{payloadAck("ten_keep", "k4", 1, []byte(`{"n":4}`), now)})
	require.NoError(t, err)
	require.Empty(t, data("ten_keep", "k4"))
	p, err = l.Prune(ctx, now)
	require.NoError(t, err)
	require.Zero(t, p.Payloads)
}
