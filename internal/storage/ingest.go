package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"
)

// ErrBusy is an instance the archive did not take because its server-wide
// ingest budget stayed exhausted for Limits.Wait. Nothing of it was
// stored; the sender may try again later (HTTP 503 with Retry-After,
// STOW failure reason and DIMSE status A700, out of resources).
var ErrBusy = errors.New("archive busy: ingest budget exhausted, retry later")

// Limits bound ingest across the whole server, whichever door instances
// come through (STOW-RS, C-STORE, import): one budget, shared by every
// concurrent request. Zero fields take the defaults (DefaultLimits),
// sized for a 2-core machine with 4 GB of memory.
type Limits struct {
	// Instances is how many instances may be in flight at once: being
	// received and parsed, or waiting for their commit. Each holds a
	// read buffer and its blob writer's buffer (fsblob: 64 KiB; s3blob:
	// up to part size × upload concurrency).
	Instances int
	// Bytes is the admission threshold of received bytes not yet
	// committed (temporary files, multipart uploads in progress): while
	// the instances in flight hold more, a new instance waits. An
	// instance already admitted is never stopped by it (sizes are not
	// known in advance; stopping it half-way could deadlock every
	// upload), so in-flight bytes exceed Bytes by at most what admitted
	// instances receive after their admission.
	Bytes int64
	// HeaderBytes bounds the parsed headers (attribute values kept in
	// memory, dcm.Header.RetainedBytes) held between parse and commit.
	HeaderBytes int64
	// Commits is how many commits (blob made durable, then the index
	// row) run at once.
	Commits int
	// PerSource is how many instances of one source (a STOW request, an
	// association) may wait for or run their commit while the source
	// reads the next one.
	PerSource int
	// Wait is how long an instance waits for room in the budget before it
	// fails with ErrBusy.
	Wait time.Duration
}

// DefaultLimits are the limits for zero fields of Limits.
var DefaultLimits = Limits{
	Instances:   64,
	Bytes:       2 << 30,
	HeaderBytes: 256 << 20,
	Commits:     16,
	PerSource:   8,
	Wait:        30 * time.Second,
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits
	if l.Instances <= 0 {
		l.Instances = d.Instances
	}
	if l.Bytes <= 0 {
		l.Bytes = d.Bytes
	}
	if l.HeaderBytes <= 0 {
		l.HeaderBytes = d.HeaderBytes
	}
	if l.Commits <= 0 {
		l.Commits = d.Commits
	}
	if l.PerSource <= 0 {
		l.PerSource = d.PerSource
	}
	if l.Wait <= 0 {
		l.Wait = d.Wait
	}
	return l
}

// IngestStats is a snapshot of the ingest budget (for metrics and tests).
type IngestStats struct {
	Instances   int   // instances in flight
	Bytes       int64 // received bytes not yet committed or discarded
	HeaderBytes int64 // parsed header bytes held for commits
	Commits     int   // commits running
	Refused     int64 // instances refused with ErrBusy since start
	MostBytes   int64 // the highest Bytes seen since start
}

// budget is the server-wide ingest budget of an Archive.
type budget struct {
	l         Limits
	instances chan struct{}
	commits   chan struct{}
	headers   *semaphore.Weighted

	mu    sync.Mutex
	bytes int64
	freed chan struct{} // closed and replaced whenever bytes drop

	headerBytes atomic.Int64
	refused     atomic.Int64
	mostBytes   atomic.Int64
}

func newBudget(l Limits) *budget {
	l = l.withDefaults()
	return &budget{
		l:         l,
		instances: make(chan struct{}, l.Instances),
		commits:   make(chan struct{}, l.Commits),
		headers:   semaphore.NewWeighted(l.HeaderBytes),
		freed:     make(chan struct{}),
	}
}

// budget returns the archive's budget, made from a.Limits on first use.
func (a *Archive) budget() *budget {
	a.budgetOnce.Do(func() { a.ingest = newBudget(a.Limits) })
	return a.ingest
}

