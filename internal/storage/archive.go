package storage

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cloudpacs/pacs/internal/dcm"
)

// Archive holds the store, retrieve and delete logic shared by the
// DICOMweb handlers and a DIMSE listener.
type Archive struct {
	Blobs BlobStore
	Index Index
	// ReplaceOnConflict: a known SOP Instance UID with different bytes
	// replaces the stored instance; otherwise Store fails with ErrExists.
	ReplaceOnConflict bool
	Logger            *slog.Logger     // slog.Default() when nil
	Now               func() time.Time // time.Now when nil
	// Limits is the server-wide ingest budget (read on first use; zero
	// fields take DefaultLimits).
	Limits Limits

	budgetOnce sync.Once
	ingest     *budget

	// MetadataRebuildDelay: after a store, replace or delete, a study's
	// metadata documents are rebuilt in the background once the study
	// has been quiet this long (0: DefaultMetadataRebuildDelay; < 0:
	// never, they are then built on their first request). Read on first
	// use; see metadocs.go.
	MetadataRebuildDelay time.Duration

	metaOnce sync.Once
	meta     *metaDocs

	reparses atomic.Int64 // HeaderReparses

	// LocationCache is the number of instance locations (index rows
	// without metadata) kept in memory for the frame and instance
	// retrieves; 0: none. Set it only when every change of the index
	// goes through this archive (one process over an embedded index):
	// a change made elsewhere is not seen. Read on first use; see
	// locations.go.
	LocationCache int

	locOnce sync.Once
	locs    *locations
}

// StoreResult tells what Store did.
type StoreResult struct {
	Instance  Instance
	Duplicate bool // the same bytes were already stored; nothing changed
	Replaced  bool // different bytes under the same UID replaced the old instance
	// ReplacedSHA256 is the SHA-256 of the replaced instance, when Replaced.
	ReplacedSHA256 string
	// Warning, when set, says in words what is wrong with an instance
	// that was stored all the same (the archive keeps what it was sent),
	// e.g. pixel data that contradicts its attributes.
	Warning string
}

// ErrChecksum marks a stored object whose bytes no longer hash to the
// SHA-256 recorded at ingest (Verify).
var ErrChecksum = errors.New("checksum mismatch")

func (a *Archive) logger() *slog.Logger {
	if a.Logger != nil {
		return a.Logger
	}
	return slog.Default()
}

func (a *Archive) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

// errReader and errWriter remember the first error of the body and of the
// blob writer, so Store can tell them from malformed DICOM: the parser
// sees all of them as read errors.
type errReader struct {
	r   io.Reader
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF && e.err == nil {
		e.err = err
	}
	return n, err
}

type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	if err != nil {
		e.err = err
	}
	return n, err
}

// Pending is an instance read by Ingest and not yet committed: its bytes
// are in an uncommitted blob writer (not visible, not durable), its
// header parsed and its hash known.
type Pending struct {
	a     *Archive
	w     BlobWriter // nil once committed or discarded
	key   string
	h     *dcm.Header
	ident Instance
	sum   []byte
	err   error // Ingest's error
	done  bool
	// warning: stored all the same, but something is wrong (StoreResult.Warning)
	warning string
}

