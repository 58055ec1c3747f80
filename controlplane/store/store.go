// Package store defines the control plane's persistence seam: the Store
// interface, its parameter types and its errors. The Postgres implementation
// lives in the pgstore subpackage; storetest holds the suite every
// implementation must pass.
//
// Resources are the API's own messages (package switchyardv1), which import
// nothing of the server, so there is one schema from the wire to the table.
// Every mutating method takes the Actor that made the change and writes an
// audit row in the same transaction, and bumps the configuration version that
// data-plane nodes watch.
package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
)

// Sentinel errors. Implementations wrap them with context; callers match with
// errors.Is. The RPC layer maps them to Connect codes in exactly one place.
var (
	// ErrNotFound: no such object (or it belongs to another tenant).
	ErrNotFound = errors.New("not found")
	// ErrAlreadyExists: an object with the same unique name exists.
	ErrAlreadyExists = errors.New("already exists")
	// ErrConflict: the expected version (etag) is not the current one.
	ErrConflict = errors.New("version conflict")
	// ErrFailedPrecondition: the change is not allowed in the current state,
	// e.g. deleting a topic that pipelines still read.
	ErrFailedPrecondition = errors.New("failed precondition")
)

// PreconditionError explains an ErrFailedPrecondition.
type PreconditionError struct {
	// Reason says what is in the way, for humans.
	Reason string
}

// Error implements error.
func (e *PreconditionError) Error() string { return "failed precondition: " + e.Reason }

// Is makes errors.Is(err, ErrFailedPrecondition) true.
func (e *PreconditionError) Is(target error) bool { return target == ErrFailedPrecondition }

// Precondition returns a PreconditionError with a formatted reason.
func Precondition(format string, args ...any) error {
	return &PreconditionError{Reason: fmt.Sprintf(format, args...)}
}

// ActorKind names who made a change.
type ActorKind string

// Kinds of actor.
const (
	ActorOperator ActorKind = "operator"
	ActorAPIKey   ActorKind = "api_key"
	ActorNode     ActorKind = "node"
	ActorSystem   ActorKind = "system"
)

// Actor is who made a change; it is written to the audit log.
type Actor struct {
	Kind ActorKind
	// ID is the key id for ActorAPIKey, the node id for ActorNode, a label
	// otherwise.
	ID string
}

// ListParams pages through a list ordered by id ascending (keyset
// pagination: stable under inserts).
type ListParams struct {
	// TenantID restricts the list to one tenant (required for tenant-owned
	// kinds; ignored for tenants and regions).
	TenantID string
	// TopicID restricts pipelines to one topic; ignored for other kinds.
	TopicID string
	// AfterID returns only objects whose id is greater; empty starts at the
	// beginning.
	AfterID string
	// Limit is the most objects to return; must be positive.
	Limit int
}

// DeleteParams deletes an object.
type DeleteParams struct {
	ID string
	// Version, when non-zero, must equal the current version.
	Version int64
	// Force deletes dependent objects too (a tenant's topics, pipelines and
	// keys; a topic's pipelines).
	Force bool
}

// WebhookSecret is a signing secret of one webhook destination.
type WebhookSecret struct {
	ID          string
	PipelineID  string
	Destination string
	// Secret is the "whsec_..." value. Stored so nodes can sign; never
	// returned by the API after creation.
	Secret     string
	CreateTime time.Time
	// ExpireTime is zero for the current secret.
	ExpireTime time.Time
}

// APIKeyRecord is a key with what authentication needs beyond the API view.
type APIKeyRecord struct {
	Key *v1.ApiKey
	// SecretHash is SHA-256 of the key's secret part.
	SecretHash []byte
}

// AuditEntry is one row of the audit log.
type AuditEntry struct {
	ID           int64
	Time         time.Time
	Actor        Actor
	TenantID     string // empty for global objects
	Action       string // e.g. "tenant.create", "pipeline.update"
	ResourceType string // e.g. "tenant"
	ResourceID   string
	// Detail is a JSON object describing the change (e.g. the update mask).
	Detail []byte
}

