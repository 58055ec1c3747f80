#!/usr/bin/env bash
# Runs a single-node Apache Kafka broker (KRaft, combined broker+controller)
# on loopback for integration tests.
#
#   scripts/kafka.sh fetch    download the Kafka jars from Maven Central into $KAFKA_CACHE
#   scripts/kafka.sh start    start the broker (fetching first if needed); prints
#                             SWITCHYARD_TEST_KAFKA_BROKERS=127.0.0.1:<port>
#   scripts/kafka.sh stop     stop the broker and remove its data
#   scripts/kafka.sh status   say whether the broker runs, and where
#
# Environment:
#   KAFKA_VERSION    Kafka release (default 4.4.0)
#   KAFKA_CACHE      jar directory (default <repo>/.cache/kafka/$KAFKA_VERSION/lib)
#   KAFKA_STATE_DIR  pid, config, data and log (default <repo>/.cache/kafka/run)
#   KAFKA_HEAP       JVM maximum heap (default 512m)
#
# Needs Java 17+ (`java`) and Maven (`mvn`) on PATH.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
KAFKA_VERSION="${KAFKA_VERSION:-4.4.0}"
SCALA_VERSION="2.13"
KAFKA_CACHE="${KAFKA_CACHE:-$repo/.cache/kafka/$KAFKA_VERSION/lib}"
STATE_DIR="${KAFKA_STATE_DIR:-$repo/.cache/kafka/run}"
KAFKA_HEAP="${KAFKA_HEAP:-512m}"
START_TIMEOUT=60
STOP_TIMEOUT=30

pid_file="$STATE_DIR/kafka.pid"
env_file="$STATE_DIR/env"
props="$STATE_DIR/server.properties"
log4j_conf="$STATE_DIR/log4j2.properties"
log_file="$STATE_DIR/kafka.log"
data_dir="$STATE_DIR/data"

log() { echo "kafka.sh: $*" >&2; }
die() { log "$*"; exit 1; }

need() {
	command -v "$1" >/dev/null 2>&1 || die "$1 not found on PATH; $2"
}

# write_pom FILE [LOG4J_VERSION] writes a pom whose dependencies are the Kafka
# server and, when a log4j version is given, log4j2's SLF4J 1.x binding.
write_pom() {
	local file="$1" log4j="${2:-}"
	{
		echo '<project xmlns="http://maven.apache.org/POM/4.0.0">'
		echo '  <modelVersion>4.0.0</modelVersion>'
		echo '  <groupId>dev.switchyard</groupId><artifactId>kafka-runtime</artifactId><version>1</version>'
		echo '  <packaging>pom</packaging>'
		echo '  <dependencies>'
		echo "    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_$SCALA_VERSION</artifactId><version>$KAFKA_VERSION</version></dependency>"
		if [[ -n "$log4j" ]]; then
			echo "    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>$log4j</version></dependency>"
		fi
		echo '  </dependencies>'
		echo '</project>'
	} >"$file"
}

copy_deps() {
	local out="$(dirname "$1")/mvn.log"
	if ! mvn -q -B -Dstyle.color=never -f "$1" dependency:copy-dependencies \
		-DincludeScope=runtime -DoutputDirectory="$2" >"$out" 2>&1; then
		cat "$out" >&2
		die "mvn could not fetch Kafka $KAFKA_VERSION (is Maven Central reachable?)"
	fi
}

cmd_fetch() {
	if [[ -f "$KAFKA_CACHE/kafka_$SCALA_VERSION-$KAFKA_VERSION.jar" ]]; then
		return 0
	fi
	need mvn "install Maven (Debian: apt-get install -y maven)"
	local work
	mkdir -p "$(dirname "$KAFKA_CACHE")"
	work="$(mktemp -d "$(dirname "$KAFKA_CACHE")/fetch.XXXXXX")"
	trap 'rm -rf "$work"' EXIT
	log "fetching Kafka $KAFKA_VERSION jars into $KAFKA_CACHE"
	# First pass: Kafka alone, to learn which log4j2 it uses.
	write_pom "$work/pom.xml"
	copy_deps "$work/pom.xml" "$work/lib"
	local core log4j
	core="$(cd "$work/lib" && ls log4j-core-*.jar 2>/dev/null | head -n1)"
	[[ -n "$core" ]] || die "Kafka $KAFKA_VERSION has no log4j-core dependency; cannot pick a logging binding"
	log4j="${core#log4j-core-}"
	log4j="${log4j%.jar}"
	# Second pass: add the matching SLF4J binding so the broker logs.
	write_pom "$work/pom.xml" "$log4j"
	copy_deps "$work/pom.xml" "$work/lib"
	cp "$work/pom.xml" "$(dirname "$KAFKA_CACHE")/pom.xml"
	rm -rf "$KAFKA_CACHE"
	mv "$work/lib" "$KAFKA_CACHE"
	rm -rf "$work"
	trap - EXIT
	log "fetched $(ls "$KAFKA_CACHE" | wc -l) jars (log4j $log4j)"
}