// Ingest is the first half of Store: it reads r to the end into a new
// blob writer, hashing and parsing on the way, and checks the instance,
// but makes nothing durable or visible; (*Pending).Commit does. A
// caller may read the next instance while an earlier Pending commits,
// so that the fsyncs and the index write of one overlap with the
// reading of the next. Memory stays what the blob writer holds.
//
// Ingest always returns a non-nil *Pending. On error (Store's input
// errors: malformed DICOM, the body's read error, a study that differs
// from wantStudy), the data is already discarded, Instance names the
// instance as far as it was read, and Commit returns the same error.
// Otherwise the caller must call Commit or Abort.
func (a *Archive) Ingest(ctx context.Context, r io.Reader, wantStudy string) (*Pending, error) {
	p := &Pending{a: a, key: newInstanceKey()}
	fail := func(err error) (*Pending, error) {
		p.discard()
		p.err = err
		return p, err
	}
	w, err := a.Blobs.Create(ctx, p.key)
	if err != nil {
		return fail(fmt.Errorf("storage: store: %w", err))
	}
	p.w = w
	sum := sha256.New()
	body := &errReader{r: r}
	sink := &errWriter{w: w}
	// The parser's reads arrive in the pieces the request body gives
	// (4 KiB from a multipart part); collected here, a small instance
	// reaches the blob store in one or two writes instead of ten.
	bw := blobBufs.Get().(*bufio.Writer)
	bw.Reset(sink)
	h, err := dcm.Parse(io.TeeReader(body, io.MultiWriter(bw, sum)))
	_ = bw.Flush() // a failure is in sink.err
	bw.Reset(nil)
	blobBufs.Put(bw)
	if h == nil {
		var pe *dcm.PartialError
		if errors.As(err, &pe) {
			h = pe.Header
		}
	}
	p.ident = identity(h)
	switch {
	case sink.err != nil:
		return fail(fmt.Errorf("storage: store: write blob: %w", sink.err))
	case body.err != nil:
		return fail(fmt.Errorf("storage: store: read: %w", body.err))
	case err != nil:
		if !errors.Is(err, dcm.ErrInvalid) {
			err = fmt.Errorf("%w: %w", dcm.ErrInvalid, err)
		}
		return fail(fmt.Errorf("storage: store: %w", err))
	case h.SOPInstanceUID == "" || h.StudyInstanceUID == "" || h.SeriesInstanceUID == "":
		return fail(fmt.Errorf("storage: store: %w: missing study, series or SOP instance UID", dcm.ErrInvalid))
	case wantStudy != "" && wantStudy != h.StudyInstanceUID:
		return fail(fmt.Errorf("storage: store: %w: instance %s belongs to study %s, not %s",
			ErrConflict, h.SOPInstanceUID, h.StudyInstanceUID, wantStudy))
	}
	p.h, p.sum = h, sum.Sum(nil)
	p.warning = pixelDataProblem(h)
	return p, nil
}

// Instance names the pending instance (UIDs, SOP class and transfer
// syntax only), as far as Ingest read it.
func (p *Pending) Instance() Instance { return p.ident }

// Commit is the second half of Store: it commits the blob (durable and
// visible), then the index row, the commit point, and on failure removes
// what it wrote. It may run on another goroutine than Ingest; a Pending
// is committed once. Errors and StoreResult are those of Store.
func (p *Pending) Commit(ctx context.Context) (StoreResult, error) {
	failed := StoreResult{Instance: p.ident}
	switch {
	case p.err != nil:
		return failed, p.err
	case p.done:
		return failed, fmt.Errorf("storage: store %s: pending instance already committed or aborted", p.ident.SOPInstanceUID)
	}
	p.done = true
	a, w := p.a, p.w
	p.w = nil
	info, err := w.Commit()
	if err != nil {
		_ = w.Abort()
		return failed, fmt.Errorf("storage: store: %w", err)
	}
	inst := newInstance(p.h, info, hex.EncodeToString(p.sum), a.now())
	p.h = nil
	res, err := a.Index.PutInstance(ctx, inst, a.ReplaceOnConflict)
	a.forgetLocations() // also after an error: the outcome may be unknown
	switch {
	case err == nil && res.Duplicate, err != nil && notRecorded(err):
		a.deleteBlob(ctx, p.key) // unreferenced; Sweep catches a miss
	case err != nil:
		// The index's answer is unknown (a connection reset during
		// COMMIT, a cancelled wait): the row may exist. Deleting the blob
		// could leave a row without its data; Sweep removes the blob
		// later if no row refers to it.
		a.logger().Warn("storage: index outcome unknown; blob kept for the sweep", "key", p.key, "err", err)
	}
	if err != nil {
		return failed, fmt.Errorf("storage: store %s: %w", inst.SOPInstanceUID, err)
	}
	out := StoreResult{Instance: res.Stored, Duplicate: res.Duplicate}
	if !res.Duplicate {
		out.Warning = p.warning
	}
	if res.ReplacedBlobKey != "" {
		out.Replaced, out.ReplacedSHA256 = true, res.ReplacedSHA256
		a.deleteBlob(ctx, res.ReplacedBlobKey)
	}
	return out, nil
}

