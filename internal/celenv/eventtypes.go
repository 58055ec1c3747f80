package celenv

import "strings"

// MatchTypes reports whether eventType is selected by patterns, the
// event_types of a pipeline filter. A pattern matches its exact type, or,
// when it ends in ".*", every type that starts with what comes before the
// "*" and continues after it: "order.*" matches "order.created" and
// "order.item.added" but not "order" or "orders.created". No patterns match
// every type.
func MatchTypes(patterns []string, eventType string) bool {
	if len(patterns) == 0 {
		return true
	}
	for _, p := range patterns {
		if prefix, ok := strings.CutSuffix(p, "*"); ok && strings.HasSuffix(prefix, ".") {
			if len(eventType) > len(prefix) && strings.HasPrefix(eventType, prefix) {
				return true
			}
			continue
		}
		if p == eventType {
			return true
		}
	}
	return false
}
