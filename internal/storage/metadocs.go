package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/klauspost/compress/gzip"
	"golang.org/x/sync/singleflight"
)

// Precomputed metadata documents (DESIGN.md decision 4).
//
// A study's metadata document is the JSON array of the DICOM JSON
// objects of its instances, in Index.Instances order; a series document
// likewise. Viewers load them first, so the archive keeps them ready in
// the index cache (Index.CachedMetadata), gzip-compressed, under the keys
// "study" and "series/<uid>" and the study version they were built from.
//
// The documents hold no base URL: where an instance's BulkDataURI starts,
// they keep the byte BulkPlaceholder followed by the instance's path
// below the DICOMweb root, "\x01/studies/S/series/X/instances/I/bulk/…".
// The serving layer replaces the placeholder with its root URL. So the
// index holds one document per study and per series, whatever the
// requests' Host headers, and every door (STOW-RS, DIMSE, an import)
// keeps them current: after a store, replace or delete, noteChanged
// schedules a rebuild in the background.

// DefaultMetadataRebuildDelay is how long a study must stay quiet (no
// store, replace or delete touching it) before its metadata documents
// are rebuilt, when Archive.MetadataRebuildDelay is zero.
const DefaultMetadataRebuildDelay = 300 * time.Millisecond

// rebuildMaxWait bounds the debounce: a study that keeps changing (a long
// ingest) is still rebuilt at least this often.
const rebuildMaxWait = 10 * time.Second

// rebuildWorkers bounds the rebuilds running at once (all studies).
const rebuildWorkers = 1

// MetadataStats counts the archive's metadata document work since it was
// first used (for tests and metrics).
type MetadataStats struct {
	// Built: documents built from instance rows by MetadataDocument,
	// because the index had none for the current version.
	Built int64
	// Rebuilt: background rebuilds (each builds a study's document and
	// all its series documents in one pass).
	Rebuilt int64
	// Pending: studies with a background rebuild scheduled or running.
	Pending int
}

// metaDocs is the Archive's metadata document state, created on first
// use so that Archive literals need no constructor.
type metaDocs struct {
	flight  singleflight.Group
	built   atomic.Int64
	rebuilt atomic.Int64
	r       *rebuilder // nil: no background rebuilds (delay < 0)
}

func (a *Archive) metaDocs() *metaDocs {
	a.metaOnce.Do(func() {
		m := &metaDocs{}
		if d := a.MetadataRebuildDelay; d >= 0 {
			if d == 0 {
				d = DefaultMetadataRebuildDelay
			}
			m.r = newRebuilder(a, d)
		}
		a.meta = m
	})
	return a.meta
}

// noteChanged tells the archive's background work that instances of the
// studies were stored, replaced or deleted: their precomputed metadata
// documents are rebuilt.
func (a *Archive) noteChanged(studies ...string) {
	r := a.metaDocs().r
	if r == nil {
		return
	}
	for _, s := range studies {
		if s != "" {
			r.schedule(s)
		}
	}
}

// Close stops the archive's background work and waits for it: pending
// metadata rebuilds are dropped (the documents are then built on their
// first request), running ones cancelled. Later changes schedule nothing.
// Close does not close Blobs or Index; call it after the servers that
// use the archive have stopped, before closing the index.
func (a *Archive) Close() error {
	if r := a.metaDocs().r; r != nil {
		r.close()
	}
	return nil
}

// MetadataStats reports the metadata document counters.
func (a *Archive) MetadataStats() MetadataStats {
	m := a.metaDocs()
	s := MetadataStats{Built: m.built.Load(), Rebuilt: m.rebuilt.Load()}
	if m.r != nil {
		m.r.mu.Lock()
		s.Pending = len(m.r.pending)
		m.r.mu.Unlock()
	}
	return s
}

// metadataDocKey is the Index.CachedMetadata key of the study's document
// (series == "") or of a series document.
func metadataDocKey(series string) string {
	if series == "" {
		return "study"
	}
	return "series/" + series
}

type metadataDoc struct {
	gz    []byte
	built bool
}

