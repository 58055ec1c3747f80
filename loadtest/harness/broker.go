package harness

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// startBroker runs scripts/kafka.sh start in repo and returns the brokers
// it prints, and whether the broker was not running before (so Close
// should stop it).
func startBroker(ctx context.Context, repo string) (brokers []string, started bool, err error) {
	script := filepath.Join(repo, "scripts", "kafka.sh")
	status := exec.CommandContext(ctx, script, "status")
	wasRunning := status.Run() == nil
	cmd := exec.CommandContext(ctx, script, "start")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, false, fmt.Errorf("scripts/kafka.sh start: %w: %s", err, stderr.String())
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "SWITCHYARD_TEST_KAFKA_BROKERS="); ok {
			return strings.Split(v, ","), !wasRunning, nil
		}
	}
	return nil, false, fmt.Errorf("scripts/kafka.sh start printed no broker address: %s", out)
}

// stopBroker runs scripts/kafka.sh stop in repo.
func stopBroker(ctx context.Context, repo string) error {
	out, err := exec.CommandContext(ctx, filepath.Join(repo, "scripts", "kafka.sh"), "stop").CombinedOutput()
	if err != nil {
		return fmt.Errorf("scripts/kafka.sh stop: %w: %s", err, out)
	}
	return nil
}

var kafkaVersionRE = regexp.MustCompile(`kafka_[0-9.]+-([0-9][0-9A-Za-z.-]*)\.jar|/kafka/([0-9][0-9A-Za-z.-]*)/lib`)

// findBroker looks for the JVM of a local Kafka broker listening on addr
// (host:port) among the machine's processes, and returns its pid and the
// Kafka version on its class path; 0 and "" when none is found (e.g. a
// remote broker).
func findBroker(addr string) (pid int, version string) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, ""
	}
	for _, e := range entries {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		raw, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !bytes.Contains(raw, []byte("kafka.Kafka")) {
			continue
		}
		args := strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
		props := args[len(args)-1]
		if !filepath.IsAbs(props) {
			if cwd, err := os.Readlink(filepath.Join("/proc", e.Name(), "cwd")); err == nil {
				props = filepath.Join(cwd, props)
			}
		}
		conf, err := os.ReadFile(props)
		if err != nil || !bytes.Contains(conf, []byte("PLAINTEXT://"+addr)) {
			continue
		}
		for _, a := range args {
			if m := kafkaVersionRE.FindStringSubmatch(a); m != nil {
				version = m[1] + m[2]
				break
			}
		}
		return n, version
	}
	return 0, ""
}
