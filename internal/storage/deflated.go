package storage

import (
	"compress/flate"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/cloudpacs/pacs/internal/dcm"
)

// Deflated Explicit VR Little Endian objects store their data set as one
// raw deflate stream from DataSetOffset on; dcm records a frame's spans
// as DataSetOffset + the offset in the inflated bytes. A frame can only
// be reached by inflating everything before it: openDeflatedFrame does
// that for one frame, FrameReader once for many.

// openDeflatedFrame inflates the data set stream (stored from
// DataSetOffset on) and returns the frame's spans. As dcm records them,
// a span offset is DataSetOffset + the offset in the inflated bytes.
func (a *Archive) openDeflatedFrame(ctx context.Context, inst *Instance, frame dcm.Frame) (io.ReadCloser, error) {
	rc, err := a.Blobs.Open(ctx, inst.BlobKey, inst.DataSetOffset, -1)
	if err != nil {
		return nil, fmt.Errorf("storage: frame of %s: %w", inst.SOPInstanceUID, err)
	}
	fr := flate.NewReader(rc)
	var readers []io.Reader
	pos := inst.DataSetOffset
	for _, s := range frame {
		if s.Offset < pos {
			fr.Close()
			rc.Close()
			return nil, fmt.Errorf("storage: frame of %s: spans out of order", inst.SOPInstanceUID)
		}
		readers = append(readers, &skipReader{r: fr, skip: s.Offset - pos}, io.LimitReader(fr, s.Length))
		pos = s.Offset + s.Length
	}
	var r io.Reader = io.MultiReader(readers...)
	var out io.ReadCloser = &readCloser{Reader: r, close: func() error { return errors.Join(fr.Close(), rc.Close()) }}
	if inst.BigEndian && !inst.Encapsulated && inst.Instance.BitsAllocated > 8 {
		out = newSwapReader(out, inst.Instance.BitsAllocated/8)
	}
	return out, nil
}

// skipReader discards skip bytes of r on first Read, then reports EOF:
// it only positions the shared stream for the LimitReader after it.
type skipReader struct {
	r    io.Reader
	skip int64
}

func (s *skipReader) Read(p []byte) (int, error) {
	if s.skip > 0 {
		n, err := io.CopyN(io.Discard, s.r, s.skip)
		s.skip -= n
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return 0, err
		}
	}
	return 0, io.EOF
}

type readCloser struct {
	io.Reader
	close func() error
}

func (r *readCloser) Close() error { return r.close() }

// FrameReader reads several frames of one instance, in the order they
// are asked for, for retrieves of many frames (a frame list, all of
// PixelData). For a deflated instance it keeps one inflating stream and
// reads it forward, so that frames asked in ascending order inflate the
// data set once, up to the last of them, where OpenFrame per frame
// inflates from the start every time: 2,000 frames would inflate the
// first frame 2,000 times. A frame that lies before the stream's
// position (a list that goes back) starts a new stream. Other instances
// open each frame with OpenFrame, which is a ranged read.
//
// A FrameReader is used by one goroutine; Close releases it.
type FrameReader struct {
	a    *Archive
	ctx  context.Context
	inst *Instance
	cur  io.ReadCloser // the frame returned last (not deflated)

	// The inflating stream of a deflated instance.
	blob io.ReadCloser
	fr   io.ReadCloser
	pos  int64 // offset of the next inflated byte, as a span offset
	gen  int   // counts the calls of Frame and Close
}

// OpenFrames returns a FrameReader for inst; nothing is opened before the
// first Frame.
func (a *Archive) OpenFrames(ctx context.Context, inst *Instance) *FrameReader {
	return &FrameReader{a: a, ctx: ctx, inst: inst}
}

