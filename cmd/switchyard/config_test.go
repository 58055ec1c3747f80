package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/stretchr/testify/require"
)

// envMap is a getenv over a fixed map.
func envMap(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// subcommand returns the named subcommand of a fresh root with getenv, its
// flags parsed from args and the environment applied.
func subcommand(t *testing.T, name string, env map[string]string, args ...string) (*cobra.Command, error) {
	t.Helper()
	var out bytes.Buffer
	root := newRootCommand(&out, &out, envMap(env))
	cmd, _, err := root.Find([]string{name})
	require.NoError(t, err)
	require.Equal(t, name, cmd.Name())
	require.NoError(t, cmd.ParseFlags(args))
	return cmd, applyEnv(cmd.Flags(), envMap(env))
}

func TestFlagsAndEnvironment(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name    string
		command string
		env     map[string]string
		args    []string
		flag    string
		want    string
	}{
		{name: "default", command: "controlplane", flag: "listen", want: "127.0.0.1:8080"},
		{name: "env sets flag", command: "controlplane", flag: "listen",
			env: map[string]string{"SWITCHYARD_LISTEN": "0.0.0.0:9000"}, want: "0.0.0.0:9000"},
		{name: "flag beats env", command: "controlplane", flag: "listen",
			env: map[string]string{"SWITCHYARD_LISTEN": "0.0.0.0:9000"}, args: []string{"--listen", ":7000"}, want: ":7000"},
		{name: "DATABASE_URL fallback", command: "controlplane", flag: "database-url",
			env: map[string]string{"DATABASE_URL": "postgres://plain/db"}, want: "postgres://plain/db"},
		{name: "SWITCHYARD_DATABASE_URL first", command: "migrate", flag: "database-url",
			env:  map[string]string{"DATABASE_URL": "postgres://plain/db", "SWITCHYARD_DATABASE_URL": "postgres://own/db"},
			want: "postgres://own/db"},
		{name: "bool from env", command: "controlplane", flag: "allow-private-webhooks",
			env: map[string]string{"SWITCHYARD_ALLOW_PRIVATE_WEBHOOKS": "true"}, want: "true"},
		{name: "list from env", command: "controlplane", flag: "allow-webhook-cidr",
			env: map[string]string{"SWITCHYARD_ALLOW_WEBHOOK_CIDRS": "10.0.0.0/8,192.168.1.0/24"}, want: "[10.0.0.0/8,192.168.1.0/24]"},
		{name: "dev data dir default", command: "dev", flag: "data-dir", want: ".switchyard"},
		{name: "dev data dir from env", command: "dev", flag: "data-dir",
			env: map[string]string{"SWITCHYARD_DATA_DIR": "/var/lib/sy"}, want: "/var/lib/sy"},
		{name: "dev log format default", command: "dev", flag: "log-format", want: "text"},
		{name: "controlplane log format default", command: "controlplane", flag: "log-format", want: "json"},
		{name: "empty env ignored", command: "controlplane", flag: "listen",
			env: map[string]string{"SWITCHYARD_LISTEN": ""}, want: "127.0.0.1:8080"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cmd, err := subcommand(t, tc.command, tc.env, tc.args...)
			require.NoError(t, err)
			require.Equal(t, tc.want, cmd.Flags().Lookup(tc.flag).Value.String())
		})
	}
}

func TestBadEnvironmentValueNamesTheVariable(t *testing.T) {
	t.Parallel()
	_, err := subcommand(t, "dev", map[string]string{"SWITCHYARD_POSTGRES_PORT": "many"})
	require.ErrorContains(t, err, "SWITCHYARD_POSTGRES_PORT")
	require.ErrorContains(t, err, "--postgres-port")
}

func TestEveryFlagHasAnEnvironmentVariable(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	root := newRootCommand(&out, &out, envMap(nil))
	for _, cmd := range root.Commands() {
		cmd.Flags().VisitAll(func(f *pflag.Flag) {
			if f.Name == "help" {
				return
			}
			vars := f.Annotations[envAnnotation]
			require.NotEmpty(t, vars, "%s --%s has no environment variable", cmd.Name(), f.Name)
			require.True(t, strings.HasPrefix(vars[0], "SWITCHYARD_"), "%s --%s: %v", cmd.Name(), f.Name, vars)
		})
	}
}

func TestHelpShowsEnvironmentVariables(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	root := newRootCommand(&out, &out, envMap(nil))
	root.SetArgs([]string{"controlplane", "--help"})
	require.NoError(t, root.ExecuteContext(t.Context()))
	help := out.String()
	for _, want := range []string{
		"--operator-token", "[$SWITCHYARD_OPERATOR_TOKEN]",
		"--database-url", "[$SWITCHYARD_DATABASE_URL, $DATABASE_URL]",
		"--listen", "[$SWITCHYARD_LISTEN]",
		"--allow-private-webhooks", "[$SWITCHYARD_ALLOW_PRIVATE_WEBHOOKS]",
	} {
		require.Contains(t, help, want)
	}
}

