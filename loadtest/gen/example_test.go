package gen_test

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/switchyard-dev/switchyard/loadtest/gen"
)

// An open-loop run: 50 events at 1000/s. fire starts each send and the
// outcome is reported with Done; latency counts from the intended time.
func Example() {
	g, err := gen.New(gen.Config{Rate: 1000, Duration: 50 * time.Millisecond})
	if err != nil {
		panic(err)
	}
	var wg sync.WaitGroup
	_ = g.Run(context.Background(), func(s gen.Shot) {
		wg.Go(func() {
			// Publish the event here, then:
			g.Done(s, nil)
		})
	})
	wg.Wait()
	st := g.Stats()
	fmt.Println("offered", st.Offered, "acked", st.Acked)
	// Output: offered 50 acked 50
}