// IngestStats reports the ingest budget in use.
func (a *Archive) IngestStats() IngestStats {
	b := a.budget()
	b.mu.Lock()
	bytes := b.bytes
	b.mu.Unlock()
	return IngestStats{
		Instances:   len(b.instances),
		Bytes:       bytes,
		HeaderBytes: b.headerBytes.Load(),
		Commits:     len(b.commits),
		Refused:     b.refused.Load(),
		MostBytes:   b.mostBytes.Load(),
	}
}

// busy counts a refusal and returns ErrBusy with what was short.
func (b *budget) busy(what string) error {
	b.refused.Add(1)
	return fmt.Errorf("storage: store: %w (%s)", ErrBusy, what)
}

// admit waits until an instance may start: an instance slot is free and
// the bytes in flight are under the threshold. wait <= 0: no waiting.
func (b *budget) admit(ctx context.Context, wait time.Duration) error {
	// The common case, room at once, takes no timer.
	b.mu.Lock()
	under := b.bytes < b.l.Bytes
	b.mu.Unlock()
	if under {
		select {
		case b.instances <- struct{}{}:
			return nil
		default:
		}
	}
	var timeout <-chan time.Time
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		timeout = t.C
	}
	for {
		b.mu.Lock()
		under, freed := b.bytes < b.l.Bytes, b.freed
		b.mu.Unlock()
		if under {
			break
		}
		if timeout == nil {
			return b.busy("bytes in flight")
		}
		select {
		case <-freed:
		case <-ctx.Done():
			return fmt.Errorf("storage: store: %w", ctx.Err())
		case <-timeout:
			return b.busy("bytes in flight")
		}
	}
	select {
	case b.instances <- struct{}{}:
		return nil
	default:
	}
	if timeout == nil {
		return b.busy("instances in flight")
	}
	select {
	case b.instances <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("storage: store: %w", ctx.Err())
	case <-timeout:
		return b.busy("instances in flight")
	}
}

func (b *budget) leave() { <-b.instances }

// addBytes counts n received (n > 0) or released (n < 0) bytes.
func (b *budget) addBytes(n int64) {
	b.mu.Lock()
	b.bytes += n
	cur := b.bytes
	if n < 0 {
		close(b.freed)
		b.freed = make(chan struct{})
	}
	b.mu.Unlock()
	for {
		m := b.mostBytes.Load()
		if cur <= m || b.mostBytes.CompareAndSwap(m, cur) {
			return
		}
	}
}

// holdHeader reserves n header bytes (capped at the whole budget, so one
// huge header waits for an empty budget rather than forever).
func (b *budget) holdHeader(ctx context.Context, n int64) (int64, error) {
	n = min(max(n, 1), b.l.HeaderBytes)
	if b.headers.TryAcquire(n) {
		b.headerBytes.Add(n)
		return n, nil
	}
	wctx, cancel := context.WithTimeout(ctx, b.l.Wait)
	defer cancel()
	if err := b.headers.Acquire(wctx, n); err != nil {
		if ctx.Err() != nil {
			return 0, fmt.Errorf("storage: store: %w", ctx.Err())
		}
		return 0, b.busy("parsed header bytes")
	}
	b.headerBytes.Add(n)
	return n, nil
}

func (b *budget) releaseHeader(n int64) {
	if n > 0 {
		b.headerBytes.Add(-n)
		b.headers.Release(n)
	}
}

// commitSlot waits for one of the server's commit slots.
func (b *budget) commitSlot(ctx context.Context) error {
	select {
	case b.commits <- struct{}{}:
		return nil
	default:
	}
	t := time.NewTimer(b.l.Wait)
	defer t.Stop()
	select {
	case b.commits <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("storage: store: %w", ctx.Err())
	case <-t.C:
		return b.busy("commit slots")
	}
}

func (b *budget) commitDone() { <-b.commits }