// MetadataDocument returns the gzip-compressed, base-free metadata
// document (see the top of metadocs.go) of a study (series == "") or of
// one of its series, for the study at version, which the caller read
// with Index.StudyVersion before asking. It is the document the index
// keeps for that version, or, when there is none, one built from the
// instance rows and kept. Rows are read after the version, so a document
// is never older than version (at worst newer, and then the index drops
// it instead of keeping it under a version it does not match).
//
// built reports that the document was built from instance rows, by this
// call or by a concurrent one for the same document that it waited for:
// concurrent calls build a document once. Unknown study or series (or
// one without instances): ErrNotFound.
func (a *Archive) MetadataDocument(ctx context.Context, study, series string, version int64) (gz []byte, built bool, err error) {
	m := a.metaDocs()
	key := metadataDocKey(series)
	// The build is shared by every caller waiting for it, so it runs
	// without any one caller's cancellation; a caller that gives up
	// stops waiting, and the document is still kept for the next.
	ch := m.flight.DoChan(study+"\x00"+key+"\x00"+strconv.FormatInt(version, 10), func() (any, error) {
		ctx := context.WithoutCancel(ctx)
		doc, err := a.Index.CachedMetadata(ctx, study, key, version)
		if err == nil && len(doc) > 0 {
			return metadataDoc{gz: doc}, nil
		}
		if err != nil && !errors.Is(err, ErrNotFound) {
			a.logger().Warn("storage: metadata cache read failed; building the document", "err", err)
		}
		m.built.Add(1)
		doc, err = a.buildMetadataDoc(ctx, study, series)
		if err != nil {
			return nil, err
		}
		if err := a.Index.PutCachedMetadata(ctx, study, key, version, doc); err != nil {
			a.logger().Warn("storage: metadata cache write failed", "err", err)
		}
		return metadataDoc{gz: doc, built: true}, nil
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return nil, false, res.Err
		}
		d := res.Val.(metadataDoc)
		return d.gz, d.built, nil
	case <-ctx.Done():
		return nil, false, ctx.Err()
	}
}

// eachMetadata calls fn with the metadata of the study's (series')
// instances in order: streamed when the index can (MetadataLister), else
// from Index.Instances.
func (a *Archive) eachMetadata(ctx context.Context, study, series string, fn func(series, sop string, md []byte) error) error {
	if ml, ok := a.Index.(MetadataLister); ok {
		return ml.EachMetadata(ctx, study, series, fn)
	}
	insts, err := a.Index.Instances(ctx, study, series)
	if err != nil {
		return err
	}
	for _, in := range insts {
		if err := fn(in.SeriesInstanceUID, in.SOPInstanceUID, in.Metadata); err != nil {
			return err
		}
	}
	return nil
}

// buildMetadataDoc builds the base-free study (series == "") or series
// document from the instance rows.
func (a *Archive) buildMetadataDoc(ctx context.Context, study, series string) ([]byte, error) {
	d := newDocWriter()
	defer d.abort()
	var scratch []byte
	err := a.eachMetadata(ctx, study, series, func(se, sop string, md []byte) error {
		scratch = d.add(scratch, study, se, sop, md)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("storage: metadata of %s: %w", study, err)
	}
	if d.n == 0 {
		return nil, fmt.Errorf("storage: metadata of %s: no instances: %w", study, ErrNotFound)
	}
	return d.finish(), nil
}

// buildStudyMetadataDocs builds, in one pass over the study's instances,
// the study document and every series document, and keeps them under
// version (PutCachedMetadata drops them if the study changed since).
func (a *Archive) buildStudyMetadataDocs(ctx context.Context, study string, version int64) error {
	all := newDocWriter()
	defer all.abort()
	var (
		cur       *docWriter
		curSeries string
		scratch   []byte
	)
	defer func() {
		if cur != nil {
			cur.abort()
		}
	}()
	flush := func() error {
		if cur == nil {
			return nil
		}
		gz := cur.finish()
		cur = nil
		return a.Index.PutCachedMetadata(ctx, study, metadataDocKey(curSeries), version, gz)
	}
	err := a.eachMetadata(ctx, study, "", func(se, sop string, md []byte) error {
		if cur == nil || se != curSeries {
			if err := flush(); err != nil {
				return err
			}
			cur, curSeries = newDocWriter(), se
		}
		scratch = all.add(scratch, study, se, sop, md)
		scratch = cur.add(scratch, study, se, sop, md)
		return ctx.Err()
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		return err
	}
	return a.Index.PutCachedMetadata(ctx, study, metadataDocKey(""), version, all.finish())
}

// docWriter streams one metadata document (a JSON array of instance
// objects) into a gzip stream.
type docWriter struct {
	gz bytes.Buffer
	zw *gzip.Writer
	n  int
}

var gzipWriters = sync.Pool{New: func() any {
	zw, _ := gzip.NewWriterLevel(io.Discard, gzip.BestSpeed)
	return zw
}}

func newDocWriter() *docWriter {
	d := &docWriter{zw: gzipWriters.Get().(*gzip.Writer)}
	d.gz.Grow(64 << 10)
	d.zw.Reset(&d.gz)
	d.zw.Write([]byte{'['})
	return d
}

// add appends one instance object with its placeholders followed by the
// instance's path; scratch is reused between calls.
func (d *docWriter) add(scratch []byte, study, series, sop string, metadata []byte) []byte {
	scratch = scratch[:0]
	if d.n > 0 {
		scratch = append(scratch, ',')
	}
	d.n++
	if len(metadata) == 0 {
		scratch = append(scratch, "{}"...)
	} else {
		scratch = appendBaseFree(scratch, metadata, study, series, sop)
	}
	d.zw.Write(scratch) // writes to a bytes.Buffer: never fails
	return scratch
}

// finish ends the array and returns the gzip bytes.
func (d *docWriter) finish() []byte {
	d.zw.Write([]byte{']'})
	d.zw.Close()
	d.abort()
	return d.gz.Bytes()
}

// abort returns the gzip writer to the pool (after finish, or a failed
// build).
func (d *docWriter) abort() {
	if d.zw != nil {
		d.zw.Reset(io.Discard)
		gzipWriters.Put(d.zw)
		d.zw = nil
	}
}

// appendBaseFree appends an instance's metadata (Instance.Metadata) to
// dst with every BulkPlaceholder followed by the instance's path,
// "/studies/S/series/X/instances/I" (JSON-escaped), so that the
// placeholder now stands for the DICOMweb root URL alone.
func appendBaseFree(dst, md []byte, study, series, sop string) []byte {
	ph := BulkPlaceholder[0]
	var path []byte
	for {
		i := bytes.IndexByte(md, ph)
		if i < 0 {
			return append(dst, md...)
		}
		if path == nil {
			path = append(path, ph)
			for _, s := range [...]string{"/studies/", study, "/series/", series, "/instances/", sop} {
				path = appendJSONText(path, s)
			}
		}
		dst = append(dst, md[:i]...)
		dst = append(dst, path...)
		md = md[i+1:]
	}
}

// appendJSONText appends s as the content of a JSON string. UIDs are
// digits and dots; the escaping keeps any other value from ending the
// string or adding a placeholder byte.
func appendJSONText(dst []byte, s string) []byte {
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				dst = append(dst, `\uFFFD`...)
			} else {
				dst = append(dst, s[i:i+size]...)
			}
			i += size
			continue
		}
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c < 0x20 || c == 0x7F:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
		default:
			dst = append(dst, c)
		}
		i++
	}
	return dst
}

