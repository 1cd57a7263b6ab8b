package storage

import (
	"compress/flate"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/cloudpacs/pacs/internal/dcm"
)

// The read API: what a retrieve sends is an instance as stored, the
// frames of its pixel data, or one bulk value, each a Content (a size
// and a reader from any offset). The archive decides how the bytes are
// reached (a ranged read of the stored object, fragments one after
// another, an inflated data set, words swapped to little endian); the
// handlers only choose a representation and write it.

// Content is Size bytes of an instance as they are sent. Open reads them
// from any offset: a ranged read of the stored object where the bytes are
// stored as sent, else a pass from the start that discards up to the
// offset (see Ranged).
type Content struct {
	Size   int64
	open   func(ctx context.Context, off, n int64) (io.ReadCloser, error) // ranged
	stream func(ctx context.Context) (io.ReadCloser, error)               // from the start only
}

// Ranged reports whether opening c at an offset is a ranged read of the
// stored object (cheap at any offset) rather than a pass from its start.
func (c Content) Ranged() bool { return c.open != nil }

// Open reads [off, off+n) of c; n < 0 reads to the end.
func (c Content) Open(ctx context.Context, off, n int64) (io.ReadCloser, error) {
	if off < 0 || off > c.Size {
		return nil, fmt.Errorf("storage: offset %d of %d bytes", off, c.Size)
	}
	if n < 0 || n > c.Size-off {
		n = c.Size - off
	}
	if c.open != nil {
		return c.open(ctx, off, n)
	}
	rc, err := c.stream(ctx)
	if err != nil {
		return nil, err
	}
	if off > 0 {
		if _, err := io.CopyN(io.Discard, rc, off); err != nil {
			rc.Close()
			return nil, unexpected(err)
		}
	}
	return &readCloser{Reader: io.LimitReader(rc, n), close: rc.Close}, nil
}

// NewContent is size bytes read by ranged opens: open reads [off, off+n).
func NewContent(size int64, open func(ctx context.Context, off, n int64) (io.ReadCloser, error)) Content {
	return Content{Size: size, open: open}
}

// InstanceContent is inst's stored Part 10 object as is.
func (a *Archive) InstanceContent(inst *Instance) Content {
	return Content{Size: inst.Size, open: a.blobRange(inst, 0)}
}

// blobRange opens ranges of inst's stored object from base on.
func (a *Archive) blobRange(inst *Instance, base int64) func(ctx context.Context, off, n int64) (io.ReadCloser, error) {
	blobs, key := a.Blobs, inst.BlobKey
	return func(ctx context.Context, off, n int64) (io.ReadCloser, error) {
		return blobs.Open(ctx, key, base+off, n)
	}
}

// FrameSet is the frames of an instance's pixel data as they are sent:
// native frames in little-endian byte order, encapsulated frames as
// stored (their fragments one after another), frames of a deflated data
// set inflated.
type FrameSet struct {
	a    *Archive
	inst *Instance
}

// Frames returns inst's frame set. Nothing is read before a frame is
// opened.
func (a *Archive) Frames(inst *Instance) FrameSet { return FrameSet{a: a, inst: inst} }

// Len is the number of frames (0: no pixel data).
func (f FrameSet) Len() int { return len(f.inst.Frames) }

// Size is the length of frame n (1-based), 0 for an unknown frame.
func (f FrameSet) Size(n int) int64 {
	if n < 1 || n > len(f.inst.Frames) {
		return 0
	}
	var size int64
	for _, s := range f.inst.Frames[n-1] {
		size += s.Length
	}
	return size
}

// Frame is frame n (1-based): one ranged read when it is one span of
// stored bytes sent unchanged, else OpenFrame's stream. Unknown frame:
// ErrNotFound.
func (f FrameSet) Frame(n int) (Content, error) {
	in := f.inst
	if n < 1 || n > len(in.Frames) {
		return Content{}, fmt.Errorf("storage: frame %d of %s (has %d): %w", n, in.SOPInstanceUID, len(in.Frames), ErrNotFound)
	}
	c := Content{Size: f.Size(n)}
	if fr := in.Frames[n-1]; len(fr) == 1 && !in.Deflated && !in.BigEndian {
		c.open = f.a.blobRange(in, fr[0].Offset)
		return c, nil
	}
	a := f.a
	c.stream = func(ctx context.Context) (io.ReadCloser, error) {
		rc, _, err := a.OpenFrame(ctx, in, n)
		return rc, err
	}
	return c, nil
}