// countingReader charges the bytes read from r to the budget; release
// gives back everything it charged.
type countingReader struct {
	r io.Reader
	b *budget
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 {
		c.n += int64(n)
		c.b.addBytes(int64(n))
	}
	return n, err
}

func (c *countingReader) release() {
	if c.n > 0 {
		c.b.addBytes(-c.n)
		c.n = 0
	}
}

// Item is one instance a door offers to the archive.
type Item struct {
	// Body is the Part 10 stream (preamble, meta group, data set). It is
	// read to its end, or until it fails.
	Body io.Reader
	// Study, when set, is the Study Instance UID the instance must have
	// (a STOW to /studies/{study}); another fails with ErrConflict.
	Study string
	// Err: the door already refused the item (e.g. a STOW part that is
	// not application/dicom). Body is not read; Err is its outcome.
	Err error
}

// Source yields the instances of one ingest: the parts of a STOW
// request, the C-STOREs of an association, the files of an import.
type Source interface {
	// Next returns the next item, valid until the following call; io.EOF
	// when there is none. Any other error ends the ingest: the source
	// broke off (a malformed multipart body, a peer that went away).
	Next(ctx context.Context) (Item, error)
}

// Outcome is what became of one item.
type Outcome struct {
	Result StoreResult
	Err    error
}

// StoreAll is the archive's one ingest pipeline: it stores every item of
// src, reading each one (into its blob, hashed and parsed in one pass)
// while earlier ones commit, within the server-wide budget of Limits,
// and calls report once per item, in the order src gave them, as soon as
// that item and every item before it are done. One item's failure never
// touches the others. Items with the same SOP Instance UID commit in
// source order, so which one a replace keeps, or which one is refused as
// a conflict, does not depend on scheduling.
//
// StoreAll returns nil when src ended with io.EOF; src's error when it
// broke off; ErrBusy (wrapped) when the budget stayed full and the rest
// of src was left unread; the ctx error when ctx ended. In every case
// report has been called for every item read, and every commit started
// has finished.
func (a *Archive) StoreAll(ctx context.Context, src Source, report func(Outcome)) error {
	b := a.budget()
	type slot struct {
		out  Outcome
		done chan struct{}
	}
	var (
		queue   []*slot // not yet reported, in source order
		wg      sync.WaitGroup
		pending = make(chan struct{}, b.l.PerSource)
		lastSOP = map[string]*slot{} // the latest item per SOP Instance UID
	)
	flush := func(wait bool) {
		for len(queue) > 0 {
			s := queue[0]
			if !wait {
				select {
				case <-s.done:
				default:
					return
				}
			}
			<-s.done
			report(s.out)
			queue[0] = nil
			queue = queue[1:]
		}
	}
	defer func() {
		wg.Wait()
		flush(true)
	}()
	finished := func(out Outcome) {
		s := &slot{out: out, done: make(chan struct{})}
		close(s.done)
		queue = append(queue, s)
	}
	for {
		flush(false)
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("storage: store: %w", err)
		}
		it, err := src.Next(ctx)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if it.Err != nil {
			finished(Outcome{Err: it.Err})
			continue
		}
		p, release, err := a.read(ctx, b, it)
		if err != nil {
			finished(Outcome{Result: StoreResult{Instance: p.Instance()}, Err: err})
			if errors.Is(err, ErrBusy) {
				return err // the rest is not read: the sender retries later
			}
			continue
		}
		select {
		case pending <- struct{}{}:
		case <-ctx.Done():
			p.Abort()
			release()
			finished(Outcome{Result: StoreResult{Instance: p.Instance()}, Err: fmt.Errorf("storage: store: %w", ctx.Err())})
			return fmt.Errorf("storage: store: %w", ctx.Err())
		}
		s := &slot{done: make(chan struct{})}
		queue = append(queue, s)
		before := lastSOP[p.ident.SOPInstanceUID]
		lastSOP[p.ident.SOPInstanceUID] = s
		wg.Go(func() {
			defer func() {
				// A panic here is off the caller's goroutine, out of reach
				// of any server's recovery: fail the item, not the process.
				if v := recover(); v != nil {
					a.logger().Error("storage: commit panicked", "panic", v, "stack", string(debug.Stack()))
					p.Abort()
					s.out = Outcome{Result: StoreResult{Instance: p.Instance()}, Err: fmt.Errorf("storage: store: commit panicked: %v", v)}
				}
				release()
				<-pending
				close(s.done)
			}()
			if before != nil {
				<-before.done
			}
			s.out = a.commit(ctx, b, p)
		})
	}
}

