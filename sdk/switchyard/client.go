package switchyard

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"connectrpc.com/connect"

	"github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1/switchyardv1connect"
	"github.com/switchyard-dev/switchyard/sdk/publishwire"
)

// Client calls one Switchyard service: a data-plane node for [Client.Publish]
// and [Producer], the control plane for the admin clients. It is safe for
// concurrent use; create one per service and reuse it.
type Client struct {
	cfg    clientConfig
	eps    *endpointSet
	hc     *http.Client
	ownsHC bool

	ingest    switchyardv1connect.IngestServiceClient
	tenants   switchyardv1connect.TenantServiceClient
	regions   switchyardv1connect.RegionServiceClient
	topics    switchyardv1connect.TopicServiceClient
	pipelines switchyardv1connect.PipelineServiceClient
	apiKeys   switchyardv1connect.ApiKeyServiceClient
}

// NewClient returns a client of the service at baseURL (e.g.
// "http://127.0.0.1:8081" for a data-plane node of `switchyard dev`).
func NewClient(baseURL string, opts ...ClientOption) (*Client, error) {
	cfg := clientConfig{timeout: DefaultTimeout, cooldown: DefaultFailoverCooldown}
	for _, o := range opts {
		o.applyClient(&cfg)
	}
	cfg.retry = cfg.retry.withDefaults()
	cfg.cooldown = cmp.Or(cfg.cooldown, DefaultFailoverCooldown)
	if cfg.logger == nil {
		cfg.logger = slog.New(slog.DiscardHandler)
	}
	if cfg.retry.MaxAttempts < 1 || cfg.retry.InitialBackoff < 0 || cfg.retry.MaxBackoff < cfg.retry.InitialBackoff {
		return nil, fmt.Errorf("switchyard: invalid retry policy %+v", cfg.retry)
	}
	urls := append([]string{baseURL}, cfg.endpoints...)
	eps := &endpointSet{cooldown: cfg.cooldown, logger: cfg.logger}
	for _, raw := range urls {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("switchyard: endpoint %q is not an http or https URL", raw)
		}
		u.Path = strings.TrimSuffix(u.Path, "/")
		eps.list = append(eps.list, &endpoint{url: u})
	}
	c := &Client{cfg: cfg, eps: eps, hc: cfg.httpClient}
	if c.hc == nil {
		c.hc, c.ownsHC = defaultHTTPClient(cfg.grpc), true
	}
	copts := []connect.ClientOption{connect.WithInterceptors(&interceptor{c: c})}
	if cfg.grpc {
		copts = append(copts, connect.WithGRPC())
	}
	doer := &failoverDoer{hc: c.hc, eps: eps}
	base := eps.list[0].url.String()
	// Publish responses are small (an id, a partition and an offset per
	// event, the ids being those the client sent): compressing them costs
	// the node more CPU than it saves on the wire, so the ingest client
	// does not ask for it. Its codec encodes requests and decodes responses
	// without reflection.
	ingestOpts := append(slices.Clip(copts), connect.WithAcceptCompression("gzip", nil, nil),
		connect.WithCodec(publishwire.Codec{}))
	c.ingest = switchyardv1connect.NewIngestServiceClient(doer, base, ingestOpts...)
	c.tenants = switchyardv1connect.NewTenantServiceClient(doer, base, copts...)
	c.regions = switchyardv1connect.NewRegionServiceClient(doer, base, copts...)
	c.topics = switchyardv1connect.NewTopicServiceClient(doer, base, copts...)
	c.pipelines = switchyardv1connect.NewPipelineServiceClient(doer, base, copts...)
	c.apiKeys = switchyardv1connect.NewApiKeyServiceClient(doer, base, copts...)
	return c, nil
}

// Close releases the idle connections of the client's own HTTP client (not
// of one given with [WithHTTPClient]). The client must not be used after.
func (c *Client) Close() {
	if c.ownsHC {
		c.hc.CloseIdleConnections()
	}
}

