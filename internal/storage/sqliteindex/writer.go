package sqliteindex

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"

	"github.com/cloudpacs/pacs/internal/storage"
)

// Group commit. Every write (PutInstance, Delete, PutCachedMetadata) is
// a writeReq handed to one writer goroutine. The writer takes whatever
// requests are queued at that moment (at most maxBatch; it never waits
// for more), runs each inside its own SAVEPOINT of one BEGIN IMMEDIATE
// transaction, commits once, and only then answers every request of the
// batch. With synchronous=FULL that is one WAL fsync for the batch
// instead of one per instance. See doc.go, "Group commit", for the
// crash-safety argument.

// maxBatch bounds the requests of one transaction: it bounds the time a
// batch holds the write lock, the latency its first request sees, and
// the WAL growth of one commit.
const maxBatch = 256

// errClosed answers writes after Close.
var errClosed = fmt.Errorf("sqliteindex: index closed: %w", storage.ErrUnavailable)

// A writeReq is one logical write. op runs inside a savepoint of the
// batch's transaction and keeps its own result (in its closure); it may
// run more than once (see runBatch), so it must set its result afresh on
// every run. op receives a context without cancellation: once a request
// is in a transaction, it completes.
type writeReq struct {
	ctx  context.Context // checked once, when the writer takes the request
	op   func(ctx context.Context, tx *sql.Tx) error
	err  error         // op's error, the commit's error, or ctx's error
	done chan struct{} // closed once err (and op's result) is final
}

// writer is the goroutine that owns all writes of an Index.
type writer struct {
	db   *sql.DB
	reqs chan *writeReq // unbuffered: a request is either taken or still the sender's
	quit chan struct{}
	wg   sync.WaitGroup
	once sync.Once
	// afterBatch, if set, is called after each batch with its size
	// (tests).
	afterBatch func(n int)
	// sp holds the savepoint statements prepared on the write connection
	// (nil where preparing failed: then they run unprepared), so that a
	// batch does not make SQLite parse two statements per request.
	sp map[string]*sql.Stmt
}

const (
	spBegin    = `SAVEPOINT req`
	spRelease  = `RELEASE req`
	spRollback = `ROLLBACK TO req`
)

func newWriter(db *sql.DB) *writer {
	w := &writer{db: db, reqs: make(chan *writeReq), quit: make(chan struct{}), sp: map[string]*sql.Stmt{}}
	for _, q := range []string{spBegin, spRelease, spRollback} {
		if st, err := db.Prepare(q); err == nil {
			w.sp[q] = st
		}
	}
	w.wg.Go(w.loop)
	return w
}

// close stops the writer once the batch in progress is answered. Writes
// that arrive later fail with errClosed.
func (w *writer) close() {
	w.once.Do(func() { close(w.quit) })
	w.wg.Wait()
	for q, st := range w.sp {
		st.Close()
		delete(w.sp, q)
	}
}

// do runs op in the writer's next transaction and returns once that
// transaction committed (err == nil) or op failed. A ctx cancelled before
// the writer takes the request drops it (ctx's error, nothing written);
// once taken, the request runs and its outcome is reported whatever ctx
// does, so a committed row is never reported as failed.
func (w *writer) do(ctx context.Context, op func(ctx context.Context, tx *sql.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r := &writeReq{ctx: ctx, op: op, done: make(chan struct{})}
	select {
	case w.reqs <- r:
	case <-ctx.Done():
		return ctx.Err()
	case <-w.quit:
		return errClosed
	}
	<-r.done
	return r.err
}

func (w *writer) loop() {
	batch := make([]*writeReq, 0, maxBatch)
	for {
		batch = batch[:0]
		select {
		case r := <-w.reqs:
			batch = append(batch, r)
		case <-w.quit:
			return
		}
	fill: // what is queued now, without waiting for more
		for len(batch) < maxBatch {
			select {
			case r := <-w.reqs:
				batch = append(batch, r)
			default:
				break fill
			}
		}
		w.runBatch(batch)
		for _, r := range batch {
			close(r.done)
		}
		if w.afterBatch != nil {
			w.afterBatch(len(batch))
		}
	}
}

// runBatch runs the requests of batch and sets their err. Requests
// whose ctx is already cancelled are dropped here. A request whose op
// fails with a logical error (see logical) is rolled back to its
// savepoint and the others go on. Any other failure inside an op (an
// SQL error: the transaction may be gone, SQLite rolls back the whole
// transaction on some errors) rolls the whole transaction back; that
// request keeps its error and the rest of the batch runs again, each
// request in a transaction of its own, so that one bad request costs
// the others nothing but the lost grouping. A failed BEGIN or COMMIT
// fails every request it held.
func (w *writer) runBatch(batch []*writeReq) {
	live := batch[:0:0]
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.err = err // dropped before its turn: nothing written
			continue
		}
		live = append(live, r)
	}
	if len(live) == 0 {
		return
	}
	failed := w.runTx(live)
	if failed < 0 {
		return
	}
	for _, r := range live {
		if r != live[failed] {
			w.runTx([]*writeReq{r})
		}
	}
}

// runTx runs reqs in one transaction and sets their err. It returns -1,
// or the index of the request whose non-logical failure aborted the
// transaction: that request's err is set, the others' are not (their
// writes were rolled back; the caller runs them again).
func (w *writer) runTx(reqs []*writeReq) int {
	ctx := context.Background()
	fail := func(err error) int {
		for _, r := range reqs {
			r.err = err
		}
		return -1
	}
	tx, err := w.db.BeginTx(ctx, nil)
	if err != nil {
		return fail(err)
	}
	defer tx.Rollback()
	exec := func(q string) error {
		var err error
		if st := w.sp[q]; st != nil {
			_, err = tx.StmtContext(ctx, st).ExecContext(ctx)
		} else {
			_, err = tx.ExecContext(ctx, q)
		}
		return err
	}
	single := len(reqs) == 1 // no savepoint needed: the transaction is the request's
	for i, r := range reqs {
		r.err = nil
		if !single {
			if err := exec(spBegin); err != nil {
				return fail(err)
			}
		}
		err := r.op(ctx, tx)
		switch {
		case err == nil:
			if !single {
				if err := exec(spRelease); err != nil {
					return fail(err)
				}
			}
		case single: // nothing else in the transaction: roll it all back
			r.err = err
			_ = tx.Rollback()
			return -1
		case logical(err):
			r.err = err
			err1 := exec(spRollback)
			err2 := exec(spRelease)
			if errors.Join(err1, err2) != nil { // should not happen: treat the transaction as lost
				_ = tx.Rollback()
				return i
			}
		default:
			r.err = err
			_ = tx.Rollback()
			return i
		}
	}
	if err := tx.Commit(); err != nil {
		return fail(err)
	}
	return -1
}

// logical reports whether err is a request's own outcome decided by our
// code (not a failed SQL statement), which leaves the transaction
// intact: rolling back to the request's savepoint undoes it exactly.
func logical(err error) bool {
	return errors.Is(err, storage.ErrConflict) || errors.Is(err, storage.ErrExists) ||
		errors.Is(err, storage.ErrNotFound)
}
