package audit

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// Flood keeps floods of refusals from turning into floods of rows (SPEC §6b): the
// first refusal of a key (a client address or a grant, with the reason) in a window
// is written at once; the rest of that window are counted, and one summary row with
// the count is written when the window closes or the gateway stops. Keys are bounded:
// the least recently seen fold into one overflow tally.
type Flood struct {
	out interface{ Enqueue(Entry) } // the Log

	window time.Duration
	now    func() time.Time

	mu       sync.Mutex
	tallies  *simplelru.LRU[string, *tally]
	overflow *tally
	stop     chan struct{}
	done     chan struct{}
}

// tally is one key's window: its first row and how many were left unwritten since.
type tally struct {
	first Entry
	start time.Time
	count int
}

// FloodWindow is how long one key's refusals share a summary row.
const FloodWindow = time.Minute

// NewFlood aggregates into out, with at most maxKeys keys tracked at once.
func NewFlood(out interface{ Enqueue(Entry) }, maxKeys int) *Flood {
	f := &Flood{out: out, window: FloodWindow, now: time.Now, stop: make(chan struct{}), done: make(chan struct{})}
	f.tallies, _ = simplelru.NewLRU(maxKeys, f.evicted)
	go f.run()
	return f
}

// Admit says whether the refusal e of key is written now (the first of its window);
// otherwise it is counted into the window's summary.
func (f *Flood) Admit(key string, e Entry) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now()
	if t, ok := f.tallies.Get(key); ok {
		if now.Sub(t.start) < f.window {
			t.count++
			return false
		}
		f.summarise(t, now)
	}
	f.tallies.Add(key, &tally{first: e, start: now})
	return true
}

// evicted folds a key pushed out by newer ones into the overflow tally (called with
// f.mu held, from the LRU).
func (f *Flood) evicted(_ string, t *tally) {
	if t.count == 0 {
		return
	}
	if f.overflow == nil {
		first := t.first
		first.Reason, first.ClientAddr, first.GrantID, first.PeerID, first.Peer = "aggregated", "", "", "", ""
		f.overflow = &tally{first: first, start: t.start}
	}
	f.overflow.count += t.count
}

// summarise queues a window's summary row, if it counted anything.
func (f *Flood) summarise(t *tally, end time.Time) {
	if t.count == 0 {
		return
	}
	e := t.first
	e.Count, e.WindowStart, e.WindowEnd = t.count, t.start, end
	e.RequestID, e.PeerRequestID, e.Traceparent, e.Duration, e.Rows = "", "", "", 0, 0
	e.Detail = "summary: " + strconv.Itoa(t.count) + " more like the first of this window"
	f.out.Enqueue(e)
	t.count = 0
}

// run closes windows as they end.
func (f *Flood) run() {
	defer close(f.done)
	tick := time.NewTicker(f.window / 6)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			f.flush(false)
		case <-f.stop:
			f.flush(true)
			return
		}
	}
}

// flush writes the summaries of windows that have ended (all of them when the
// gateway stops).
func (f *Flood) flush(all bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now()
	for _, key := range f.tallies.Keys() {
		t, _ := f.tallies.Peek(key)
		if all || now.Sub(t.start) >= f.window {
			f.summarise(t, now)
			f.tallies.Remove(key)
		}
	}
	if f.overflow != nil && (all || now.Sub(f.overflow.start) >= f.window) {
		f.summarise(f.overflow, now)
		f.overflow = nil
	}
}

// Close writes every open window's summary.
func (f *Flood) Close(context.Context) {
	close(f.stop)
	<-f.done
}
