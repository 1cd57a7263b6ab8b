package sqliteindex

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"
)

// Waiters are admitted in the order they arrived, and a cancelled
// waiter leaves the queue with its context's error.
func TestReadGateOrder(t *testing.T) {
	g := make(readGate, 1)
	leave, err := g.enter(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	const n = 8
	order := make(chan int, n)
	for i := range n {
		go func() {
			l, err := g.enter(context.Background())
			if err != nil {
				t.Error(err)
				return
			}
			order <- i
			l()
		}()
		// Let waiter i block before i+1 arrives.
		deadline := time.Now().Add(5 * time.Second)
		for waiting() < i+1 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := g.enter(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("enter with a cancelled context: %v", err)
	}
	leave()
	for want := range n {
		if got := <-order; got != want {
			t.Fatalf("admitted waiter %d, want %d", got, want)
		}
	}
	var nilGate readGate
	l, err := nilGate.enter(ctx)
	if err != nil {
		t.Fatalf("nil gate: %v", err)
	}
	l()
}

// waiting counts the goroutines blocked in readGate.enter, from a dump
// of all stacks (a channel has no public count of its blocked senders).
func waiting() int {
	buf := make([]byte, 1<<20)
	n := 0
	for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
		if strings.Contains(g, "[select") && strings.Contains(g, "readGate.enter") {
			n++
		}
	}
	return n
}
