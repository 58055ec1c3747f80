package pipeline

import "github.com/twmb/franz-go/pkg/kgo"

// watermark tracks the records of one partition from the moment they are
// polled until they reach a final outcome, and yields the offset that is safe
// to commit: the offset of the first record that is not final yet, or the
// one after the last record when every record is final. Records are added in
// offset order and may finish in any order. It is not safe for concurrent
// use; the partition's mutex guards it.
type watermark struct {
	entries []wmEntry // entries[head:] are tracked; entries[:head] are final
	head    int
	base    uint64 // ticket of entries[0]
	next    kgo.EpochOffset
	added   bool
}

type wmEntry struct {
	offset int64
	epoch  int32
	done   bool
}

// compactAt is the number of final entries at the front of the slice above
// which it is compacted.
const compactAt = 1024

// add tracks a record; offset must be greater than that of every record
// added before. It returns the ticket that done takes.
func (w *watermark) add(offset int64, epoch int32) uint64 {
	w.entries = append(w.entries, wmEntry{offset: offset, epoch: epoch})
	w.next = kgo.EpochOffset{Epoch: epoch, Offset: offset + 1}
	w.added = true
	return w.base + uint64(len(w.entries)-1)
}

// done marks the record of ticket t final. Unknown or repeated tickets are
// ignored.
func (w *watermark) done(t uint64) {
	if t < w.base {
		return
	}
	i := t - w.base
	if i < uint64(w.head) || i >= uint64(len(w.entries)) {
		return
	}
	w.entries[i].done = true
	for w.head < len(w.entries) && w.entries[w.head].done {
		w.head++
	}
	switch {
	case w.head == len(w.entries):
		w.base += uint64(len(w.entries))
		w.entries = w.entries[:0]
		w.head = 0
	case w.head >= compactAt && w.head*2 >= len(w.entries):
		n := copy(w.entries, w.entries[w.head:])
		w.entries = w.entries[:n]
		w.base += uint64(w.head)
		w.head = 0
	}
}

// commit returns the offset to commit, and false when no record was ever
// added.
func (w *watermark) commit() (kgo.EpochOffset, bool) {
	if !w.added {
		return kgo.EpochOffset{}, false
	}
	if w.head < len(w.entries) {
		e := w.entries[w.head]
		return kgo.EpochOffset{Epoch: e.epoch, Offset: e.offset}, true
	}
	return w.next, true
}

// pending returns the number of records not final yet.
func (w *watermark) pending() int { return len(w.entries) - w.head - w.countDoneAfterHead() }

// countDoneAfterHead counts final records above the first pending one.
func (w *watermark) countDoneAfterHead() int {
	n := 0
	for _, e := range w.entries[w.head:] {
		if e.done {
			n++
		}
	}
	return n
}
