package sqliteindex

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudpacs/pacs/internal/storage"
	"github.com/cloudpacs/pacs/internal/storage/storagetest"
)

func openTest(t *testing.T) *Index {
	t.Helper()
	x, err := Open(t.Context(), "file:"+filepath.Join(t.TempDir(), "index.db")+"?_pragma=synchronous(NORMAL)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.Close() })
	return x
}

// hold blocks the writer inside a transaction until the returned release
// is called, so that requests queue up behind it.
func hold(t *testing.T, x *Index) (release func()) {
	t.Helper()
	running, unblock := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- x.wr.do(context.Background(), func(context.Context, *sql.Tx) error {
			close(running)
			<-unblock
			return nil
		})
	}()
	<-running
	return func() {
		close(unblock)
		if err := <-done; err != nil {
			t.Errorf("holding op: %v", err)
		}
	}
}

// waitQueued waits until n goroutines announced themselves on *count,
// then a little longer so that they reach the writer's channel.
func waitQueued(count *atomic.Int64, n int64) {
	for count.Load() < n {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
}

// Many concurrent writers, mixing new instances, duplicates, conflicts
// and different bytes in the same batches: each gets its own result, and
// a request that failed after writing (a new study row, then a series
// conflict) leaves nothing behind.
func TestGroupCommit_mixedBatch(t *testing.T) {
	x := openTest(t)
	var (
		mu    sync.Mutex
		sizes []int
	)
	x.wr.afterBatch = func(n int) { mu.Lock(); sizes = append(sizes, n); mu.Unlock() }
	ctx := t.Context()
	base := storagetest.NewTestInstance("5.1", "5.1.1", "5.1.1.1")
	if _, err := x.PutInstance(ctx, base, false); err != nil {
		t.Fatal(err)
	}

	type want int
	const (
		wantStored want = iota
		wantDuplicate
		wantExists
		wantConflict
	)
	type job struct {
		inst *storage.Instance
		want want
	}
	var jobs []job
	for i := range 40 {
		jobs = append(jobs, job{storagetest.NewTestInstance("5.1", "5.1.1", fmt.Sprintf("5.1.1.%d", i+100)), wantStored})
	}
	for range 8 {
		jobs = append(jobs, job{storagetest.NewTestInstance("5.1", "5.1.1", "5.1.1.1"), wantDuplicate})
	}
	for i := range 8 {
		changed := storagetest.NewTestInstance("5.1", "5.1.1", "5.1.1.1")
		changed.SHA256 = fmt.Sprintf("%064d", i+1)
		jobs = append(jobs, job{changed, wantExists})
	}
	for i := range 8 { // known SOP UID under another series
		jobs = append(jobs, job{storagetest.NewTestInstance("5.1", fmt.Sprintf("5.1.%d", i+2), "5.1.1.1"), wantConflict})
	}
	for i := range 8 { // known series under a new study: the study row is inserted, then rolled back
		jobs = append(jobs, job{storagetest.NewTestInstance(fmt.Sprintf("5.9.%d", i), "5.1.1", fmt.Sprintf("5.9.%d.1", i)), wantConflict})
	}

	release := hold(t, x)
	var (
		wg      sync.WaitGroup
		started atomic.Int64
		errs    = make([]error, len(jobs))
		results = make([]storage.PutResult, len(jobs))
	)
	for i, j := range jobs {
		wg.Go(func() {
			started.Add(1)
			results[i], errs[i] = x.PutInstance(ctx, j.inst, false)
		})
	}
	waitQueued(&started, int64(len(jobs)))
	release()
	wg.Wait()

	for i, j := range jobs {
		err, res := errs[i], results[i]
		var ok bool
		switch j.want {
		case wantStored:
			ok = err == nil && !res.Duplicate && res.Stored.SOPInstanceUID == j.inst.SOPInstanceUID
		case wantDuplicate:
			ok = err == nil && res.Duplicate && res.Stored.BlobKey == base.BlobKey
		case wantExists:
			ok = errors.Is(err, storage.ErrExists)
		case wantConflict:
			ok = errors.Is(err, storage.ErrConflict)
		}
		if !ok {
			t.Errorf("job %d (%s, want %d): %+v, %v", i, j.inst.SOPInstanceUID, j.want, res.Duplicate, err)
		}
	}
	insts, err := x.Instances(ctx, "5.1", "")
	if err != nil || len(insts) != 41 {
		t.Fatalf("Instances = %d, %v; want 41", len(insts), err)
	}
	for i := range 8 {
		if _, err := x.StudyVersion(ctx, fmt.Sprintf("5.9.%d", i)); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("study of a failed request left behind: %v", err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if largest := maxOf(sizes); largest < 2 {
		t.Errorf("batch sizes %v: requests were not grouped", sizes)
	}
}

func maxOf(s []int) int {
	m := 0
	for _, v := range s {
		m = max(m, v)
	}
	return m
}

// A request whose op fails with an SQL error (the transaction may be
// lost) costs the others in its batch nothing: they run again and commit.
func TestGroupCommit_sqlErrorInBatch(t *testing.T) {
	x := openTest(t)
	ctx := t.Context()
	release := hold(t, x)
	var (
		wg      sync.WaitGroup
		started atomic.Int64
		errs    = make([]error, 20)
		bad     error
	)
	for i := range 10 {
		wg.Go(func() {
			started.Add(1)
			_, errs[i] = x.PutInstance(ctx, storagetest.NewTestInstance("6.1", "6.1.1", fmt.Sprintf("6.1.1.%d", i)), false)
		})
	}
	waitQueued(&started, 10)
	wg.Go(func() {
		started.Add(1)
		bad = x.wr.do(ctx, func(ctx context.Context, tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO no_such_table VALUES (1)`)
			return err
		})
	})
	waitQueued(&started, 11)
	for i := range 10 {
		wg.Go(func() {
			started.Add(1)
			_, errs[10+i] = x.PutInstance(ctx, storagetest.NewTestInstance("6.1", "6.1.1", fmt.Sprintf("6.1.1.%d", 10+i)), false)
		})
	}
	waitQueued(&started, 21)
	release()
	wg.Wait()
	if bad == nil {
		t.Error("bad op succeeded")
	}
	for i, err := range errs {
		if err != nil {
			t.Errorf("put %d: %v", i, err)
		}
	}
	if insts, err := x.Instances(ctx, "6.1", ""); err != nil || len(insts) != 20 {
		t.Fatalf("Instances = %d, %v; want 20", len(insts), err)
	}
}

// A ctx cancelled before the writer takes the request drops it; one
// cancelled after its op ran in the transaction still completes and is
// reported as committed.
func TestGroupCommit_cancel(t *testing.T) {
	x := openTest(t)

	t.Run("before the call", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if _, err := x.PutInstance(ctx, storagetest.NewTestInstance("7.1", "7.1.1", "7.1.1.1"), false); !errors.Is(err, context.Canceled) {
			t.Fatalf("PutInstance(cancelled) = %v", err)
		}
		if _, err := x.Instance(t.Context(), "", "", "7.1.1.1"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("cancelled put stored: %v", err)
		}
	})

	t.Run("while queued", func(t *testing.T) {
		release := hold(t, x)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() {
			_, err := x.PutInstance(ctx, storagetest.NewTestInstance("7.2", "7.2.1", "7.2.1.1"), false)
			done <- err
		}()
		time.Sleep(50 * time.Millisecond)
		cancel()
		err := <-done // returns without waiting for the writer
		release()
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("PutInstance(cancelled while queued) = %v", err)
		}
		if _, err := x.Instance(t.Context(), "", "", "7.2.1.1"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("dropped put stored: %v", err)
		}
	})

	t.Run("taken, then cancelled", func(t *testing.T) {
		// The writer is free when the request arrives; it is cancelled
		// from inside its own transaction, after its op ran.
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		release := hold(t, x)
		var started atomic.Int64
		put := make(chan error, 1)
		go func() {
			started.Add(1)
			_, err := x.PutInstance(ctx, storagetest.NewTestInstance("7.3", "7.3.1", "7.3.1.1"), false)
			put <- err
		}()
		waitQueued(&started, 1)
		canceller := make(chan error, 1)
		go func() { // queued after the put: runs after it in the same batch
			started.Add(1)
			canceller <- x.wr.do(context.Background(), func(context.Context, *sql.Tx) error {
				cancel()
				return nil
			})
		}()
		waitQueued(&started, 2)
		release()
		if err := <-canceller; err != nil {
			t.Fatal(err)
		}
		if err := <-put; err != nil {
			t.Fatalf("PutInstance cancelled after its op ran = %v, want success", err)
		}
		if _, err := x.Instance(t.Context(), "", "", "7.3.1.1"); err != nil {
			t.Fatalf("committed put not found: %v", err)
		}
	})
}

// Writes after Close fail with ErrUnavailable instead of hanging.
func TestGroupCommit_closed(t *testing.T) {
	x, err := Open(t.Context(), "file:"+filepath.Join(t.TempDir(), "index.db")+"?_pragma=synchronous(NORMAL)")
	if err != nil {
		t.Fatal(err)
	}
	x.Close()
	if _, err := x.PutInstance(t.Context(), storagetest.NewTestInstance("8.1", "8.1.1", "8.1.1.1"), false); !errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("PutInstance after Close = %v", err)
	}
}
