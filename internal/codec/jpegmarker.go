package codec

import "fmt"

// maxMarkerSegments bounds the header loop of a malformed stream.
const maxMarkerSegments = 1 << 12

// markerReader walks the marker segments of a JPEG stream (ITU T.81
// B.1.1.2), for the 12-bit DCT and the lossless decoders: it finds each
// marker past fill bytes, skips the parameterless RSTn and TEM markers,
// checks each segment's length against the data and stops at EOI, at
// the end of the data or after maxMarkerSegments markers.
type markerReader struct {
	data []byte
	pos  int // offset of the next byte to look at
	seen int // markers seen, parameterless ones included
}

// newMarkerReader checks that frame starts with SOI and returns a reader
// positioned after it.
func newMarkerReader(frame []byte) (*markerReader, error) {
	if len(frame) < 4 || frame[0] != 0xFF || frame[1] != 0xD8 {
		return nil, fmt.Errorf("%w: JPEG stream does not start with SOI", ErrCorrupt)
	}
	return &markerReader{data: frame, pos: 2}, nil
}

// next returns the next marker with a segment and its body (the bytes
// after the length field). ok is false at EOI, at the end of the data
// or past the segment bound; a length past the end is ErrCorrupt.
func (r *markerReader) next() (m byte, body []byte, ok bool, err error) {
	d := r.data
	for ; r.seen < maxMarkerSegments; r.seen++ {
		// Find the next marker (fill bytes 0xFF allowed).
		for r.pos < len(d) && d[r.pos] != 0xFF {
			r.pos++
		}
		for r.pos < len(d) && d[r.pos] == 0xFF {
			r.pos++
		}
		if r.pos >= len(d) {
			return 0, nil, false, nil
		}
		m = d[r.pos]
		r.pos++
		if m == 0xD9 { // EOI
			return 0, nil, false, nil
		}
		if m >= 0xD0 && m <= 0xD7 || m == 0x01 {
			continue
		}
		if r.pos+2 > len(d) {
			return 0, nil, false, fmt.Errorf("%w: JPEG marker segment truncated", ErrCorrupt)
		}
		l := int(d[r.pos])<<8 | int(d[r.pos+1])
		if l < 2 || r.pos+l > len(d) {
			return 0, nil, false, fmt.Errorf("%w: JPEG marker FF%02X length %d past the end", ErrCorrupt, m, l)
		}
		body = d[r.pos+2 : r.pos+l]
		r.pos += l
		r.seen++
		return m, body, true, nil
	}
	return 0, nil, false, nil
}

// scanData returns the data after the last segment read (the
// entropy-coded data after an SOS); consume then moves past the n bytes
// a scan decoder used.
func (r *markerReader) scanData() []byte { return r.data[r.pos:] }

func (r *markerReader) consume(n int) { r.pos += n }