// AuditFilter selects audit entries, newest first.
type AuditFilter struct {
	TenantID   string
	ResourceID string
	Limit      int
}

// Store is the control plane's persistence. Every method is safe for
// concurrent use. Versions are positive integers; an object's API etag is its
// version in decimal.
//
// Create methods assign id, create/update time and version 1, and return the
// stored object. Update methods replace the mutable fields of the object with
// the given id when expectVersion equals the current version (else
// ErrConflict), and return the stored object with version+1. Get, Update and
// Delete of a missing id return ErrNotFound.
type Store interface {
	CreateTenant(ctx context.Context, actor Actor, t *v1.Tenant) (*v1.Tenant, error)
	GetTenant(ctx context.Context, id string) (*v1.Tenant, error)
	ListTenants(ctx context.Context, p ListParams) ([]*v1.Tenant, error)
	UpdateTenant(ctx context.Context, actor Actor, t *v1.Tenant, expectVersion int64) (*v1.Tenant, error)
	DeleteTenant(ctx context.Context, actor Actor, p DeleteParams) error

	CreateRegion(ctx context.Context, actor Actor, r *v1.Region) (*v1.Region, error)
	GetRegion(ctx context.Context, id string) (*v1.Region, error)
	ListRegions(ctx context.Context, p ListParams) ([]*v1.Region, error)
	UpdateRegion(ctx context.Context, actor Actor, r *v1.Region, expectVersion int64) (*v1.Region, error)
	DeleteRegion(ctx context.Context, actor Actor, p DeleteParams) error

	CreateTopic(ctx context.Context, actor Actor, t *v1.Topic) (*v1.Topic, error)
	GetTopic(ctx context.Context, id string) (*v1.Topic, error)
	// GetTopicByName finds a topic by tenant and name.
	GetTopicByName(ctx context.Context, tenantID, name string) (*v1.Topic, error)
	ListTopics(ctx context.Context, p ListParams) ([]*v1.Topic, error)
	UpdateTopic(ctx context.Context, actor Actor, t *v1.Topic, expectVersion int64) (*v1.Topic, error)
	DeleteTopic(ctx context.Context, actor Actor, p DeleteParams) error

	// CreatePipeline stores a pipeline and the initial signing secret of each
	// webhook destination (secrets, one per webhook destination). The
	// returned pipeline lists secrets as SigningSecretInfo, never their
	// values.
	CreatePipeline(ctx context.Context, actor Actor, p *v1.Pipeline, secrets []WebhookSecret) (*v1.Pipeline, error)
	GetPipeline(ctx context.Context, id string) (*v1.Pipeline, error)
	ListPipelines(ctx context.Context, p ListParams) ([]*v1.Pipeline, error)
	// UpdatePipeline replaces the pipeline's mutable fields. Secrets of
	// destinations no longer present are deleted; newSecrets replace the
	// secrets of their destinations at once (a destination that is new, or
	// whose secret the caller set). Other destinations keep their secrets.
	UpdatePipeline(ctx context.Context, actor Actor, p *v1.Pipeline, expectVersion int64, newSecrets []WebhookSecret) (*v1.Pipeline, error)
	DeletePipeline(ctx context.Context, actor Actor, p DeleteParams) error
	// SetPipelinePaused sets the paused flag (idempotent; bumps the version
	// only when it changes).
	SetPipelinePaused(ctx context.Context, actor Actor, id string, paused bool) (*v1.Pipeline, error)
	// RotateWebhookSecret makes secret the current secret of a destination;
	// the secrets current until now expire at secret.CreateTime+overlap.
	RotateWebhookSecret(ctx context.Context, actor Actor, secret WebhookSecret, overlap time.Duration) (*v1.Pipeline, error)
	// WebhookSecrets returns the unexpired secrets of a pipeline, newest
	// first per destination.
	WebhookSecrets(ctx context.Context, pipelineID string) ([]WebhookSecret, error)

	// CreateAPIKey stores a key with the hash of its secret.
	CreateAPIKey(ctx context.Context, actor Actor, k *v1.ApiKey, secretHash []byte) (*v1.ApiKey, error)
	GetAPIKey(ctx context.Context, id string) (*v1.ApiKey, error)
	// GetAPIKeyRecord returns a key with its secret hash, for authentication.
	GetAPIKeyRecord(ctx context.Context, id string) (*APIKeyRecord, error)
	ListAPIKeys(ctx context.Context, p ListParams) ([]*v1.ApiKey, error)
	UpdateAPIKey(ctx context.Context, actor Actor, k *v1.ApiKey, expectVersion int64) (*v1.ApiKey, error)
	// RevokeAPIKey sets revoke_time (idempotent: revoking twice keeps the
	// first time).
	RevokeAPIKey(ctx context.Context, actor Actor, id string) (*v1.ApiKey, error)
	DeleteAPIKey(ctx context.Context, actor Actor, p DeleteParams) error

	// ListAudit returns audit entries, newest first.
	ListAudit(ctx context.Context, f AuditFilter) ([]AuditEntry, error)
	// ConfigVersion returns the version of the configuration, which every
	// mutating call increases.
	ConfigVersion(ctx context.Context) (int64, error)

	// Data-plane nodes. Nodes are not configuration: registering and
	// heartbeating neither bump the configuration version nor write audit
	// rows. The stored node's State is left unspecified; callers derive it
	// from HeartbeatTime.

	// RegisterNode upserts a node by (RegionId, Hostname): the same host
	// registering again in the same region keeps its id and gets its
	// version, ingest URL and config version replaced. Both RegisterTime
	// and HeartbeatTime are set to now. A missing region is ErrNotFound.
	RegisterNode(ctx context.Context, n *v1.Node) (*v1.Node, error)
	// Heartbeat sets a node's HeartbeatTime to now and records the config
	// version it runs; ErrNotFound for an unknown node.
	Heartbeat(ctx context.Context, nodeID string, configVersion int64) error
	// ListNodes returns every node, or those of one region when regionID is
	// not empty, ordered by id.
	ListNodes(ctx context.Context, regionID string) ([]*v1.Node, error)

	// Operations (redrives and replays). Operations are not configuration:
	// changing them neither bumps the configuration version nor writes
	// audit rows.

	// CreateOperation stores a new operation, assigning its id (unless set)
	// and create time.
	CreateOperation(ctx context.Context, op *v1.Operation) (*v1.Operation, error)
	// GetOperation returns one operation; ErrNotFound for an unknown id.
	GetOperation(ctx context.Context, id string) (*v1.Operation, error)
	// SetOperationProgress records the total and done counts of a running
	// operation; it does nothing to an operation that has ended.
	SetOperationProgress(ctx context.Context, id string, total, done uint64) error
	// EndOperation moves a running operation to a final state with its
	// counts and error, setting its end time, and returns it. An operation
	// that has already ended is returned unchanged. ErrNotFound for an
	// unknown id.
	EndOperation(ctx context.Context, id string, state v1.OperationState, total, done uint64, errMsg string) (*v1.Operation, error)

	// Snapshot reads the whole configuration in one consistent view: its
	// version, every region, tenant, topic and pipeline (as GetPipeline
	// returns them, without secret values), the credentials of keys neither
	// revoked nor expired, and the unexpired signing secrets of every
	// webhook destination, newest first. Lists are ordered by id.
	Snapshot(ctx context.Context) (*v1.ConfigSnapshot, error)
	// WaitConfigVersion blocks until the configuration version is greater
	// than after and returns it, or returns ctx.Err() once ctx is done.
	WaitConfigVersion(ctx context.Context, after int64) (int64, error)
}
