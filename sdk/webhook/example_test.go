package webhook_test

import (
	"fmt"
	"net/http"
	"time"

	"github.com/switchyard-dev/switchyard/sdk/switchyard"
	"github.com/switchyard-dev/switchyard/sdk/webhook"
)

// ExampleVerify checks the Standard Webhooks specification's test vector.
func ExampleVerify() {
	h := http.Header{}
	h.Set("Webhook-Id", "msg_p5jXN8AQM9LWM0D4loKWxJek")
	h.Set("Webhook-Timestamp", "1614265330")
	h.Set("Webhook-Signature", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
	body := []byte(`{"test": 2432232314}`)
	secrets := []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}

	fmt.Println(webhook.Verify(secrets, h, body, time.Unix(1614265330, 0), 0))
	fmt.Println(webhook.Verify(secrets, h, body, time.Unix(1614265330, 0).Add(time.Hour), 0))
	// Output:
	// <nil>
	// webhook: timestamp out of range
}

// ExampleMiddleware serves a webhook endpoint that sees only verified
// events.
func ExampleMiddleware() {
	secrets := []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}
	http.Handle("POST /hooks", webhook.Middleware(secrets, func(w http.ResponseWriter, r *http.Request, ev *switchyard.Event) {
		// Deduplicate on ev.ID: a redelivery carries the same id.
		fmt.Printf("%s %s %s\n", ev.ID, ev.Type, ev.Data)
		w.WriteHeader(http.StatusNoContent)
	}))
}
