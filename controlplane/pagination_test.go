package controlplane

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/switchyard-dev/switchyard/internal/ids"
)

func TestPageToken(t *testing.T) {
	t.Parallel()
	q := listQuery{kind: ids.Topic, tenantID: ids.New(ids.Tenant)}
	last := ids.New(ids.Topic)
	tok := encodePageToken(q, last)
	after, err := decodePageToken(q, tok)
	require.NoError(t, err)
	require.Equal(t, last, after)

	after, err = decodePageToken(q, "")
	require.NoError(t, err)
	require.Empty(t, after)

	other := q
	other.tenantID = ids.New(ids.Tenant)
	_, err = decodePageToken(other, tok)
	require.ErrorIs(t, err, errBadPageToken, "a token of another tenant's list")
	_, err = decodePageToken(listQuery{kind: ids.Topic, tenantID: q.tenantID, topicID: ids.New(ids.Topic)}, tok)
	require.ErrorIs(t, err, errBadPageToken, "a token of a list with other filters")
	_, err = decodePageToken(listQuery{kind: ids.Pipeline, tenantID: q.tenantID}, tok)
	require.ErrorIs(t, err, errBadPageToken, "a token of another kind")
	for _, bad := range []string{"!", "e30", tok + "x", "bnVsbA"} {
		_, err = decodePageToken(q, bad)
		require.ErrorIs(t, err, errBadPageToken, bad)
	}

	require.Equal(t, defaultPageSize, pageSize(0))
	require.Equal(t, defaultPageSize, pageSize(-3))
	require.Equal(t, 7, pageSize(7))
	require.Equal(t, maxPageSize, pageSize(5000))
}

func FuzzDecodePageToken(f *testing.F) {
	q := listQuery{kind: ids.Pipeline, tenantID: "ten_01jq3v6x0m8y2c4r5t7w9z1b3d", topicID: "top_01jq3v6x0m8y2c4r5t7w9z1b3d"}
	f.Add(encodePageToken(q, "pip_01jq3v6x0m8y2c4r5t7w9z1b3d"))
	f.Add("")
	f.Add("e30")
	f.Add("eyJhIjoicGlwXzAxIiwiZiI6IiJ9")
	f.Fuzz(func(t *testing.T, token string) {
		after, err := decodePageToken(q, token)
		if err != nil {
			require.ErrorIs(t, err, errBadPageToken)
			require.Empty(t, after)
			return
		}
		if token == "" {
			require.Empty(t, after)
			return
		}
		require.NoError(t, ids.Check(ids.Pipeline, after))
		// Whatever decodes, re-encodes to a token decoding to the same id.
		again, err := decodePageToken(q, encodePageToken(q, after))
		require.NoError(t, err)
		require.Equal(t, after, again)
	})
}