// rebuilder keeps the metadata documents warm: after a change,
// schedule(study) (debounced per study) rebuilds the study's documents so
// that the first viewer request finds them. At most one rebuild per study
// runs at a time, at most rebuildWorkers overall; changes during a
// rebuild schedule one more. Versions guard correctness: a document
// built from rows that changed meanwhile is dropped by PutCachedMetadata,
// and never served.
type rebuilder struct {
	a     *Archive
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
	first   time.Time   // first schedule since the last rebuild started
	timer   *time.Timer // nil while running
	running bool
	again   bool // scheduled while running
}

func newRebuilder(a *Archive, delay time.Duration) *rebuilder {
	ctx, cancel := context.WithCancel(context.Background())
	return &rebuilder{a: a, delay: delay, ctx: ctx, cancel: cancel,
		sem: make(chan struct{}, rebuildWorkers), pending: map[string]*pendingRebuild{}}
}

// schedule asks for a rebuild of study's documents once the study has
// been quiet for the delay (or rebuildMaxWait after the first request).
func (r *rebuilder) schedule(study string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	now := time.Now()
	p := r.pending[study]
	if p == nil {
		p = &pendingRebuild{first: now}
		r.pending[study] = p
	}
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
	r.wg.Add(1)
	r.mu.Unlock()
	defer r.wg.Done()

	select {
	case r.sem <- struct{}{}:
		if err := r.rebuild(study); err != nil && r.ctx.Err() == nil && !errors.Is(err, ErrNotFound) {
			r.a.logger().Warn("storage: background metadata rebuild failed", "study", study, "err", err)
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

func (r *rebuilder) rebuild(study string) error {
	version, err := r.a.Index.StudyVersion(r.ctx, study)
	if err != nil {
		return err // ErrNotFound: the study was deleted
	}
	r.a.metaDocs().rebuilt.Add(1)
	return r.a.buildStudyMetadataDocs(r.ctx, study, version)
}

// close stops pending timers, cancels running rebuilds and waits for
// them; it may be called more than once.
func (r *rebuilder) close() {
	r.mu.Lock()
	r.closed = true
	for study, p := range r.pending {
		if p.timer != nil {
			p.timer.Stop()
		}
		if !p.running { // a running one removes itself when it ends
			delete(r.pending, study)
		}
	}
	r.mu.Unlock()
	r.cancel()
	r.wg.Wait()
}
