// Package acklog defines the records of the ack log: the Kafka topic
// (kafkaname.AckLogTopic) to which data-plane nodes write every delivery
// outcome and every failed attempt, and from which the control plane's
// ledger fills Postgres.
//
// An ack is JSON with a version field ("v"), so the format can grow without
// a schema registry: readers refuse versions they do not know. Its id is
// derived from the source record's origin, the pipeline, the destination and
// the attempt number, so an ack written again (a node that restarts and
// handles the same record again) or read again (a replay of the ack log)
// has the same id and the ledger keeps it once.
//
// # Payloads
//
// The ledger keeps an event's payload (its data, as published) unless its
// tenant drops payloads (RetentionPolicy.drop_payloads). So that the ack log
// does not carry a payload once per attempt, only the first ack a pipeline
// writes for a record read from the tenant's topic carries it (Ack.Data), and
// only when the node's configuration says the tenant keeps payloads. A
// payload is at most MaxData bytes; with the base64 of JSON and the
// attributes an ack stays below MaxRecordBytes, which the ack-log producer
// and the topic's max.message.bytes (TopicMaxMessageBytes) allow.
package acklog

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/switchyard-dev/switchyard/internal/kafkaname"
)

// Version is the version of the ack format this package writes and reads.
const Version = 1

// Size bounds of acks carrying a payload.
const (
	// MaxData is the largest payload an ack carries: the largest event
	// (v1.Event's data is at most 1 MiB). A larger one is left out.
	MaxData = 1 << 20
	// MaxRecordBytes is the largest ack record: a MaxData payload in
	// base64 (4/3 of it) plus bounded attributes and fields. The ack-log
	// producer's ProducerBatchMaxBytes must be at least this.
	MaxRecordBytes = 2 << 20
	// TopicMaxMessageBytes is the ack-log topic's max.message.bytes: a
	// batch of MaxRecordBytes and its framing.
	TopicMaxMessageBytes = MaxRecordBytes + 64<<10
)

// Outcome is what an attempt (or the filter) decided for a record and a
// destination.
type Outcome string

// Outcomes.
const (
	// Delivered: the destination accepted the event.
	Delivered Outcome = "delivered"
	// Filtered: the pipeline's filter did not select the event; no
	// destination is named.
	Filtered Outcome = "filtered"
	// Retrying: the attempt failed and another is scheduled.
	Retrying Outcome = "retrying"
	// DeadLettered: the attempt failed for good (or the record could not be
	// decoded, filtered or transformed) and the event is a dead letter.
	DeadLettered Outcome = "dead_lettered"
)

// Valid reports whether o is one of the outcomes above.
func (o Outcome) Valid() bool {
	switch o {
	case Delivered, Filtered, Retrying, DeadLettered:
		return true
	}
	return false
}

// Attributes are the CloudEvents attributes of an event, without its data.
type Attributes struct {
	Source          string            `json:"source,omitempty"`
	Type            string            `json:"type,omitempty"`
	Subject         string            `json:"subject,omitempty"`
	DataContentType string            `json:"datacontenttype,omitempty"`
	DataSchema      string            `json:"dataschema,omitempty"`
	Extensions      map[string]string `json:"extensions,omitempty"`
	PartitionKey    string            `json:"partitionkey,omitempty"`
}

