// Command webhook-receiver receives Switchyard webhooks, verifies their
// Standard Webhooks signature with the Go SDK and prints each event.
//
//	SWITCHYARD_WEBHOOK_SECRET=whsec_... go run ./examples/webhook-receiver -addr 127.0.0.1:9000
//
// Point a pipeline's webhook destination at http://127.0.0.1:9000/hook.
package main

import (
	"errors"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/switchyard-dev/switchyard/sdk/switchyard"
	"github.com/switchyard-dev/switchyard/sdk/webhook"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9000", "the address to listen on")
	flag.Parse()
	if err := run(*addr); err != nil {
		log.Fatal(err)
	}
}

func run(addr string) error {
	// Several secrets, space-separated, during a rotation.
	secrets := strings.Fields(os.Getenv("SWITCHYARD_WEBHOOK_SECRET"))
	if len(secrets) == 0 {
		return errors.New("set SWITCHYARD_WEBHOOK_SECRET to the destination's signing secret (whsec_...)")
	}
	// A redelivery carries the same id: remember the ids seen (a real
	// receiver keeps them in its database, for a while).
	var (
		mu   sync.Mutex
		seen = map[string]bool{}
	)
	mux := http.NewServeMux()
	mux.Handle("POST /hook", webhook.Middleware(secrets, func(w http.ResponseWriter, _ *http.Request, ev *switchyard.Event) {
		mu.Lock()
		dup := seen[ev.ID]
		seen[ev.ID] = true
		mu.Unlock()
		if dup {
			fmt.Printf("%s again (already handled)\n", ev.ID)
		} else {
			fmt.Printf("%s %s from %s at %s: %s\n", ev.ID, ev.Type, ev.Source, ev.Time.Format(time.RFC3339), ev.Data)
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	log.Printf("listening on http://%s/hook", addr)
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	return srv.ListenAndServe()
}
