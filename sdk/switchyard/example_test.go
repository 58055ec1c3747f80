package switchyard_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	v1 "github.com/switchyard-dev/switchyard/sdk/api/switchyard/v1"
	"github.com/switchyard-dev/switchyard/sdk/switchyard"
)

// ExampleNewClient publishes two events and waits until they are durable in
// Kafka.
func ExampleNewClient() {
	client, err := switchyard.NewClient("http://127.0.0.1:8081",
		switchyard.WithToken("sy_..."),
		switchyard.WithEndpoints("http://127.0.0.1:8082"), // failover
		switchyard.WithRetry(switchyard.RetryPolicy{MaxAttempts: 8, InitialBackoff: 50 * time.Millisecond, MaxBackoff: 5 * time.Second}))
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	created, _ := switchyard.NewEvent("/shop", "order.created", switchyard.WithJSONData(map[string]int{"total": 250}),
		switchyard.WithPartitionKey("customer-7"))
	paid, _ := switchyard.NewEvent("/shop", "order.paid", switchyard.WithPartitionKey("customer-7"))
	results, err := client.Publish(context.Background(), "orders", created, paid)
	if err != nil {
		log.Fatal(err) // the whole request failed, after retries
	}
	for _, r := range results {
		if r.Err != nil {
			fmt.Println(r.EventID, "refused:", r.Err)
			continue
		}
		fmt.Println(r.EventID, "at", r.Partition, r.Offset)
	}
}

// ExampleProducer publishes in the background, in batches.
func ExampleProducer() {
	client, err := switchyard.NewClient("http://127.0.0.1:8081", switchyard.WithToken("sy_..."))
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	producer, err := switchyard.NewProducer(client, "orders",
		switchyard.WithLinger(10*time.Millisecond), switchyard.WithFailFast())
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	for i := range 1000 {
		ev, _ := switchyard.NewEvent("/shop", "order.created", switchyard.WithJSONData(map[string]int{"order": i}))
		producer.ProduceFunc(ctx, ev, func(r switchyard.Result, err error) {
			if err != nil {
				log.Printf("event %s: %v", r.EventID, err)
			}
		})
	}
	// Close sends what is buffered; what it cannot send in 30 s is
	// resolved with ErrClosed.
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := producer.Close(ctx); err != nil {
		log.Print(err)
	}
}

// ExampleTopics_Update changes a topic with a read-modify-write that starts
// over when someone else changed it meanwhile.
func ExampleTopics_Update() {
	admin, err := switchyard.NewClient("http://127.0.0.1:8080", switchyard.WithToken("operator-token"))
	if err != nil {
		log.Fatal(err)
	}
	defer admin.Close()
	topic, err := admin.Topics().Update(context.Background(), "top_01jq3v6x0m8y2c4r5t7w9z1b3d", func(t *v1.Topic) error {
		t.Description = "orders of the web shop"
		return nil
	})
	switch {
	case errors.Is(err, switchyard.ErrNotFound):
		fmt.Println("no such topic")
	case err != nil:
		log.Fatal(err)
	default:
		fmt.Println("etag now", topic.GetEtag())
	}
}

// ExampleError_FieldViolations shows which fields a refused request broke.
func ExampleError_FieldViolations() {
	admin, err := switchyard.NewClient("http://127.0.0.1:8080", switchyard.WithToken("operator-token"))
	if err != nil {
		log.Fatal(err)
	}
	defer admin.Close()
	_, err = admin.Tenants().Create(context.Background(), &v1.Tenant{Name: "Not A Slug"})
	var serr *switchyard.Error
	if errors.As(err, &serr) && errors.Is(err, switchyard.ErrInvalidArgument) {
		for _, v := range serr.FieldViolations() {
			fmt.Printf("%s: %s (%s)\n", v.Field, v.Message, v.Rule)
		}
	}
}

// ExampleNewEvent builds an event; its id is a UUIDv7 unless given.
func ExampleNewEvent() {
	ev, err := switchyard.NewEvent("/shop", "order.created",
		switchyard.WithID("order-1042"),
		switchyard.WithSubject("orders/1042"),
		switchyard.WithTime(time.Date(2026, 12, 3, 14, 37, 1, 0, time.UTC)),
		switchyard.WithJSONData(map[string]int{"total": 250}),
		switchyard.WithPartitionKey("customer-7"),
		switchyard.WithExtension("region", "eu"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(ev.ID, ev.Type, ev.DataContentType, string(ev.Data), ev.Extensions["region"])
	// Output: order-1042 order.created application/json {"total":250} eu
}
