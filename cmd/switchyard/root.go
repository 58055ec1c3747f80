package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// envAnnotation is the flag annotation that lists the environment variables
// a flag can be set from, in order of precedence.
const envAnnotation = "switchyard_env"

// newRootCommand builds the command tree. Output goes to stdout and stderr;
// getenv looks up environment variables (os.Getenv in main, a map in tests).
func newRootCommand(stdout, stderr io.Writer, getenv func(string) string) *cobra.Command {
	root := &cobra.Command{
		Use:   "switchyard",
		Short: "Switchyard routes events from producers through pipelines to webhooks and Kafka",
		Long: "Switchyard is an event orchestration platform: producers publish events, Switchyard keeps\n" +
			"them in Kafka, routes them through tenant-defined pipelines and delivers them with retries,\n" +
			"a dead-letter queue and replay. This binary runs its roles.\n\n" +
			"Every flag can also be set through the environment variable shown beside it.",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return applyEnv(cmd.Flags(), getenv)
		},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.CompletionOptions.DisableDefaultCmd = true

	root.AddCommand(
		newControlPlaneCommand(),
		newDataPlaneCommand(),
		newMigrateCommand(),
		newDevCommand(),
		newVersionCommand(),
	)
	return root
}

// bindEnv records that flag name of fs may be set from the environment
// variables vars (the first non-empty one wins) and shows them in --help.
func bindEnv(fs *pflag.FlagSet, name string, vars ...string) {
	f := fs.Lookup(name)
	if f == nil {
		panic(fmt.Sprintf("bindEnv: no flag %q", name))
	}
	if f.Annotations == nil {
		f.Annotations = map[string][]string{}
	}
	f.Annotations[envAnnotation] = vars
	shown := make([]string, len(vars))
	for i, v := range vars {
		shown[i] = "$" + v
	}
	f.Usage += " [" + strings.Join(shown, ", ") + "]"
}

// applyEnv sets every flag of fs that was not given on the command line from
// the first of its environment variables that is set and non-empty.
func applyEnv(fs *pflag.FlagSet, getenv func(string) string) error {
	var errs []error
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Changed {
			return
		}
		for _, name := range f.Annotations[envAnnotation] {
			v := getenv(name)
			if v == "" {
				continue
			}
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("environment variable %s: invalid value %q for --%s: %w", name, v, f.Name, err))
			}
			return
		}
	})
	if len(errs) > 0 {
		return errs[0]
	}
	return nil
}
