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

// Bulk tables (Instance.Bulk) are stored the same way:
//
//	version byte (1)
//	uvarint  number of values
//	per value: uvarint len(path), path bytes, 2 bytes VR,
//	           varint (offset - end of previous value), uvarint length
//
// A nil table encodes as nil (store NULL); an empty one as {1, 0}.

const bulkVersion = 1

var errBulk = errors.New("storage: corrupt bulk table")

// EncodeBulk appends the encoding of refs to dst; nil refs append nothing.
func EncodeBulk(dst []byte, refs []dcm.BulkRef) []byte {
	if refs == nil {
		return dst
	}
	dst = append(dst, bulkVersion)
	dst = binary.AppendUvarint(dst, uint64(len(refs)))
	var end int64
	for _, r := range refs {
		vr := r.VR + "  "
		dst = binary.AppendUvarint(dst, uint64(len(r.Path)))
		dst = append(dst, r.Path...)
		dst = append(dst, vr[:2]...)
		dst = binary.AppendVarint(dst, r.Span.Offset-end)
		dst = binary.AppendUvarint(dst, uint64(r.Span.Length))
		end = r.Span.Offset + r.Span.Length
	}
	return dst
}

// DecodeBulk decodes what EncodeBulk wrote. Empty input (NULL): nil, nil.
func DecodeBulk(b []byte) ([]dcm.BulkRef, error) {
	if len(b) == 0 {
		return nil, nil
	}
	if b[0] != bulkVersion {
		return nil, fmt.Errorf("%w: version %d", errBulk, b[0])
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
	n, ok := next()
	if !ok || n > uint64(len(b)) {
		return nil, errBulk
	}
	refs := make([]dcm.BulkRef, 0, n)
	var end int64
	for range n {
		pl, ok := next()
		if !ok || pl+2 > uint64(len(b)) {
			return nil, errBulk
		}
		r := dcm.BulkRef{Path: string(b[:pl]), VR: string(b[pl : pl+2])}
		b = b[pl+2:]
		d, k := binary.Varint(b)
		if k <= 0 {
			return nil, errBulk
		}
		b = b[k:]
		l, ok := next()
		if !ok || l > 1<<62 {
			return nil, errBulk
		}
		r.Span = dcm.Span{Offset: end + d, Length: int64(l)}
		end = r.Span.Offset + r.Span.Length
		refs = append(refs, r)
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", errBulk, len(b))
	}
	return refs, nil
}
