// Command producer publishes events to Switchyard with the Go SDK's async
// producer and prints the result of each.
//
//	SWITCHYARD_INGEST_URL=http://127.0.0.1:8081 SWITCHYARD_KEY=$(cat .switchyard/producer-key) \
//	  go run ./examples/producer -topic events -n 10
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"sync"
	"time"

	"github.com/switchyard-dev/switchyard/sdk/switchyard"
)

func main() {
	topic := flag.String("topic", "events", "the topic to publish to, by name or id")
	n := flag.Int("n", 10, "how many events to publish")
	flag.Parse()
	if err := run(*topic, *n); err != nil {
		log.Fatal(err)
	}
}

func run(topic string, n int) error {
	url, key := os.Getenv("SWITCHYARD_INGEST_URL"), os.Getenv("SWITCHYARD_KEY")
	if url == "" || key == "" {
		return errors.New("set SWITCHYARD_INGEST_URL (a data-plane node) and SWITCHYARD_KEY (a producer key)")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	client, err := switchyard.NewClient(url, switchyard.WithToken(key))
	if err != nil {
		return err
	}
	defer client.Close()
	producer, err := switchyard.NewProducer(client, topic)
	if err != nil {
		return err
	}

	var mu sync.Mutex
	failed := 0
	for i := range n {
		ev, err := switchyard.NewEvent("/examples/producer", "com.example.order.created",
			switchyard.WithPartitionKey(fmt.Sprintf("customer-%d", i%3)),
			switchyard.WithJSONData(map[string]any{"order": i, "total": 10 * i}))
		if err != nil {
			return err
		}
		producer.ProduceFunc(ctx, ev, func(r switchyard.Result, err error) {
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed++
				fmt.Printf("%s failed: %v\n", r.EventID, err)
				return
			}
			fmt.Printf("%s partition %d offset %d\n", r.EventID, r.Partition, r.Offset)
		})
	}
	closeCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := producer.Close(closeCtx); err != nil {
		return err
	}
	fmt.Printf("published %d of %d events\n", n-failed, n)
	return nil
}
