package dicomweb

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/cloudpacs/pacs/internal/storage"
)

// DefaultMetadataRebuildDelay is how long a study must stay quiet (no
// STOW or DELETE touching it) before its metadata documents are rebuilt
// in the background, when Config leaves MetadataRebuildDelay at zero.
const DefaultMetadataRebuildDelay = 300 * time.Millisecond

// rebuildMaxWait bounds the debounce: a study that keeps changing (a long
// ingest) is still rebuilt at least this often.
const rebuildMaxWait = 10 * time.Second

// rebuildWorkers bounds the rebuilds running at once (all studies).
const rebuildWorkers = 1

// rebuilder keeps study and series metadata documents warm: after a
// change, schedule(study, base) (debounced per study) rebuilds the study's
// documents for base so that the first viewer request is a cache hit.
// At most one rebuild per study runs at a time, at most rebuildWorkers
// overall; changes during a rebuild schedule one more. Versions guard
// correctness: a document built from rows that changed meanwhile is
// dropped by PutCachedMetadata, and never served.
type rebuilder struct {
	h     *Handler
	delay time.Duration

	ctx    context.Context // cancelled by close
	cancel context.CancelFunc
	sem    chan struct{}
	wg     sync.WaitGroup

	mu      sync.Mutex
	closed  bool
	pending map[string]*pendingRebuild // by study UID
}

type pendingRebuild struct {
	bases   map[string]struct{}
	first   time.Time   // first schedule since the last rebuild started
	timer   *time.Timer // nil while running
	running bool
	again   bool // scheduled while running
}

func newRebuilder(h *Handler, delay time.Duration) *rebuilder {
	ctx, cancel := context.WithCancel(context.Background())
	return &rebuilder{h: h, delay: delay, ctx: ctx, cancel: cancel,
		sem: make(chan struct{}, rebuildWorkers), pending: map[string]*pendingRebuild{}}
}

// schedule asks for a rebuild of study's metadata for base once the study
// has been quiet for the delay.
func (r *rebuilder) schedule(study, base string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	now := time.Now()
	p := r.pending[study]
	if p == nil {
		p = &pendingRebuild{bases: map[string]struct{}{}, first: now}
		r.pending[study] = p
	}
	p.bases[base] = struct{}{}
	switch {
	case p.running:
		p.again = true
	case p.timer == nil:
		p.first = now
		p.timer = time.AfterFunc(r.delay, func() { r.run(study) })
	default:
		d := r.delay
		if late := p.first.Add(rebuildMaxWait).Sub(now); late < d {
			d = max(late, 0)
		}
		p.timer.Reset(d)
	}
}

// run rebuilds study (on a timer's goroutine).
func (r *rebuilder) run(study string) {
	r.mu.Lock()
	p := r.pending[study]
	if r.closed || p == nil || p.running {
		r.mu.Unlock()
		return
	}
	p.running, p.timer = true, nil
	bases := p.bases
	p.bases = map[string]struct{}{}
	r.wg.Add(1)
	r.mu.Unlock()
	defer r.wg.Done()

	select {
	case r.sem <- struct{}{}:
		for base := range bases {
			if err := r.rebuild(study, base); err != nil && r.ctx.Err() == nil && !errors.Is(err, storage.ErrNotFound) {
				r.h.log.Warn("metadata: background rebuild failed", "study", study, "err", err)
			}
		}
		<-r.sem
	case <-r.ctx.Done():
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	p.running = false
	if p.again && !r.closed {
		p.again = false
		p.first = time.Now()
		p.timer = time.AfterFunc(r.delay, func() { r.run(study) })
		return
	}
	delete(r.pending, study)
}

func (r *rebuilder) rebuild(study, base string) error {
	ctx := r.ctx
	version, err := r.h.index.StudyVersion(ctx, study)
	if err != nil {
		return err
	}
	r.h.metadataRebuilds.Add(1)
	return r.h.buildStudyMetadata(ctx, study, base, version)
}

// close stops pending timers, cancels running rebuilds and waits for them.
func (r *rebuilder) close() {
	r.mu.Lock()
	r.closed = true
	for _, p := range r.pending {
		if p.timer != nil {
			p.timer.Stop()
		}
	}
	r.mu.Unlock()
	r.cancel()
	r.wg.Wait()
}