// Ack is one record of the ack log.
type Ack struct {
	// V is the format version; Version when written by this package.
	V int `json:"v"`
	// ID identifies the ack: see ID.
	ID string `json:"id"`
	// EventID, TenantID and TopicID name the event; EventID is empty for a
	// record that could not be decoded.
	EventID  string `json:"event_id"`
	TenantID string `json:"tenant_id"`
	TopicID  string `json:"topic_id"`
	// PipelineID and Destination name where the event went; Destination is
	// empty for outcomes of the whole pipeline (filtered, or dead-lettered
	// before delivery).
	PipelineID  string `json:"pipeline_id"`
	Destination string `json:"destination,omitempty"`
	// Attempt is the attempt's number from 1; 0 for outcomes without an
	// attempt.
	Attempt int     `json:"attempt"`
	Outcome Outcome `json:"outcome"`
	// Reason explains a dead letter ("max_attempts", ...).
	Reason string `json:"reason,omitempty"`
	// HTTPStatus is the status of a webhook attempt; 0 when none came.
	HTTPStatus int `json:"http_status,omitempty"`
	// Latency is the time from sending to the answer.
	Latency time.Duration `json:"latency_ns,omitempty"`
	// Error explains a failed attempt.
	Error string `json:"error,omitempty"`
	// NodeID is the data-plane node that made the attempt.
	NodeID string `json:"node_id,omitempty"`
	// Time is when the outcome was decided.
	Time time.Time `json:"time"`
	// NextAttemptTime is when the next attempt is due, for Retrying.
	NextAttemptTime time.Time `json:"next_attempt_time,omitzero"`
	// EventTime is the event's time attribute, when it has one.
	EventTime time.Time `json:"event_time,omitzero"`
	// IngestTime is when the broker stored the event; zero when the attempt
	// read a retry record rather than the original.
	IngestTime time.Time `json:"ingest_time,omitzero"`
	// Origin is "<topic>/<partition>/<offset>" of the original record.
	Origin string `json:"origin"`
	// Event holds the event's attributes, as published, when it could be
	// decoded.
	Event *Attributes `json:"event,omitempty"`
	// Data is the event's payload, as published (before any transform), in
	// the first ack of a record per pipeline when its tenant keeps payloads;
	// nil otherwise. At most MaxData bytes.
	Data []byte `json:"data,omitempty"`
	// Target is where the attempt went when a redrive overrode the
	// destination (its webhook URL or Kafka topic); empty when the attempt
	// went to the pipeline's destination named Destination.
	Target string `json:"target,omitempty"`
}

// ID returns the id of the ack of attempt of the record at origin for a
// pipeline's destination: 32 hex digits of a SHA-256 of the four.
func ID(origin, pipelineID, destination string, attempt int) string {
	h := sha256.New()
	h.Write([]byte(origin))
	h.Write([]byte{0})
	h.Write([]byte(pipelineID))
	h.Write([]byte{0})
	h.Write([]byte(destination))
	h.Write([]byte{0})
	h.Write([]byte(strconv.Itoa(attempt)))
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// RedriveID returns the id of the ack of an attempt of a record that a
// redrive stamped redrive sent again: the attempts of a redrive are
// numbered afresh, so their ids must differ from those of the attempts
// before the record was dead-lettered (and from another redrive's).
func RedriveID(origin, redrive, pipelineID, destination string, attempt int) string {
	return ID(origin+"\x00redrive\x00"+redrive, pipelineID, destination, attempt)
}

// Record returns the Kafka record of a, for kafkaname.AckLogTopic, keyed by
// topic and event (so the acks of one event stay in order in one
// partition). It sets a.V and, when empty, a.ID.
func Record(a *Ack) (*kgo.Record, error) {
	a.V = Version
	if a.ID == "" {
		a.ID = ID(a.Origin, a.PipelineID, a.Destination, a.Attempt)
	}
	b, err := json.Marshal(a)
	if err != nil {
		return nil, fmt.Errorf("acklog: encoding ack: %w", err)
	}
	key := a.TopicID + "/" + a.EventID
	if a.EventID == "" {
		key = a.Origin
	}
	return &kgo.Record{Topic: kafkaname.AckLogTopic, Key: []byte(key), Value: b}, nil
}

// Decode reads an ack written by Record. It refuses other versions, acks
// without an id, pipeline or valid outcome.
func Decode(b []byte) (*Ack, error) {
	var a Ack
	if err := json.Unmarshal(b, &a); err != nil {
		return nil, fmt.Errorf("acklog: decoding ack: %w", err)
	}
	if a.V != Version {
		return nil, fmt.Errorf("acklog: unknown ack version %d", a.V)
	}
	if a.ID == "" || a.PipelineID == "" || !a.Outcome.Valid() {
		return nil, errors.New("acklog: ack without id, pipeline or valid outcome")
	}
	return &a, nil
}