// notRecorded reports an index error after which the index has
// definitely not recorded the instance: it refused it.
func notRecorded(err error) bool {
	return errors.Is(err, ErrExists) || errors.Is(err, ErrConflict) || errors.Is(err, dcm.ErrInvalid)
}

// Abort discards a pending instance that will not be committed. It is a
// no-op after Commit or after a failed Ingest, so `defer p.Abort()` is
// safe.
func (p *Pending) Abort() {
	p.done = true
	p.discard()
}

func (p *Pending) discard() {
	if p.w != nil {
		_ = p.w.Abort()
		p.w = nil
	}
	p.h = nil
}

// identity is the Instance that names h (UIDs only) in a failed
// StoreResult; the zero Instance when h is nil.
func identity(h *dcm.Header) Instance {
	if h == nil {
		return Instance{}
	}
	return Instance{
		StudyInstanceUID:  h.StudyInstanceUID,
		SeriesInstanceUID: h.SeriesInstanceUID,
		SOPInstanceUID:    h.SOPInstanceUID,
		SOPClassUID:       h.SOPClassUID,
		TransferSyntaxUID: h.TransferSyntaxUID,
	}
}

func (a *Archive) deleteBlob(ctx context.Context, key string) {
	if err := a.Blobs.Delete(context.WithoutCancel(ctx), key); err != nil {
		a.logger().Warn("storage: delete unreferenced blob; the sweep will retry", "key", key, "err", err)
	}
}

// newInstance maps a parsed header to its index row.
func newInstance(h *dcm.Header, info BlobInfo, sha string, now time.Time) *Instance {
	inst := &Instance{
		StudyInstanceUID:  h.StudyInstanceUID,
		SeriesInstanceUID: h.SeriesInstanceUID,
		SOPInstanceUID:    h.SOPInstanceUID,
		SOPClassUID:       h.SOPClassUID,
		TransferSyntaxUID: h.TransferSyntaxUID,
		BlobKey:           info.Key,
		Size:              info.Size,
		SHA256:            sha,
		Created:           now,
		Frames:            h.Frames,
		Encapsulated:      h.Encapsulated,
		Deflated:          h.Deflated,
		BigEndian:         h.BigEndian,
		DataSetOffset:     h.DataSetOffset,
		Bulk:              bulkOf(h),
		Study: StudyAttrs{
			PatientName:            h.Text(TagPatientName),
			PatientID:              h.Text(TagPatientID),
			IssuerOfPatientID:      h.Text(TagIssuerOfPatientID),
			PatientBirthDate:       h.Text(TagPatientBirthDate),
			PatientSex:             h.Text(TagPatientSex),
			StudyDate:              h.Text(TagStudyDate),
			StudyTime:              h.Text(TagStudyTime),
			AccessionNumber:        h.Text(TagAccessionNumber),
			StudyID:                h.Text(TagStudyID),
			ReferringPhysicianName: h.Text(TagReferringPhysicianName),
			StudyDescription:       h.Text(TagStudyDescription),
			SpecificCharacterSet:   h.Text(TagSpecificCharacterSet),
			TimezoneOffsetFromUTC:  h.Text(TagTimezoneOffsetFromUTC),
		},
		Series: SeriesAttrs{
			Modality:                        h.Text(TagModality),
			SeriesNumber:                    h.Text(TagSeriesNumber),
			SeriesDescription:               h.Text(TagSeriesDescription),
			SeriesDate:                      h.Text(TagSeriesDate),
			SeriesTime:                      h.Text(TagSeriesTime),
			BodyPartExamined:                h.Text(TagBodyPartExamined),
			PerformedProcedureStepStartDate: h.Text(TagPerformedProcedureStepStartDate),
			PerformedProcedureStepStartTime: h.Text(TagPerformedProcedureStepStartTime),
			ScheduledProcedureStepID:        itemText(h, TagRequestAttributesSequence, TagScheduledProcedureStepID),
			RequestedProcedureID:            itemText(h, TagRequestAttributesSequence, TagRequestedProcedureID),
			InstitutionName:                 h.Text(TagInstitutionName),
			StationName:                     h.Text(TagStationName),
			Manufacturer:                    h.Text(TagManufacturer),
		},
		Instance: InstanceAttrs{
			InstanceNumber:  h.Text(TagInstanceNumber),
			Rows:            h.Int(TagRows),
			Columns:         h.Int(TagColumns),
			BitsAllocated:   h.Int(TagBitsAllocated),
			NumberOfFrames:  h.Int(TagNumberOfFrames),
			ContentDate:     h.Text(TagContentDate),
			ContentTime:     h.Text(TagContentTime),
			AcquisitionDate: h.Text(TagAcquisitionDate),
		},
		Metadata: metadataJSON(h),
	}
	if inst.Instance.NumberOfFrames == 0 && len(h.Frames) > 0 {
		inst.Instance.NumberOfFrames = len(h.Frames)
	}
	return inst
}

