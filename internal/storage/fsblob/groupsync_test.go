package fsblob

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestGroupSync_sharesFlushes(t *testing.T) {
	var flushes atomic.Int32
	old := flush
	flush = func(string) error {
		flushes.Add(1)
		time.Sleep(5 * time.Millisecond)
		return nil
	}
	t.Cleanup(func() { flush = old })
	g := newGroupSync(t.TempDir())
	const waiters = 64
	var wg sync.WaitGroup
	for range waiters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := g.wait(); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	n := flushes.Load()
	if n < 1 || n >= waiters/2 {
		t.Fatalf("%d flushes for %d concurrent waiters, want 1 <= n < %d", n, waiters, waiters/2)
	}
	// A later wait needs a flush of its own: the earlier ones started
	// before its writes.
	before := flushes.Load()
	if err := g.wait(); err != nil || flushes.Load() != before+1 {
		t.Fatalf("wait after the burst: %v, %d new flushes, want 1", err, flushes.Load()-before)
	}
}

func TestGroupSync_failurePoisons(t *testing.T) {
	old := flush
	boom := errors.New("EIO")
	fail := true
	flush = func(string) error {
		if fail {
			return boom
		}
		return nil
	}
	t.Cleanup(func() { flush = old })
	g := newGroupSync(t.TempDir())
	if err := g.wait(); !errors.Is(err, boom) {
		t.Fatalf("wait: %v, want the flush error", err)
	}
	fail = false
	if err := g.wait(); !errors.Is(err, boom) {
		t.Fatalf("wait after a failed flush: %v, want it to stay failed", err)
	}
}

func TestGroupSync_realSyncfs(t *testing.T) {
	if !haveSyncfs {
		t.Skip("no syncfs on this platform")
	}
	if err := newGroupSync(t.TempDir()).wait(); err != nil {
		t.Fatal(err)
	}
}