// defaultHTTPClient is the HTTP client of a Client without WithHTTPClient.
// gRPC needs HTTP/2, in cleartext for http:// URLs.
func defaultHTTPClient(grpc bool) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	p := new(http.Protocols)
	p.SetHTTP2(true)
	if grpc {
		p.SetUnencryptedHTTP2(true)
	} else {
		p.SetHTTP1(true)
	}
	tr.Protocols = p
	tr.MaxIdleConnsPerHost = 64
	return &http.Client{Transport: tr}
}

// endpoint is one base URL with its cool-down.
type endpoint struct {
	url       *url.URL
	downUntil time.Time // guarded by endpointSet.mu
}

// endpointSet picks the endpoint of each request.
type endpointSet struct {
	cooldown time.Duration
	logger   *slog.Logger
	mu       sync.Mutex
	list     []*endpoint
}

// pick returns the first endpoint not cooling down, or the one whose
// cool-down ends first.
func (s *endpointSet) pick() *endpoint {
	if len(s.list) == 1 {
		return s.list[0]
	}
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	best := s.list[0]
	for _, ep := range s.list {
		if !now.Before(ep.downUntil) {
			return ep
		}
		if ep.downUntil.Before(best.downUntil) {
			best = ep
		}
	}
	return best
}

// markDown sets ep aside for the cool-down.
func (s *endpointSet) markDown(ep *endpoint, cause error) {
	if len(s.list) == 1 {
		return
	}
	s.mu.Lock()
	ep.downUntil = time.Now().Add(s.cooldown)
	s.mu.Unlock()
	s.logger.Warn("switchyard: endpoint set aside", slog.String("endpoint", ep.url.String()),
		slog.Duration("cooldown", s.cooldown), slog.Any("error", cause))
}

// attemptKey is the context key of the *attempt of a request.
type attemptKey struct{}

// attempt records which endpoint a request went to.
type attempt struct{ ep *endpoint }

// failoverDoer sends each request to the endpoint the set picks.
type failoverDoer struct {
	hc  *http.Client
	eps *endpointSet
}

// Do implements connect.HTTPClient.
func (d *failoverDoer) Do(req *http.Request) (*http.Response, error) {
	ep := d.eps.pick()
	if a, ok := req.Context().Value(attemptKey{}).(*attempt); ok {
		a.ep = ep
	}
	if ep != d.eps.list[0] {
		primary := d.eps.list[0].url
		u := *req.URL
		u.Scheme, u.Host = ep.url.Scheme, ep.url.Host
		u.Path = ep.url.Path + strings.TrimPrefix(u.Path, primary.Path)
		u.RawPath = ""
		req = req.Clone(req.Context())
		req.URL, req.Host = &u, ""
	}
	// A connection error comes back as Unavailable: the interceptor sets
	// the endpoint aside.
	return d.hc.Do(req)
}

// interceptor adds the token, bounds each attempt, and sets aside the
// endpoint of a call that failed with Unavailable.
type interceptor struct{ c *Client }

// WrapUnary implements connect.Interceptor.
func (i *interceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if i.c.cfg.token != "" {
			req.Header().Set("Authorization", "Bearer "+i.c.cfg.token)
		}
		if i.c.cfg.timeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, i.c.cfg.timeout)
			defer cancel()
		}
		a := &attempt{}
		ctx = context.WithValue(ctx, attemptKey{}, a)
		resp, err := next(ctx, req)
		if err != nil && a.ep != nil && connect.CodeOf(err) == connect.CodeUnavailable && ctx.Err() == nil {
			i.c.eps.markDown(a.ep, err)
		}
		return resp, err
	}
}

// WrapStreamingClient implements connect.Interceptor.
func (i *interceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return func(ctx context.Context, spec connect.Spec) connect.StreamingClientConn {
		conn := next(ctx, spec)
		if i.c.cfg.token != "" {
			conn.RequestHeader().Set("Authorization", "Bearer "+i.c.cfg.token)
		}
		return conn
	}
}

// WrapStreamingHandler implements connect.Interceptor.
func (i *interceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}

// errNoResults is returned when a response does not carry a result per
// event.
var errNoResults = errors.New("switchyard: the response does not carry one result per event")
