package dcm

import (
	"bufio"
	"compress/flate"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
)

const (
	undefinedLength = 0xFFFFFFFF
	// MaxRetainedBytes caps the attribute values Parse keeps in memory for
	// one instance (each element and item is also charged elementCost).
	MaxRetainedBytes = 64 << 20
	elementCost      = 64
	maxDepth         = 64
	maxFrames        = 1 << 20
	maxFragments     = 1 << 20
	readChunk        = 64 << 10
)

// syntax is how a data set is encoded.
type syntax struct {
	explicit bool
	big      bool
}

var (
	implicitLE = syntax{}
	explicitLE = syntax{explicit: true}
	explicitBE = syntax{explicit: true, big: true}
)

func (sx syntax) u16(b []byte) uint16 {
	if sx.big {
		return binary.BigEndian.Uint16(b)
	}
	return binary.LittleEndian.Uint16(b)
}

func (sx syntax) u32(b []byte) uint32 {
	if sx.big {
		return binary.BigEndian.Uint32(b)
	}
	return binary.LittleEndian.Uint32(b)
}

// stream is a buffered reader that knows its absolute position.
type stream struct {
	br  *bufio.Reader
	pos int64
	// raw is the reader under a deflate stream, drained at the end.
	raw *bufio.Reader
	buf [12]byte
}

// readers recycles the streams' read buffers (readChunk bytes each): a
// new one for every parsed instance was most of the bytes a small
// instance's ingest allocated.
var readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, readChunk) }}

func newReader(r io.Reader) *bufio.Reader {
	br := readers.Get().(*bufio.Reader)
	br.Reset(r)
	return br
}

func newStream(r io.Reader) *stream {
	return &stream{br: newReader(r)}
}

// release hands the stream's buffers back for reuse; the stream is not
// used after. Nothing read through it is kept in them: values are
// copied out (readValue), peeked bytes are only looked at.
func (s *stream) release() {
	for _, br := range []*bufio.Reader{s.br, s.raw} {
		if br != nil {
			br.Reset(nil)
			readers.Put(br)
		}
	}
	s.br, s.raw = nil, nil
}

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...)
}

// ioErr turns a read error into the package's error: end of data and
// corrupt deflate data are ErrInvalid, anything else (network, size
// limits) is passed through, wrapped.
func (s *stream) ioErr(err error) error {
	var corrupt flate.CorruptInputError
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return invalidf("truncated at offset %d", s.pos)
	case errors.As(err, &corrupt):
		return invalidf("deflate data at offset %d: %v", s.pos, err)
	}
	return fmt.Errorf("dcm: read at offset %d: %w", s.pos, err)
}

// read fills p or fails with a truncation error.
func (s *stream) read(p []byte) error {
	n, err := io.ReadFull(s.br, p)
	s.pos += int64(n)
	if err != nil {
		return s.ioErr(err)
	}
	return nil
}

// skip discards n bytes, never buffering more than the reader's buffer.
func (s *stream) skip(n int64) error {
	for n > 0 {
		k := min(n, 1<<30)
		d, err := s.br.Discard(int(k))
		s.pos += int64(d)
		n -= int64(d)
		if err != nil {
			return s.ioErr(err)
		}
	}
	return nil
}

// readValue reads n bytes into a new slice. Memory grows with the bytes
// that actually arrive, so a lying length fails with "truncated" after at
// most a chunk of allocation beyond the real data.
func (s *stream) readValue(n int64) ([]byte, error) {
	if n <= readChunk {
		b := make([]byte, n)
		return b, s.read(b)
	}
	b := make([]byte, 0, readChunk)
	for int64(len(b)) < n {
		k := min(n-int64(len(b)), int64(max(cap(b)-len(b), readChunk)))
		if int64(cap(b)-len(b)) < k {
			nb := make([]byte, len(b), min(int64(2*cap(b)), n))
			copy(nb, b)
			b = nb
			k = min(k, int64(cap(b)-len(b)))
		}
		if err := s.read(b[len(b) : len(b)+int(k)]); err != nil {
			return nil, err
		}
		b = b[:len(b)+int(k)]
	}
	return b, nil
}