// blobBufs buffer what Ingest writes to the blob store.
var blobBufs = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 64<<10) }}

// jsonBufs recycle the buffer the metadata JSON is built in: grown by
// appending, it left about twice its final size as garbage per instance.
var jsonBufs = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

// metadataJSON is h's DICOM JSON in a slice of its own size.
func metadataJSON(h *dcm.Header) []byte {
	bp := jsonBufs.Get().(*[]byte)
	out := dcm.AppendJSON((*bp)[:0], h)
	md := bytes.Clone(out)
	if cap(out) <= 1<<20 {
		*bp = out[:0]
		jsonBufs.Put(bp)
	}
	return md
}

// bulkOf lists h's bulk values, never nil: an empty list says "no bulk
// values", where nil (rows indexed before bulk spans were recorded) says
// "unknown".
func bulkOf(h *dcm.Header) []dcm.BulkRef {
	b := h.Bulk()
	if b == nil {
		b = []dcm.BulkRef{}
	}
	return b
}

// itemText returns a string attribute of the first item of a top-level
// sequence. These (SH) values are ASCII in practice; padding is trimmed.
func itemText(h *dcm.Header, seq, t dcm.Tag) string {
	if h.Dataset == nil {
		return ""
	}
	for _, e := range h.Dataset.Elements {
		if e.Tag != seq || len(e.Items) == 0 || e.Items[0] == nil {
			continue
		}
		for _, ie := range e.Items[0].Elements {
			if ie.Tag == t {
				return strings.TrimRight(string(ie.Value), " \x00")
			}
		}
	}
	return ""
}

// OpenInstance streams the stored Part 10 object as is.
func (a *Archive) OpenInstance(ctx context.Context, inst *Instance) (io.ReadCloser, error) {
	rc, err := a.Blobs.Open(ctx, inst.BlobKey, 0, -1)
	if err != nil {
		return nil, fmt.Errorf("storage: open instance %s: %w", inst.SOPInstanceUID, err)
	}
	return rc, nil
}

// OpenFrame streams frame n (1-based) of inst and returns its length.
// Native frames are one ranged read (byte-swapped on the fly for
// big-endian data with BitsAllocated > 8); encapsulated frames
// concatenate ranged reads of their fragments; deflated objects are
// inflated from the start of the data set up to the frame. Unknown frame:
// ErrNotFound.
func (a *Archive) OpenFrame(ctx context.Context, inst *Instance, n int) (io.ReadCloser, int64, error) {
	if n < 1 || n > len(inst.Frames) {
		return nil, 0, fmt.Errorf("storage: frame %d of %s (has %d): %w", n, inst.SOPInstanceUID, len(inst.Frames), ErrNotFound)
	}
	frame := inst.Frames[n-1]
	var length int64
	for _, s := range frame {
		length += s.Length
	}
	if inst.Deflated {
		rc, err := a.openDeflatedFrame(ctx, inst, frame)
		return rc, length, err
	}
	if len(frame) == 1 {
		rc, err := a.Blobs.Open(ctx, inst.BlobKey, frame[0].Offset, frame[0].Length)
		if err != nil {
			return nil, 0, fmt.Errorf("storage: frame %d of %s: %w", n, inst.SOPInstanceUID, err)
		}
		if inst.BigEndian && !inst.Encapsulated && inst.Instance.BitsAllocated > 8 {
			rc = newSwapReader(rc, inst.Instance.BitsAllocated/8)
		}
		return rc, length, nil
	}
	parts := make([]io.Reader, len(frame))
	lazy := make([]*lazyRange, len(frame))
	for i, s := range frame {
		lazy[i] = &lazyRange{ctx: ctx, blobs: a.Blobs, key: inst.BlobKey, span: s}
		parts[i] = lazy[i]
	}
	return &multiCloser{Reader: io.MultiReader(parts...), parts: lazy}, length, nil
}

