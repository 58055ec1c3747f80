// Package e2e holds Switchyard's end-to-end tests: a control plane over a
// real Postgres and data-plane nodes over a real Kafka broker, driven through
// the public APIs (ingest, CloudEvents, the control plane's services) and
// observed at webhook receivers and dead-letter topics. Each test counts what
// it published, what arrived (unique and duplicated) and what was lost, which
// must be nothing.
//
// The tests need SWITCHYARD_TEST_KAFKA_BROKERS (see scripts/kafka.sh) and
// skip without it; Postgres comes from internal/testenv/pgtest.
package e2e