// Reader reads many frames of the set in the order they are asked for
// (a frame list): see FrameReader.
func (f FrameSet) Reader(ctx context.Context) *FrameReader { return f.a.OpenFrames(ctx, f.inst) }

// All is every frame one after another: the value of a native PixelData
// element as sent. Frames stored back to back and sent unchanged are one
// ranged read; others stream through one FrameReader (a deflated data
// set is inflated once).
func (f FrameSet) All() Content {
	in := f.inst
	var c Content
	for n := 1; n <= len(in.Frames); n++ {
		c.Size += f.Size(n)
	}
	if !in.Deflated && !in.BigEndian && contiguous(in.Frames) {
		c.open = f.a.blobRange(in, in.Frames[0][0].Offset)
		return c
	}
	c.stream = func(ctx context.Context) (io.ReadCloser, error) {
		return &allFrames{fr: f.Reader(ctx), count: len(in.Frames)}, nil
	}
	return c
}

// contiguous reports frames of one span each, stored back to back.
func contiguous(fs []dcm.Frame) bool {
	var end int64 = -1
	for _, f := range fs {
		if len(f) != 1 || (end >= 0 && f[0].Offset != end) {
			return false
		}
		end = f[0].Offset + f[0].Length
	}
	return len(fs) > 0
}

// allFrames reads frames 1 to count of a FrameReader one after another.
type allFrames struct {
	fr    *FrameReader
	count int
	next  int       // the frame to open once cur ends
	cur   io.Reader // nil before the first frame
}

func (r *allFrames) Read(p []byte) (int, error) {
	for {
		if r.cur != nil {
			n, err := r.cur.Read(p)
			if err != io.EOF {
				return n, err
			}
			r.cur = nil
			if n > 0 {
				return n, nil
			}
		}
		if r.next >= r.count {
			return 0, io.EOF
		}
		r.next++
		cur, _, err := r.fr.Frame(r.next)
		if err != nil {
			return 0, err
		}
		r.cur = cur
	}
}

func (r *allFrames) Close() error { return r.fr.Close() }

// BulkValue is a bulk data value of an instance other than its pixel
// data frames: its bytes as stored (a deflated data set inflated; words
// in the stored byte order) and its VR.
type BulkValue struct {
	Content
	VR string
}

// ErrNoBulkValue: the instance has no bulk value at the path asked for.
var ErrNoBulkValue = fmt.Errorf("no bulk data value at this path: %w", ErrNotFound)

// HeaderReparses is how many Bulk calls re-read a stored header because
// the row has no recorded bulk spans (indexed before they were).
func (a *Archive) HeaderReparses() int64 { return a.reparses.Load() }

// Bulk returns the value at path (a BulkDataURI path: tags in hex,
// item numbers, separated by "/") of inst at the span recorded at ingest
// (Instance.Bulk); a row without recorded spans (Bulk == nil) re-reads
// the stored header. Unknown path: ErrNoBulkValue.
func (a *Archive) Bulk(ctx context.Context, inst *Instance, path string) (BulkValue, error) {
	refs := inst.Bulk
	if refs == nil {
		a.reparses.Add(1)
		rc, err := a.OpenInstance(ctx, inst)
		if err != nil {
			return BulkValue{}, err
		}
		hdr, err := dcm.Parse(rc)
		rc.Close()
		if err != nil {
			// Stored data that no longer parse: not the client's fault.
			return BulkValue{}, fmt.Errorf("storage: bulk: re-reading stored instance %s: %w", inst.SOPInstanceUID, err)
		}
		refs = hdr.Bulk()
	}
	for _, b := range refs {
		if strings.EqualFold(b.Path, path) {
			return BulkValue{Content: a.spanContent(inst, b.Span), VR: b.VR}, nil
		}
	}
	return BulkValue{}, fmt.Errorf("storage: bulk %s of %s: %w", path, inst.SOPInstanceUID, ErrNoBulkValue)
}

