package pipeline

import (
	"time"

	"github.com/switchyard-dev/switchyard/internal/kafkaname"
)

// Tier is a retry delay tier: a shared topic where failed deliveries of
// unordered pipelines wait, read by one consumer group.
type Tier struct {
	// Delay is the longest wait a record of this tier has.
	Delay time.Duration
	// Topic is the tier's Kafka topic.
	Topic string
	// Group is the consumer group reading Topic.
	Group string
}

// DefaultTiers returns the tiers of kafkaname.RetryTiers, shortest first.
func DefaultTiers() []Tier {
	out := make([]Tier, 0, len(kafkaname.RetryTiers))
	for _, d := range kafkaname.RetryTiers {
		out = append(out, Tier{Delay: d, Topic: kafkaname.RetryTopic(d), Group: kafkaname.RetryGroup(d)})
	}
	return out
}

// tierFor returns the shortest of tiers (sorted, shortest first) whose delay
// is at least d, or the longest tier.
func tierFor(tiers []Tier, d time.Duration) Tier {
	for _, t := range tiers {
		if t.Delay >= d {
			return t
		}
	}
	return tiers[len(tiers)-1]
}
