package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-dev/switchyard/internal/kafkaname"
	"github.com/switchyard-dev/switchyard/internal/netguard"
	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
)

// loopbackName returns a host name, other than localhost, that resolves only
// to loopback addresses on this machine (the machine's own name usually
// does), or skips the test.
func loopbackName(t *testing.T) string {
	t.Helper()
	candidates := []string{"localhost.localdomain", "ip6-localhost", "ip6-loopback"}
	if h, err := os.Hostname(); err == nil {
		candidates = append([]string{h}, candidates...)
	}
	for _, name := range candidates {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		addrs, err := net.DefaultResolver.LookupHost(ctx, name)
		cancel()
		if err != nil || len(addrs) == 0 || strings.HasSuffix(name, "localhost") {
			continue
		}
		ok := true
		for _, a := range addrs {
			ip, err := netip.ParseAddr(a)
			ok = ok && err == nil && ip.IsLoopback() && ip.Is4()
		}
		if ok {
			return name
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("no host name resolving to 127.0.0.1 among %v", candidates)
	}
	t.Skipf("no host name resolving to 127.0.0.1 among %v", candidates)
	return ""
}

// TestSSRFGuard: with an operator who allowed nothing special, webhook URLs
// naming loopback, private and metadata addresses are refused when the
// pipeline is written; a host name that resolves to loopback passes that
// check but is refused when the node dials it, so its events are
// dead-lettered naming the blocked address and the receiver sees nothing.
func TestSSRFGuard(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{}) // the zero policy: nothing special allowed
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	topic := e.createTopic("audit", 2)
	s := newSink(t)
	port := s.srv.Listener.Addr().(*net.TCPAddr).Port

	for _, tc := range []struct{ url, want string }{
		{fmt.Sprintf("http://127.0.0.1:%d/hook", port), "address 127.0.0.1 is loopback"},
		{"http://10.0.0.1/hook", "address 10.0.0.1 is private"},
		{"http://169.254.169.254/latest/meta-data/", "address 169.254.169.254 is a cloud metadata endpoint"},
		{fmt.Sprintf("http://localhost:%d/hook", port), `host "localhost" is loopback`},
	} {
		_, err := e.pipelines.CreatePipeline(ctx, &v1.CreatePipelineRequest{TenantId: e.tenant.GetId(), Pipeline: &v1.Pipeline{
			Name: "refused", TopicId: topic.GetId(), Destinations: []*v1.Destination{webhook("hook", tc.url, 0)},
		}})
		require.Error(t, err, tc.url)
		require.Equal(t, connect.CodeInvalidArgument, connect.CodeOf(err), "%s: %v", tc.url, err)
		require.Contains(t, err.Error(), "pipeline.destinations[0].webhook.url", tc.url)
		require.Contains(t, err.Error(), tc.want, tc.url)
		t.Logf("refused at create time: %s: %v", tc.url, err)
	}

	name := loopbackName(t)
	hookURL := fmt.Sprintf("http://%s:%d/hook", name, port)
	p := e.createPipeline(&v1.Pipeline{
		Name: "rebinding", TopicId: topic.GetId(),
		Destinations: []*v1.Destination{webhook("hook", hookURL, 0)},
		RetryPolicy:  fastRetries(5),
	})
	t.Logf("accepted at create time (a host name): %s", hookURL)
	node := e.startNode(netguard.Policy{})

	events := makeEvents("ssrf", 5, 5)
	e.publishAll(ctx, e.ingestClient(node.Addr(), e.producerKey), "audit", events, 200)
	dl := consumeDeadLetters(t, e.brokers, p.GetDeadLetterTopic(), len(events), 45*time.Second)
	for _, r := range dl {
		lastErr := header(r, kafkaname.HeaderLastError)
		require.Equal(t, "1", header(r, kafkaname.HeaderAttempt), "a refused address is not retried")
		require.Equal(t, "permanent_error", header(r, kafkaname.HeaderReason))
		require.Contains(t, lastErr, "127.0.0.1")
		require.Contains(t, lastErr, "loopback")
	}
	t.Logf("dead-lettered at dial time: %d of %d events, e.g. %q", len(dl), len(events), header(dl[0], kafkaname.HeaderLastError))
	require.Zero(t, s.requests.Load(), "the receiver must see nothing")
}

