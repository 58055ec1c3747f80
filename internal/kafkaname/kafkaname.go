// Package kafkaname derives every Kafka name Switchyard uses — topics,
// consumer groups, record headers — from ids, never from free text, so that
// ACLs and quotas can work by prefix and a name cannot be forged by choosing
// a clever slug.
package kafkaname

import (
	"strconv"
	"time"
)

// Prefix starts every name Switchyard owns in Kafka.
const Prefix = "sy."

// TenantTopic is the Kafka topic of a tenant's topic.
func TenantTopic(tenantID, topicID string) string { return Prefix + tenantID + "." + topicID }

// ConsumerGroup is the consumer group of a pipeline.
func ConsumerGroup(tenantID, pipelineID string) string { return Prefix + tenantID + "." + pipelineID }

// DeadLetterTopic is the dead-letter topic of a pipeline.
func DeadLetterTopic(tenantID, pipelineID string) string {
	return Prefix + tenantID + "." + pipelineID + ".dlq"
}

// RetryTiers are the delays of the shared retry topics, shortest first. A
// failed delivery of an unordered pipeline waits in the shortest tier whose
// delay covers its backoff (the longest tier for anything longer).
var RetryTiers = []time.Duration{5 * time.Second, 30 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour}

// RetryTopic is the shared topic of a retry tier.
func RetryTopic(tier time.Duration) string { return Prefix + "_retry." + tierName(tier) }

// RetryGroup is the consumer group reading a retry tier.
func RetryGroup(tier time.Duration) string { return Prefix + "_retry." + tierName(tier) }

// AckLogTopic is the internal topic of delivery outcomes.
const AckLogTopic = Prefix + "_acks"

// TierFor returns the shortest retry tier whose delay is at least d, or the
// longest tier.
func TierFor(d time.Duration) time.Duration {
	for _, t := range RetryTiers {
		if t >= d {
			return t
		}
	}
	return RetryTiers[len(RetryTiers)-1]
}

func tierName(d time.Duration) string {
	switch {
	case d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	case d%time.Second == 0:
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	default:
		return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
	}
}

// Record headers. CloudEvents attributes travel per the CloudEvents Kafka
// protocol binding (binary mode: "ce_" + attribute name, and content-type);
// Switchyard's own headers start with "sy-".
const (
	HeaderCEPrefix    = "ce_"
	HeaderContentType = "content-type"
	HeaderTraceparent = "traceparent"
	HeaderTracestate  = "tracestate"

	// HeaderTenant and HeaderTopic name the tenant and topic an event was
	// published to.
	HeaderTenant = "sy-tenant"
	HeaderTopic  = "sy-topic"
	// HeaderPipeline and HeaderDestination address a retry or dead letter.
	HeaderPipeline    = "sy-pipeline"
	HeaderDestination = "sy-destination"
	// HeaderAttempt is the number of attempts made so far (decimal).
	HeaderAttempt = "sy-attempt"
	// HeaderFirstAttempt is when the first attempt was made (RFC 3339, ns).
	HeaderFirstAttempt = "sy-first-attempt"
	// HeaderDue is when a retry record becomes due (RFC 3339, ns).
	HeaderDue = "sy-due"
	// HeaderReason, HeaderLastStatus and HeaderLastError explain a dead letter.
	HeaderReason     = "sy-reason"
	HeaderLastStatus = "sy-last-status"
	HeaderLastError  = "sy-last-error"
	// HeaderOrigin is "<topic>/<partition>/<offset>" of the original record.
	HeaderOrigin = "sy-origin"
	// HeaderDestinationOverride, on a retry record, replaces where the
	// destination named by HeaderDestination sends: the binary protobuf of
	// a switchyard.v1.Destination of the same name (a redrive with a
	// destination override). Later retries of the record keep it.
	HeaderDestinationOverride = "sy-destination-override"
	// HeaderRedrive, on a retry record, is when a redrive or a replay sent it (RFC 3339,
	// ns): the acks of its attempts get ids of their own (acklog.RedriveID),
	// apart from those of the attempts before it was dead-lettered.
	HeaderRedrive = "sy-redrive"
)
