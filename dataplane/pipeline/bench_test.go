package pipeline

import "testing"

// BenchmarkWatermark measures tracking one record: add, done out of order
// within a window of 64, and a commit read.
func BenchmarkWatermark(b *testing.B) {
	var w watermark
	const window = 64
	var ring [window]uint64
	b.ReportAllocs()
	for i := range b.N {
		t := w.add(int64(i), 0)
		slot := (i * 37) % window // a permutation of the window
		if i >= window {
			w.done(ring[slot])
		}
		ring[slot] = t
		_, _ = w.commit()
	}
}