// drain reads the rest of the input to EOF (trailing padding, bytes after
// a deflate stream).
func (s *stream) drain() error {
	r := s.br
	if s.raw != nil {
		if _, err := io.Copy(io.Discard, s.br); err != nil {
			return s.ioErr(err)
		}
		r = s.raw
	}
	if _, err := io.Copy(io.Discard, r); err != nil {
		return fmt.Errorf("dcm: read: %w", err)
	}
	return nil
}

// inflate switches the stream to the raw DEFLATE data that follows.
// Positions continue from the current one (DataSetOffset), counting
// inflated bytes.
func (s *stream) inflate() {
	s.raw = s.br
	s.br = newReader(flate.NewReader(s.raw))
}

// elemHeader is one element header as read from the stream.
type elemHeader struct {
	tag    Tag
	vr     string // explicit VR, or "" for implicit / item tags
	length uint32
	off    int64 // offset of the first header byte
}

// readHeader reads the next element header. It returns io.EOF, unwrapped,
// when the input ends cleanly before the first byte.
func (s *stream) readHeader(sx syntax) (elemHeader, error) {
	var h elemHeader
	err := s.readHeaderTo(&h, sx)
	return h, err
}

// readHeaderTo is readHeader into *h, which the walker keeps in its
// event rather than copying it there.
func (s *stream) readHeaderTo(h *elemHeader, sx syntax) error {
	*h = elemHeader{off: s.pos}
	b := s.buf[:8]
	n, err := io.ReadFull(s.br, b)
	s.pos += int64(n)
	if n == 0 && err == io.EOF {
		return io.EOF
	}
	if err != nil {
		return s.ioErr(err)
	}
	h.tag = Tag(uint32(sx.u16(b[0:]))<<16 | uint32(sx.u16(b[2:])))
	if !sx.explicit || h.tag.Group() == 0xFFFE {
		h.length = sx.u32(b[4:])
		return nil
	}
	vr := vrString(b[4], b[5])
	if vr == "" {
		return invalidf("bad VR %q for tag %08X at offset %d", b[4:6], uint32(h.tag), h.off)
	}
	h.vr = vr
	if longVR(vr) {
		if err := s.read(s.buf[8:12]); err != nil {
			return err
		}
		h.length = sx.u32(s.buf[8:12])
	} else {
		h.length = uint32(sx.u16(b[6:]))
	}
	return nil
}

// vrString returns the interned VR for two bytes, or "" if unknown.
func vrString(a, b byte) string {
	switch string([]byte{a, b}) {
	case "AE":
		return "AE"
	case "AS":
		return "AS"
	case "AT":
		return "AT"
	case "CS":
		return "CS"
	case "DA":
		return "DA"
	case "DS":
		return "DS"
	case "DT":
		return "DT"
	case "FL":
		return "FL"
	case "FD":
		return "FD"
	case "IS":
		return "IS"
	case "LO":
		return "LO"
	case "LT":
		return "LT"
	case "OB":
		return "OB"
	case "OD":
		return "OD"
	case "OF":
		return "OF"
	case "OL":
		return "OL"
	case "OV":
		return "OV"
	case "OW":
		return "OW"
	case "PN":
		return "PN"
	case "SH":
		return "SH"
	case "SL":
		return "SL"
	case "SQ":
		return "SQ"
	case "SS":
		return "SS"
	case "ST":
		return "ST"
	case "SV":
		return "SV"
	case "TM":
		return "TM"
	case "UC":
		return "UC"
	case "UI":
		return "UI"
	case "UL":
		return "UL"
	case "UN":
		return "UN"
	case "UR":
		return "UR"
	case "US":
		return "US"
	case "UT":
		return "UT"
	case "UV":
		return "UV"
	}
	return ""
}