// lazyRange opens its range on first Read and closes it at EOF, so a
// frame of many fragments holds at most one open reader.
type lazyRange struct {
	ctx   context.Context
	blobs BlobStore
	key   string
	span  dcm.Span
	rc    io.ReadCloser
	done  bool
}

func (l *lazyRange) Read(p []byte) (int, error) {
	if l.done {
		return 0, io.EOF
	}
	if l.rc == nil {
		rc, err := l.blobs.Open(l.ctx, l.key, l.span.Offset, l.span.Length)
		if err != nil {
			return 0, err
		}
		l.rc = rc
	}
	n, err := l.rc.Read(p)
	if err == io.EOF {
		l.Close()
	}
	return n, err
}

func (l *lazyRange) Close() error {
	l.done = true
	if l.rc == nil {
		return nil
	}
	err := l.rc.Close()
	l.rc = nil
	return err
}

type multiCloser struct {
	io.Reader
	parts []*lazyRange
}

func (m *multiCloser) Close() error {
	var errs []error
	for _, p := range m.parts {
		errs = append(errs, p.Close())
	}
	return errors.Join(errs...)
}

// swapReader reverses the byte order of each size-byte word streaming
// through it (big-endian native pixel data to little endian).
type swapReader struct {
	rc   io.ReadCloser
	size int
	buf  []byte // swapped bytes not yet returned
	part []byte // bytes of an incomplete word
	err  error
}

func newSwapReader(rc io.ReadCloser, size int) io.ReadCloser {
	if size <= 1 {
		return rc
	}
	return &swapReader{rc: rc, size: size}
}

func (s *swapReader) Read(p []byte) (int, error) {
	for len(s.buf) == 0 {
		if s.err != nil {
			if len(s.part) > 0 { // odd tail: pass through unswapped
				s.buf, s.part = s.part, nil
				break
			}
			return 0, s.err
		}
		chunk := make([]byte, len(s.part)+32*1024)
		copy(chunk, s.part)
		n, err := s.rc.Read(chunk[len(s.part):])
		chunk = chunk[:len(s.part)+n]
		s.err = err
		whole := len(chunk) / s.size * s.size
		for i := 0; i < whole; i += s.size {
			w := chunk[i : i+s.size]
			for a, b := 0, len(w)-1; a < b; a, b = a+1, b-1 {
				w[a], w[b] = w[b], w[a]
			}
		}
		s.buf, s.part = chunk[:whole], append([]byte(nil), chunk[whole:]...)
	}
	n := copy(p, s.buf)
	s.buf = s.buf[n:]
	return n, nil
}

func (s *swapReader) Close() error { return s.rc.Close() }

// Sweep deletes instance blobs older than olderThan that no index row
// references: what a crash between blob commit and index commit, or a
// failed cleanup, left behind. olderThan must exceed the longest ingest
// (blob commit to index commit), e.g. 1 h. It returns how many blobs it
// deleted.
func (a *Archive) Sweep(ctx context.Context, olderThan time.Duration) (int, error) {
	cutoff := a.now().Add(-olderThan)
	deleted := 0
	err := a.Blobs.List(ctx, InstancePrefix, func(bi BlobInfo) error {
		if bi.ModTime.After(cutoff) {
			return nil
		}
		ok, err := a.Index.HasBlob(ctx, bi.Key)
		if err != nil || ok {
			return err
		}
		if err := a.Blobs.Delete(ctx, bi.Key); err != nil {
			return err
		}
		a.logger().Info("storage: swept orphan blob", "key", bi.Key, "size", bi.Size, "modtime", bi.ModTime)
		deleted++
		return nil
	})
	if err != nil {
		return deleted, fmt.Errorf("storage: sweep: %w", err)
	}
	return deleted, nil
}
