package storage

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cloudpacs/pacs/internal/dcm"
)

// Frame tables are stored as a compact binary blob, shared by the index
// backends:
//
//	version byte (1)
//	uvarint  number of frames
//	per frame: uvarint number of spans,
//	           per span: varint (offset - end of previous span), uvarint length
//
// Native frames are contiguous, so each offset delta is 0 and a frame
// costs about 4 bytes; fragments cost a few bytes more. No frames: nil.

const framesVersion = 1

// EncodeFrames appends the encoding of frames to dst.
func EncodeFrames(dst []byte, frames []dcm.Frame) []byte {
	if len(frames) == 0 {
		return dst
	}
	dst = append(dst, framesVersion)
	dst = binary.AppendUvarint(dst, uint64(len(frames)))
	var end int64
	for _, f := range frames {
		dst = binary.AppendUvarint(dst, uint64(len(f)))
		for _, s := range f {
			dst = binary.AppendVarint(dst, s.Offset-end)
			dst = binary.AppendUvarint(dst, uint64(s.Length))
			end = s.Offset + s.Length
		}
	}
	return dst
}

var errFrames = errors.New("storage: corrupt frame table")

// DecodeFrames decodes what EncodeFrames wrote. Empty input: nil, nil.
func DecodeFrames(b []byte) ([]dcm.Frame, error) {
	if len(b) == 0 {
		return nil, nil
	}
	if b[0] != framesVersion {
		return nil, fmt.Errorf("%w: version %d", errFrames, b[0])
	}
	b = b[1:]
	next := func() (uint64, bool) {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return 0, false
		}
		b = b[n:]
		return v, true
	}
	nf, ok := next()
	if !ok || nf > uint64(len(b)) { // every frame takes at least one byte
		return nil, errFrames
	}
	frames := make([]dcm.Frame, 0, nf)
	var end int64
	for range nf {
		ns, ok := next()
		if !ok || ns > uint64(len(b)) {
			return nil, errFrames
		}
		f := make(dcm.Frame, 0, ns)
		for range ns {
			d, n := binary.Varint(b)
			if n <= 0 {
				return nil, errFrames
			}
			b = b[n:]
			l, ok := next()
			if !ok || l > 1<<62 {
				return nil, errFrames
			}
			s := dcm.Span{Offset: end + d, Length: int64(l)}
			end = s.Offset + s.Length
			f = append(f, s)
		}
		frames = append(frames, f)
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", errFrames, len(b))
	}
	return frames, nil
}