// Frame returns a reader of frame n (1-based) and its length, valid until
// the next call of Frame or Close; bytes of it left unread are skipped
// by the next call. Unknown frame: ErrNotFound.
func (f *FrameReader) Frame(n int) (io.Reader, int64, error) {
	inst := f.inst
	if n < 1 || n > len(inst.Frames) {
		return nil, 0, fmt.Errorf("storage: frame %d of %s (has %d): %w", n, inst.SOPInstanceUID, len(inst.Frames), ErrNotFound)
	}
	f.gen++
	if f.cur != nil {
		f.cur.Close()
		f.cur = nil
	}
	if !inst.Deflated {
		rc, size, err := f.a.OpenFrame(f.ctx, inst, n)
		if err != nil {
			return nil, 0, err
		}
		f.cur = rc
		return rc, size, nil
	}
	frame := inst.Frames[n-1]
	var size int64
	for i, s := range frame {
		if i > 0 && s.Offset < frame[i-1].Offset+frame[i-1].Length {
			return nil, 0, fmt.Errorf("storage: frame %d of %s: spans out of order", n, inst.SOPInstanceUID)
		}
		size += s.Length
	}
	if f.fr == nil || (len(frame) > 0 && frame[0].Offset < f.pos) {
		if err := f.inflate(); err != nil {
			return nil, 0, err
		}
	}
	var r io.Reader = &inflatedSpans{f: f, gen: f.gen, spans: frame}
	if inst.BigEndian && !inst.Encapsulated && inst.Instance.BitsAllocated > 8 {
		r = newSwapReader(io.NopCloser(r), inst.Instance.BitsAllocated/8)
	}
	return r, size, nil
}

// inflate (re)starts the inflating stream at the start of the data set.
func (f *FrameReader) inflate() error {
	f.closeStream()
	rc, err := f.a.Blobs.Open(f.ctx, f.inst.BlobKey, f.inst.DataSetOffset, -1)
	if err != nil {
		return fmt.Errorf("storage: frames of %s: %w", f.inst.SOPInstanceUID, err)
	}
	f.blob, f.fr, f.pos = rc, flate.NewReader(rc), f.inst.DataSetOffset
	return nil
}

func (f *FrameReader) closeStream() error {
	if f.fr == nil {
		return nil
	}
	err := errors.Join(f.fr.Close(), f.blob.Close())
	f.fr, f.blob = nil, nil
	return err
}

// Close releases the frame and the stream held.
func (f *FrameReader) Close() error {
	f.gen++
	var err error
	if f.cur != nil {
		err = f.cur.Close()
		f.cur = nil
	}
	return errors.Join(err, f.closeStream())
}

// inflatedSpans reads a frame's spans from the FrameReader's stream,
// discarding what lies before each, and keeps the stream's position.
type inflatedSpans struct {
	f     *FrameReader
	gen   int // the FrameReader's gen when this frame was returned
	spans dcm.Frame
}

func (s *inflatedSpans) Read(p []byte) (int, error) {
	f := s.f
	for len(s.spans) > 0 && f.pos >= s.spans[0].Offset+s.spans[0].Length {
		s.spans = s.spans[1:]
	}
	if len(s.spans) == 0 {
		return 0, io.EOF
	}
	if f.gen != s.gen || f.fr == nil {
		return 0, errors.New("storage: frame read after its FrameReader moved on or closed")
	}
	sp := s.spans[0]
	if gap := sp.Offset - f.pos; gap > 0 {
		n, err := io.CopyN(io.Discard, f.fr, gap)
		f.pos += n
		if err != nil {
			return 0, unexpected(err)
		}
	}
	if rem := sp.Offset + sp.Length - f.pos; int64(len(p)) > rem {
		p = p[:rem]
	}
	n, err := f.fr.Read(p)
	f.pos += int64(n)
	if err == io.EOF && (f.pos < sp.Offset+sp.Length || len(s.spans) > 1) {
		err = io.ErrUnexpectedEOF
	} else if err == io.EOF {
		err = nil // the next Read reports the frame's end
	}
	return n, err
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