// TestBadInput: what ingest refuses, and with which code and message, while
// the valid events of the same batch are delivered.
func TestBadInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{webhookPolicy: netguard.Policy{AllowLoopback: true}, maxEventBytes: 1024})
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	topic := e.createTopic("inbox", 2)
	s := newSink(t)
	e.createPipeline(&v1.Pipeline{
		Name: "inbox-hook", TopicId: topic.GetId(),
		Destinations: []*v1.Destination{webhook("hook", s.url(), 0)},
	})
	node := e.startNode(netguard.Policy{AllowLoopback: true})
	ing := e.ingestClient(node.Addr(), e.producerKey)

	ok := func(id string) *v1.Event {
		return &v1.Event{Id: id, Source: "/e2e", Type: "inbox.item", DataContentType: "application/json", Data: []byte(`{"ok":true}`)}
	}
	oversized := ok("bad-big")
	oversized.Data = []byte(`{"blob":"` + strings.Repeat("x", 2048) + `"}`)
	untyped := ok("bad-untyped")
	untyped.Type = ""
	badExt := ok("bad-ext")
	badExt.Extensions = map[string]string{"Not-Valid": "x"}

	// One batch: three good events around three bad ones.
	res, err := ing.Publish(ctx, &v1.PublishRequest{Topic: "inbox", Events: []*v1.Event{
		ok("good-1"), oversized, ok("good-2"), untyped, badExt, ok("good-3"),
	}})
	require.NoError(t, err)
	results := res.GetResults()
	require.Len(t, results, 6)
	for _, i := range []int{0, 2, 5} {
		require.Nil(t, results[i].GetError(), "result %d", i)
	}
	require.Equal(t, "resource_exhausted", results[1].GetError().GetCode())
	require.Contains(t, results[1].GetError().GetMessage(), "1024")
	require.Equal(t, "invalid_argument", results[3].GetError().GetCode())
	require.Contains(t, results[3].GetError().GetMessage(), "type")
	require.Equal(t, "invalid_argument", results[4].GetError().GetCode())
	require.Contains(t, results[4].GetError().GetMessage(), "extensions")
	for _, i := range []int{1, 3, 4} {
		t.Logf("batch event %d refused: %s: %s", i, results[i].GetError().GetCode(), results[i].GetError().GetMessage())
	}

	// Whole requests refused.
	_, err = ing.Publish(ctx, &v1.PublishRequest{Topic: "no-such-topic", Events: []*v1.Event{ok("x-1")}})
	require.Equal(t, connect.CodeNotFound, connect.CodeOf(err), "%v", err)
	require.Contains(t, err.Error(), "no-such-topic")
	t.Logf("unknown topic: %v", err)
	wrongKey := e.ingestClient(node.Addr(), e.producerKey[:len(e.producerKey)-4]+"AAAA")
	_, err = wrongKey.Publish(ctx, &v1.PublishRequest{Topic: "inbox", Events: []*v1.Event{ok("x-2")}})
	require.Equal(t, connect.CodeUnauthenticated, connect.CodeOf(err), "%v", err)
	t.Logf("wrong key: %v", err)
	noKey := e.ingestClient(node.Addr(), "")
	_, err = noKey.Publish(ctx, &v1.PublishRequest{Topic: "inbox", Events: []*v1.Event{ok("x-3")}})
	require.Equal(t, connect.CodeUnauthenticated, connect.CodeOf(err), "%v", err)

	// CloudEvents over HTTP.
	ce := func(headers map[string]string, body string) (int, map[string]any) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+node.Addr()+"/ce/inbox", strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+e.producerKey)
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		resp, err := e.hc.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		raw, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		var out map[string]any
		require.NoError(t, json.Unmarshal(raw, &out), "body %s", raw)
		return resp.StatusCode, out
	}
	binary := map[string]string{"ce-specversion": "1.0", "ce-id": "ce-good", "ce-source": "/curl", "ce-type": "inbox.item", "Content-Type": "application/json"}
	code, body := ce(binary, `{"ok":true}`)
	require.Equal(t, http.StatusAccepted, code, "%v", body)
	require.Equal(t, "ce-good", body["id"])

	missingType := map[string]string{"ce-specversion": "1.0", "ce-id": "ce-bad", "ce-source": "/curl", "Content-Type": "application/json"}
	code, body = ce(missingType, `{}`)
	require.Equal(t, http.StatusBadRequest, code, "%v", body)
	require.Equal(t, "invalid_argument", body["code"])
	require.Contains(t, body["message"], "type")
	t.Logf("CloudEvent without ce-type: %d %v", code, body)

	code, body = ce(map[string]string{"Content-Type": "application/cloudevents+json"}, `{"specversion":"1.0","id":`)
	require.Equal(t, http.StatusBadRequest, code, "%v", body)
	require.Equal(t, "invalid_argument", body["code"])
	t.Logf("truncated structured CloudEvent: %d %v", code, body)

	binary["ce-id"] = "ce-big"
	code, body = ce(binary, `{"blob":"`+strings.Repeat("y", 4096)+`"}`)
	require.Equal(t, http.StatusRequestEntityTooLarge, code, "%v", body)
	t.Logf("oversized CloudEvent: %d %v", code, body)

	want := map[string]bool{"good-1": true, "good-2": true, "good-3": true, "ce-good": true}
	s.waitAll(t, "inbox-hook", want, 30*time.Second)
	// Give a wrongly accepted event time to show up before counting.
	time.Sleep(500 * time.Millisecond)
	got := s.tally(want)
	t.Logf("delivered: %s", got)
	require.Zero(t, got.unexpected, "a refused event was delivered")
}
