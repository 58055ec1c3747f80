// Package snapshot indexes a configuration snapshot from the control plane
// for the data plane's hot paths: key checks, topic lookups by name and the
// pipelines of a topic, all without a database or a network call.
//
// A Snapshot is immutable once built; a Holder publishes the current one and
// tells subscribers when it changes.
package snapshot

import (
	"sync"
	"sync/atomic"

	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
)

// Snapshot is an indexed, read-only view of a v1.ConfigSnapshot.
type Snapshot struct {
	raw           *v1.ConfigSnapshot
	regions       map[string]*v1.Region
	regionsByName map[string]*v1.Region
	tenants       map[string]*v1.Tenant
	topics        map[string]*v1.Topic
	topicsByName  map[string]*v1.Topic // tenantID + "/" + name
	pipelines     map[string]*v1.Pipeline
	byTopic       map[string][]*v1.Pipeline
	keys          map[string]*v1.ApiKeyCredential
	secrets       map[string][]string // pipelineID + "/" + destination
}

// New indexes raw. raw must not be changed afterwards.
func New(raw *v1.ConfigSnapshot) *Snapshot {
	s := &Snapshot{
		raw:           raw,
		regions:       make(map[string]*v1.Region, len(raw.GetRegions())),
		regionsByName: make(map[string]*v1.Region, len(raw.GetRegions())),
		tenants:       make(map[string]*v1.Tenant, len(raw.GetTenants())),
		topics:        make(map[string]*v1.Topic, len(raw.GetTopics())),
		topicsByName:  make(map[string]*v1.Topic, len(raw.GetTopics())),
		pipelines:     make(map[string]*v1.Pipeline, len(raw.GetPipelines())),
		byTopic:       make(map[string][]*v1.Pipeline),
		keys:          make(map[string]*v1.ApiKeyCredential, len(raw.GetApiKeys())),
		secrets:       make(map[string][]string, len(raw.GetSigningSecrets())),
	}
	for _, r := range raw.GetRegions() {
		s.regions[r.GetId()] = r
		s.regionsByName[r.GetName()] = r
	}
	for _, t := range raw.GetTenants() {
		s.tenants[t.GetId()] = t
	}
	for _, t := range raw.GetTopics() {
		s.topics[t.GetId()] = t
		s.topicsByName[t.GetTenantId()+"/"+t.GetName()] = t
	}
	for _, p := range raw.GetPipelines() {
		s.pipelines[p.GetId()] = p
		s.byTopic[p.GetTopicId()] = append(s.byTopic[p.GetTopicId()], p)
	}
	for _, k := range raw.GetApiKeys() {
		s.keys[k.GetId()] = k
	}
	for _, sec := range raw.GetSigningSecrets() {
		s.secrets[sec.GetPipelineId()+"/"+sec.GetDestination()] = sec.GetSecrets()
	}
	return s
}

// Raw returns the snapshot as received. Callers must not change it.
func (s *Snapshot) Raw() *v1.ConfigSnapshot { return s.raw }

// Version returns the snapshot's version (0 for an empty snapshot).
func (s *Snapshot) Version() int64 { return s.raw.GetVersion() }

// Region returns a region by id.
func (s *Snapshot) Region(id string) (*v1.Region, bool) { r, ok := s.regions[id]; return r, ok }

// RegionByName returns a region by name.
func (s *Snapshot) RegionByName(name string) (*v1.Region, bool) {
	r, ok := s.regionsByName[name]
	return r, ok
}

// Tenant returns a tenant by id.
func (s *Snapshot) Tenant(id string) (*v1.Tenant, bool) { t, ok := s.tenants[id]; return t, ok }

// Topic returns a topic by id.
func (s *Snapshot) Topic(id string) (*v1.Topic, bool) { t, ok := s.topics[id]; return t, ok }

// TopicByName returns a tenant's topic by name.
func (s *Snapshot) TopicByName(tenantID, name string) (*v1.Topic, bool) {
	t, ok := s.topicsByName[tenantID+"/"+name]
	return t, ok
}

// Pipeline returns a pipeline by id.
func (s *Snapshot) Pipeline(id string) (*v1.Pipeline, bool) { p, ok := s.pipelines[id]; return p, ok }

// PipelinesOfTopic returns the pipelines reading a topic, in snapshot order.
func (s *Snapshot) PipelinesOfTopic(topicID string) []*v1.Pipeline { return s.byTopic[topicID] }

// Pipelines returns every pipeline, in snapshot order.
func (s *Snapshot) Pipelines() []*v1.Pipeline { return s.raw.GetPipelines() }

// Topics returns every topic, in snapshot order.
func (s *Snapshot) Topics() []*v1.Topic { return s.raw.GetTopics() }

// APIKey returns the credential of a key by id.
func (s *Snapshot) APIKey(id string) (*v1.ApiKeyCredential, bool) { k, ok := s.keys[id]; return k, ok }

// SigningSecrets returns the secrets a webhook destination signs with,
// newest first.
func (s *Snapshot) SigningSecrets(pipelineID, destination string) []string {
	return s.secrets[pipelineID+"/"+destination]
}

// Holder publishes the current snapshot to readers on hot paths (an atomic
// load) and to subscribers that react to changes. The zero value holds an
// empty snapshot.
type Holder struct {
	cur  atomic.Pointer[Snapshot]
	mu   sync.Mutex
	subs []func(*Snapshot)
}

var empty = New(&v1.ConfigSnapshot{})

// Current returns the current snapshot; never nil.
func (h *Holder) Current() *Snapshot {
	if s := h.cur.Load(); s != nil {
		return s
	}
	return empty
}

// Set publishes s and calls every subscriber with it, in order, on the
// caller's goroutine. A snapshot older than the current one is ignored; Set
// reports whether s was published.
func (h *Holder) Set(s *Snapshot) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if cur := h.cur.Load(); cur != nil && s.Version() < cur.Version() {
		return false
	}
	h.cur.Store(s)
	for _, f := range h.subs {
		f(s)
	}
	return true
}

// Subscribe calls f with every snapshot published from now on, and at once
// with the current one if any was published.
func (h *Holder) Subscribe(f func(*Snapshot)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.subs = append(h.subs, f)
	if s := h.cur.Load(); s != nil {
		f(s)
	}
}
