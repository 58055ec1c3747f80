// Package loadtest holds Switchyard's load tests: how users (and we) know
// what Switchyard can carry. It is a module of its own so that its
// dependencies stay out of the server and the SDK.
//
// The command cmd/switchyard-load runs the scenarios against real processes
// and a real Kafka broker and writes a JSON report and a markdown summary;
// docs/loadtest.md explains how to run it and read the report. Its parts:
//
//   - gen: the open-loop generator (constant arrival rate, optional ramp,
//     latency from the intended send time).
//   - latency: HdrHistogram recording and percentiles.
//   - sink: the webhook receiver that records every delivery and counts
//     lost, duplicate and out-of-order events; it can fail on purpose.
//   - baseline: raw franz-go produce and consume, raw Go HTTP posts.
//   - harness: Postgres, the control plane and data-plane nodes as
//     subprocesses, and the broker.
//   - procstat: CPU and RSS of each process, from /proc.
//   - scenario: the scenarios (ingest, e2e, failing, fanout, nodekill).
//   - report: JSON and markdown.
package loadtest