// Store ingests one Part 10 instance from r through the pipeline of
// StoreAll: the bytes go to a new blob and the hash while dcm.Parse
// reads them; the blob is committed (durable) first, then the index row,
// which is the commit point. A failure leaves no row, and no blob unless
// the index's answer was lost (then Sweep removes it if no row refers to
// it). Metadata rebuilds and cache invalidation follow a change.
//
// Errors: dcm.ErrInvalid for malformed input; ErrConflict when wantStudy
// is set and differs from the instance's study, or the SOP Instance UID is
// known under another study/series; ErrExists for different bytes under
// a known UID (unless ReplaceOnConflict); ErrBusy when the ingest budget
// stayed full; the body's own read error (e.g. *http.MaxBytesError) when
// reading it failed.
//
// On failure, StoreResult.Instance still names the instance as far as it
// was read (SOPClassUID, SOPInstanceUID, StudyInstanceUID,
// SeriesInstanceUID; those seen before a parse error, see
// dcm.PartialError), so a response can reference it.
func (a *Archive) Store(ctx context.Context, r io.Reader, wantStudy string) (StoreResult, error) {
	b := a.budget()
	p, release, err := a.read(ctx, b, Item{Body: r, Study: wantStudy})
	if err != nil {
		return StoreResult{Instance: p.Instance()}, err
	}
	defer release()
	out := a.commit(ctx, b, p)
	return out.Result, out.Err
}

// read admits one item into the budget and reads it (Ingest). On success
// the caller commits or aborts p, then calls release; on error everything
// is already released and p names what was read.
func (a *Archive) read(ctx context.Context, b *budget, it Item) (p *Pending, release func(), err error) {
	if err := b.admit(ctx, b.l.Wait); err != nil {
		return &Pending{}, nil, err
	}
	body := &countingReader{r: it.Body, b: b}
	var header int64
	rel := func() {
		b.releaseHeader(header)
		body.release()
		b.leave()
	}
	defer func() {
		if v := recover(); v != nil { // a parser bug meeting input nobody foresaw
			a.logger().Error("storage: ingest panicked", "panic", v, "stack", string(debug.Stack()))
			if p != nil {
				p.Abort()
			}
			p, err = &Pending{}, fmt.Errorf("storage: store: ingest panicked: %v", v)
		}
		if err != nil {
			rel()
		}
	}()
	p, err = a.Ingest(ctx, body, it.Study)
	if err != nil {
		return p, nil, err
	}
	if header, err = b.holdHeader(ctx, p.h.RetainedBytes); err != nil {
		p.Abort()
		return p, nil, err
	}
	return p, rel, nil
}

// commit takes a commit slot, commits p and does what follows a change:
// the study's metadata documents are rebuilt, the cached renderings of
// replaced bytes dropped.
func (a *Archive) commit(ctx context.Context, b *budget, p *Pending) Outcome {
	if err := b.commitSlot(ctx); err != nil {
		p.Abort()
		return Outcome{Result: StoreResult{Instance: p.Instance()}, Err: err}
	}
	res, err := func() (StoreResult, error) {
		defer b.commitDone() // also when Commit panics
		return p.Commit(ctx)
	}()
	if err != nil {
		return Outcome{Result: res, Err: err}
	}
	if !res.Duplicate {
		a.noteChanged(res.Instance.StudyInstanceUID)
	}
	if res.Replaced {
		a.purgeDerived(ctx, res.ReplacedSHA256)
	}
	return Outcome{Result: res}
}
