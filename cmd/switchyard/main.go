// Command switchyard is Switchyard's single binary. Each role is a
// subcommand:
//
//	switchyard controlplane   the Connect/gRPC control plane over Postgres
//	switchyard dataplane      a data-plane node: ingest, pipelines and delivery for a region
//	switchyard migrate        apply the database migrations and exit
//	switchyard dev            Postgres, Kafka, the control plane and a data-plane node in one process
//	switchyard version        print the build's version
//
// Every flag can also be set through an environment variable named in
// `switchyard <command> --help` (SWITCHYARD_*); a flag given on the command
// line wins over its variable.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// After the first signal starts a graceful shutdown, restore the
		// default behaviour so that a second Ctrl-C ends the process at once.
		<-ctx.Done()
		stop()
	}()

	cmd := newRootCommand(os.Stdout, os.Stderr, os.Getenv)
	err := cmd.ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "switchyard:", err)
		os.Exit(1)
	}
}
