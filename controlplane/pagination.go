package controlplane

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/switchyard-dev/switchyard/controlplane/store"
	"github.com/switchyard-dev/switchyard/internal/ids"
)

// Page sizes of list calls.
const (
	defaultPageSize = 50
	maxPageSize     = 1000
	// maxPageTokenLen bounds the tokens the decoder looks at; the API allows
	// 512 characters.
	maxPageTokenLen = 512
)

// errBadPageToken is returned by decodePageToken for any token it refuses.
var errBadPageToken = errors.New("invalid page token")

// pageToken is the decoded form of a list call's next_page_token: where the
// next page starts and a hash of the parameters of the list it belongs to.
type pageToken struct {
	// After is the id of the last object of the previous page.
	After string `json:"a"`
	// Filter is filterHash of the list's parameters.
	Filter string `json:"f"`
}

// listQuery is what a list call asks for, apart from the page position.
type listQuery struct {
	// kind is the prefix of the listed ids (ids.Tenant, ...).
	kind string
	// tenantID and topicID restrict the list; empty for none.
	tenantID string
	topicID  string
}

// filterHash is a short hash of the list's parameters, so a token used with
// other parameters is refused instead of silently skipping objects.
func (q listQuery) filterHash() string {
	sum := sha256.Sum256([]byte(q.kind + "\x00" + q.tenantID + "\x00" + q.topicID))
	return hex.EncodeToString(sum[:8])
}

// encodePageToken returns the opaque token of the page after lastID.
func encodePageToken(q listQuery, lastID string) string {
	b, err := json.Marshal(pageToken{After: lastID, Filter: q.filterHash()})
	if err != nil {
		// A struct of two strings always marshals.
		panic("controlplane: encoding page token: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodePageToken returns the id after which the page of token starts. An
// empty token starts at the beginning. Tokens that are malformed, name an id
// of another kind, or were issued for other list parameters are refused
// with errBadPageToken.
func decodePageToken(q listQuery, token string) (string, error) {
	if token == "" {
		return "", nil
	}
	if len(token) > maxPageTokenLen {
		return "", errBadPageToken
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(token)
	if err != nil {
		return "", errBadPageToken
	}
	var pt pageToken
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&pt); err != nil || dec.More() {
		return "", errBadPageToken
	}
	if pt.Filter != q.filterHash() {
		return "", errBadPageToken
	}
	if ids.Check(q.kind, pt.After) != nil {
		return "", errBadPageToken
	}
	return pt.After, nil
}

// pageSize returns the effective page size of a request.
func pageSize(requested int32) int {
	switch {
	case requested <= 0:
		return defaultPageSize
	case requested > maxPageSize:
		return maxPageSize
	default:
		return int(requested)
	}
}

// pageRequest is the paging part of a list request.
type pageRequest interface {
	proto.Message
	GetPageSize() int32
	GetPageToken() string
}

// listPage runs one page of a list: it decodes the token, asks the store for
// one object more than the page size to learn whether a next page exists,
// and returns the page with the next token (empty on the last page).
func listPage[T interface{ GetId() string }](
	ctx context.Context,
	s *Server,
	req pageRequest,
	q listQuery,
	list func(context.Context, store.ListParams) ([]T, error),
) ([]T, string, error) {
	after, err := decodePageToken(q, req.GetPageToken())
	if err != nil {
		return nil, "", invalidArgument(violation(
			fieldPath(req.ProtoReflect().Descriptor(), "page_token"),
			"page_token.valid",
			"page_token is not valid for this list; start again without it"))
	}
	size := pageSize(req.GetPageSize())
	items, err := list(ctx, store.ListParams{TenantID: q.tenantID, TopicID: q.topicID, AfterID: after, Limit: size + 1})
	if err != nil {
		return nil, "", s.storeError(ctx, err, q.kindName(), "")
	}
	if len(items) <= size {
		return items, "", nil
	}
	items = items[:size]
	return items, encodePageToken(q, items[size-1].GetId()), nil
}

// kindName is the name of the listed kind, for messages.
func (q listQuery) kindName() string {
	return kindNames[q.kind]
}

// kindNames names each kind of object in messages.
var kindNames = map[string]string{
	ids.Tenant:   "tenant",
	ids.Region:   "region",
	ids.Topic:    "topic",
	ids.Pipeline: "pipeline",
	ids.APIKey:   "api key",
}