# running prints the broker's pid and succeeds when the pid file names a live
# Kafka process.
running() {
	[[ -f "$pid_file" ]] || return 1
	local pid
	pid="$(cat "$pid_file")"
	[[ "$pid" =~ ^[0-9]+$ ]] || return 1
	kill -0 "$pid" 2>/dev/null || return 1
	# Guard against a reused pid.
	tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'kafka\.Kafka' || return 1
	echo "$pid"
}

# port_free succeeds when nothing accepts connections on 127.0.0.1:$1.
port_free() {
	! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

free_port() {
	local p i
	for i in $(seq 1 50); do
		p=$((20000 + RANDOM % 40000))
		if port_free "$p" && [[ "$p" != "${1:-}" ]]; then
			echo "$p"
			return 0
		fi
	done
	die "no free loopback port found"
}

# new_cluster_id prints a random cluster id the way Kafka's
# `storage-tool random-uuid` does (16 random bytes, unpadded base64url, never
# starting with "-"), without starting a JVM.
new_cluster_id() {
	local id
	while :; do
		id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
		[[ "$id" != -* ]] && break
	done
	echo "$id"
}

log_tail() {
	if [[ -f "$log_file" ]]; then
		log "last lines of $log_file:"
		tail -n 40 "$log_file" >&2
	fi
}

cmd_start() {
	if running >/dev/null && [[ -f "$env_file" ]]; then
		cat "$env_file"
		return 0
	fi
	need java "install Java 17 or newer (Debian: apt-get install -y openjdk-17-jre-headless)"
	cmd_fetch
	mkdir -p "$STATE_DIR"
	rm -rf "$data_dir" "$env_file" "$pid_file"

	local port cport cluster_id
	port="$(free_port)"
	cport="$(free_port "$port")"

	cat >"$props" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$data_dir
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
delete.topic.enable=true
EOF

	cat >"$log4j_conf" <<EOF
status = warn
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = $log_file
appender.file.append = true
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
logger.state.name = state.change.logger
logger.state.level = WARN
logger.request.name = kafka.request.logger
logger.request.level = WARN
EOF

	local cp="$KAFKA_CACHE/*"
	local jvm=(java "-Xmx$KAFKA_HEAP" -XX:+UseG1GC -Djava.awt.headless=true
		"-Dlog4j2.configurationFile=$log4j_conf" -cp "$cp")

	: >"$log_file"
	cluster_id="$(new_cluster_id)"
	# A static quorum (controller.quorum.voters) is formatted without --standalone.
	"${jvm[@]}" kafka.tools.StorageTool format -t "$cluster_id" -c "$props" >>"$log_file" 2>&1 ||
		{ log_tail; die "formatting storage failed"; }

	local started
	started="$(date +%s)"
	nohup "${jvm[@]}" kafka.Kafka "$props" >>"$log_file" 2>&1 </dev/null &
	local pid=$!
	echo "$pid" >"$pid_file"

	local deadline=$((started + START_TIMEOUT))
	while :; do
		if ! kill -0 "$pid" 2>/dev/null; then
			log_tail
			rm -f "$pid_file"
			die "broker exited during start"
		fi
		if grep -q 'Kafka Server started' "$log_file" && ! port_free "$port"; then
			break
		fi
		if (($(date +%s) >= deadline)); then
			log_tail
			cmd_stop
			die "broker not ready after ${START_TIMEOUT}s"
		fi
		sleep 0.2
	done
	log "broker ready in $(($(date +%s) - started))s (pid $pid, log $log_file)"
	echo "SWITCHYARD_TEST_KAFKA_BROKERS=127.0.0.1:$port" >"$env_file"
	cat "$env_file"
}

cmd_stop() {
	local pid
	if pid="$(running)"; then
		kill -TERM "$pid" 2>/dev/null || true
		local i
		for ((i = 0; i < STOP_TIMEOUT * 5; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.2
		done
		if kill -0 "$pid" 2>/dev/null; then
			log "broker did not stop in ${STOP_TIMEOUT}s; killing it"
			kill -KILL "$pid" 2>/dev/null || true
			while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
		fi
		log "stopped broker (pid $pid)"
	else
		log "no broker running"
	fi
	rm -rf "$data_dir" "$pid_file" "$env_file"
}

cmd_status() {
	local pid
	if pid="$(running)"; then
		echo "running (pid $pid)"
		[[ -f "$env_file" ]] && cat "$env_file"
		echo "log: $log_file"
	else
		echo "not running"
		return 3
	fi
}

case "${1:-}" in
fetch) cmd_fetch ;;
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
*)
	echo "usage: $0 fetch|start|stop|status" >&2
	exit 2
	;;
esac
