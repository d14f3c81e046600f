package audit

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

type rows struct {
	mu sync.Mutex
	e  []Entry
}

func (r *rows) Enqueue(e Entry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.e = append(r.e, e)
}

func TestFloodWritesTheFirstAndCountsTheRest(t *testing.T) {
	out := &rows{}
	f := NewFlood(out, 4)
	clock := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	f.mu.Lock()
	f.now = func() time.Time { return clock }
	f.mu.Unlock()
	refusal := Entry{Direction: Inbound, Reason: "client_certificate_required", ClientAddr: "127.0.0.2"}
	written := 0
	for range 10000 {
		if f.Admit("127.0.0.2|client_certificate_required", refusal) {
			written++
		}
	}
	if written != 1 || len(out.e) != 0 {
		t.Fatalf("%d written at once, %d summaries before the window closed", written, len(out.e))
	}
	f.mu.Lock()
	clock = clock.Add(FloodWindow)
	f.mu.Unlock()
	if !f.Admit("127.0.0.2|client_certificate_required", refusal) {
		t.Fatal("the first refusal of a new window must be written")
	}
	if len(out.e) != 1 || out.e[0].Count != 9999 || out.e[0].WindowEnd.Sub(out.e[0].WindowStart) != FloodWindow {
		t.Fatalf("summary %+v", out.e)
	}
	f.Close(context.Background())
	if len(out.e) != 1 {
		t.Errorf("a window that counted nothing wrote a summary: %+v", out.e[1:])
	}
}

func TestFloodIsBoundedAndFoldsIntoOverflow(t *testing.T) {
	out := &rows{}
	f := NewFlood(out, 4)
	for i := range 100 {
		key := fmt.Sprintf("10.0.0.%d|client_certificate_required", i)
		f.Admit(key, Entry{Reason: "client_certificate_required", ClientAddr: key})
		f.Admit(key, Entry{Reason: "client_certificate_required", ClientAddr: key}) // one counted per key
	}
	if n := f.tallies.Len(); n > 4 {
		t.Fatalf("%d keys tracked, bound 4", n)
	}
	f.Close(context.Background())
	total := 0
	for _, e := range out.e {
		total += e.Count
	}
	if total != 100 {
		t.Errorf("summaries count %d refusals, want all 100 that were not written at once", total)
	}
}
