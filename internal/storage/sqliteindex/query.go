package sqliteindex

import (
	"context"
	"database/sql"
	"errors"
	"sync"
)

// maxReadStmts bounds the statements kept prepared on the read pool.
// Statement texts repeat: the fixed lookups, and one text per QIDO form
// (the matching values are arguments), so the bound is reached only by
// unusual query mixes; past it, statements run unprepared.
const maxReadStmts = 256

// stmtCache keeps statements prepared on the read pool. A *sql.Stmt
// prepared on a *sql.DB is prepared again on each pool connection the
// first time it runs there and then kept on it, so SQLite parses and
// plans a hot statement once per connection instead of on every query
// (modernc.org/sqlite prepares anew for every unprepared QueryContext).
type stmtCache struct {
	mu     sync.Mutex
	m      map[string]*sql.Stmt
	closed bool
}

func (c *stmtCache) get(ctx context.Context, db *sql.DB, q string) *sql.Stmt {
	c.mu.Lock()
	st, ok := c.m[q]
	full := c.closed || len(c.m) >= maxReadStmts
	c.mu.Unlock()
	if ok || full {
		return st
	}
	// database/sql prepares on one connection now, on the others when
	// the statement first runs there. Not under mu: preparing waits for
	// a connection.
	st, err := db.PrepareContext(ctx, q)
	if err != nil {
		return nil // the caller runs q unprepared and reports the error
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.m[q]; ok || c.closed {
		st.Close()
		return old // nil when closed: the caller's query fails on the closed pool
	}
	if c.m == nil {
		c.m = map[string]*sql.Stmt{}
	}
	c.m[q] = st
	return st
}

func (c *stmtCache) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	var err error
	for _, st := range c.m {
		err = errors.Join(err, st.Close())
	}
	c.m = nil
	return err
}

// query runs q on the read pool as a cached prepared statement.
func (x *Index) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	if st := x.rstmts.get(ctx, x.r, q); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return x.r.QueryContext(ctx, q, args...)
}

// readGate admits read calls to the read pool in arrival order, at most
// as many at once as the pool has connections. database/sql hands a
// freed connection to a random waiting caller, so with more callers
// than connections some wait far longer than others: at 16 concurrent
// study searches on 2 cores, a p99 five times the p50. Blocked senders
// on a full buffered channel are served first come, first served.
// nil admits everything (the in-memory database's single connection).
type readGate chan struct{}

// enter waits for a turn; the returned func ends it.
func (g readGate) enter(ctx context.Context) (leave func(), err error) {
	if g == nil {
		return func() {}, nil
	}
	select {
	case g <- struct{}{}:
		return func() { <-g }, nil
	case <-ctx.Done():
		return func() {}, ctx.Err()
	}
}