// spanContent is the bytes of span: a ranged read, or for a deflated
// object the inflated data set (which starts at DataSetOffset; span
// offsets count as if it were stored inflated) up to the span.
func (a *Archive) spanContent(inst *Instance, span dcm.Span) Content {
	c := Content{Size: span.Length}
	if !inst.Deflated {
		c.open = a.blobRange(inst, span.Offset)
		return c
	}
	blobs := a.Blobs
	c.stream = func(ctx context.Context) (io.ReadCloser, error) {
		rc, err := blobs.Open(ctx, inst.BlobKey, inst.DataSetOffset, -1)
		if err != nil {
			return nil, err
		}
		fr := flate.NewReader(rc)
		if _, err := io.CopyN(io.Discard, fr, span.Offset-inst.DataSetOffset); err != nil {
			rc.Close()
			return nil, fmt.Errorf("storage: inflate to bulk data of %s: %w", inst.SOPInstanceUID, unexpected(err))
		}
		return &readCloser{Reader: io.LimitReader(fr, span.Length), close: func() error {
			return errors.Join(fr.Close(), rc.Close())
		}}, nil
	}
	return c
}

// LocateInstance is the index's row of one instance without its metadata
// document (and without Bulk unless withBulk): what the retrieve paths
// that stream stored bytes need. Without Bulk, the row may come from the
// archive's LocationCache: it is shared, and must not be modified.
func (a *Archive) LocateInstance(ctx context.Context, study, series, sop string, withBulk bool) (*Instance, error) {
	if !withBulk {
		return a.locate(ctx, study, series, sop)
	}
	return LocateInstance(ctx, a.Index, study, series, sop, withBulk)
}

// LocateInstances is LocateInstance for the instances of a study or
// series, in the order of Index.Instances.
func (a *Archive) LocateInstances(ctx context.Context, study, series string) ([]*Instance, error) {
	return LocateInstances(ctx, a.Index, study, series)
}

// Seeker returns an io.ReadSeekCloser over c for http.ServeContent,
// which answers Range requests by seeking, without buffering. On ranged
// content the first Read after a Seek opens a reader at the position;
// on other content a Seek forward discards bytes of the reader already
// open and only a Seek back opens it again, so that the ranges of one
// request, in ascending order, cost one pass, not one per range.
func (c Content) Seeker(ctx context.Context) io.ReadSeekCloser {
	return &seeker{c: c, ctx: ctx}
}

type seeker struct {
	c     Content
	ctx   context.Context
	pos   int64
	rc    io.ReadCloser
	rcPos int64
}

func (s *seeker) Read(p []byte) (int, error) {
	size := s.c.Size
	if s.pos >= size {
		return 0, io.EOF
	}
	if s.rc == nil || s.rcPos != s.pos {
		if err := s.position(); err != nil {
			return 0, err
		}
	}
	if rem := size - s.pos; int64(len(p)) > rem {
		p = p[:rem]
	}
	n, err := s.rc.Read(p)
	s.pos += int64(n)
	s.rcPos += int64(n)
	if err == io.EOF && s.pos < size {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// position leaves s.rc reading at s.pos.
func (s *seeker) position() error {
	if s.c.open != nil {
		if s.rc != nil {
			s.rc.Close()
			s.rc = nil
		}
		rc, err := s.c.open(s.ctx, s.pos, s.c.Size-s.pos)
		if err != nil {
			return err
		}
		s.rc, s.rcPos = rc, s.pos
		return nil
	}
	if s.rc == nil || s.pos < s.rcPos {
		if s.rc != nil {
			s.rc.Close()
			s.rc = nil
		}
		rc, err := s.c.stream(s.ctx)
		if err != nil {
			return err
		}
		s.rc, s.rcPos = rc, 0
	}
	if gap := s.pos - s.rcPos; gap > 0 {
		n, err := io.CopyN(io.Discard, s.rc, gap)
		s.rcPos += n
		if err != nil {
			return unexpected(err)
		}
	}
	return nil
}

func (s *seeker) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		off += s.pos
	case io.SeekEnd:
		off += s.c.Size
	default:
		return 0, errors.New("storage: bad whence")
	}
	if off < 0 {
		return 0, errors.New("storage: negative position")
	}
	s.pos = off
	return off, nil
}

func (s *seeker) Close() error {
	if s.rc != nil {
		err := s.rc.Close()
		s.rc = nil
		return err
	}
	return nil
}