func TestCommandsRejectBadConfiguration(t *testing.T) {
	t.Parallel()
	// Validation runs before any connection: the database below does not
	// exist, so an error about it would mean validation let the config pass.
	const db = "postgres://127.0.0.1:1/none?connect_timeout=1"
	const token = "0123456789abcdef-token"
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{name: "controlplane needs a database", args: []string{"controlplane", "--operator-token", token},
			want: "database URL is required"},
		{name: "controlplane needs a token", args: []string{"controlplane", "--database-url", db},
			want: "operator token is required"},
		{name: "token from env still checked", env: map[string]string{"SWITCHYARD_OPERATOR_TOKEN": "short"},
			args: []string{"controlplane", "--database-url", db}, want: "at least 16 characters"},
		{name: "token without whitespace", args: []string{"controlplane", "--database-url", db, "--operator-token", "0123456789 abcdef"},
			want: "whitespace"},
		{name: "listen address", args: []string{"controlplane", "--database-url", db, "--operator-token", token, "--listen", "8080"},
			want: "listen address"},
		{name: "log format", args: []string{"controlplane", "--database-url", db, "--operator-token", token, "--log-format", "xml"},
			want: "log format"},
		{name: "log level", env: map[string]string{"SWITCHYARD_LOG_LEVEL": "loud"},
			args: []string{"migrate", "--database-url", db}, want: "log level"},
		{name: "webhook CIDR", args: []string{"controlplane", "--database-url", db, "--operator-token", token, "--allow-webhook-cidr", "10.0.0.0/33"},
			want: "webhook allow CIDR"},
		{name: "shutdown timeout", args: []string{"controlplane", "--database-url", db, "--operator-token", token, "--shutdown-timeout", "-1s"},
			want: "timeouts must be positive"},
		{name: "migrate needs a database", args: []string{"migrate"}, want: "database URL is required"},
		{name: "dev postgres port", args: []string{"dev", "--postgres-port", "70000"}, want: "out of range"},
		{name: "dev operator token", args: []string{"dev", "--operator-token", "short"}, want: "at least 16 characters"},
		{name: "no arguments", args: []string{"migrate", "extra"}, want: "unknown command"},
		{name: "unknown flag", args: []string{"controlplane", "--no-such-flag"}, want: "unknown flag"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var out bytes.Buffer
			root := newRootCommand(&out, &out, envMap(tc.env))
			root.SetArgs(tc.args)
			err := root.ExecuteContext(t.Context())
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestConfigDefaultsAreValid(t *testing.T) {
	t.Parallel()
	require.NoError(t, DevConfig{}.withDefaults().validate())
	require.NoError(t, MigrateConfig{DatabaseURL: "postgres://x/y"}.withDefaults().validate())
	cp := ControlPlaneConfig{DatabaseURL: "postgres://x/y", OperatorToken: "0123456789abcdef"}.withDefaults()
	require.NoError(t, cp.validate())
	require.Equal(t, defaultListen, cp.HTTP.Listen)
	require.Equal(t, logFormatJSON, cp.Log.Format)
	require.Equal(t, logFormatText, DevConfig{}.withDefaults().Log.Format)
	require.Error(t, ControlPlaneConfig{OperatorToken: "0123456789abcdef"}.withDefaults().validate())

	p, err := WebhookConfig{AllowLoopback: true, AllowCIDRs: []string{"10.1.2.3/16", " fd00::/8 "}}.policy()
	require.NoError(t, err)
	require.True(t, p.AllowLoopback)
	require.False(t, p.AllowPrivate)
	require.Len(t, p.Allow, 2)
	require.Equal(t, "10.1.0.0/16", p.Allow[0].String())
	require.Equal(t, "fd00::/8", p.Allow[1].String())
}

func TestOperatorTokenFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, tokenFileName)

	first, err := loadOrCreateToken(path, operatorTokenPrefix, validateOperatorToken)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(first, operatorTokenPrefix))
	require.NoError(t, validateOperatorToken(first))
	fi, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

	again, err := loadOrCreateToken(path, operatorTokenPrefix, validateOperatorToken)
	require.NoError(t, err)
	require.Equal(t, first, again, "the token is kept across runs")

	other, err := loadOrCreateToken(filepath.Join(dir, "other"), operatorTokenPrefix, validateOperatorToken)
	require.NoError(t, err)
	require.NotEqual(t, first, other, "tokens are random")

	require.NoError(t, os.WriteFile(path, []byte("short\n"), 0o600))
	_, err = loadOrCreateToken(path, operatorTokenPrefix, validateOperatorToken)
	require.ErrorContains(t, err, "delete the file")
}

func TestVersion(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	root := newRootCommand(&out, &out, envMap(nil))
	root.SetArgs([]string{"version"})
	require.NoError(t, root.ExecuteContext(context.Background()))
	require.Regexp(t, `^switchyard \S+ \(go1\.\S+, \w+/\w+\)\n$`, out.String())
}
