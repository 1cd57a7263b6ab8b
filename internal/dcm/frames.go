package dcm

import (
	"encoding/binary"
	"strconv"
	"strings"
)

// frames fills Header.Frames from the top-level PixelData.
//
// Native data: NumberOfFrames (default 1) frames of
// Rows*Columns*SamplesPerPixel*BitsAllocated bits each, one span per
// frame. With BitsAllocated 1 frames need not start on a byte boundary:
// frame i covers the bytes [floor(i*bits/8), ceil((i+1)*bits/8)), so
// neighbouring spans may share a byte and the reader must skip the
// leading (i*bits)%8 bits. YBR_FULL_422 / YBR_PARTIAL_422 native data
// has two samples per pixel (PS3.3 C.7.6.3.1.2). Without Rows/Columns/BitsAllocated the whole
// value is one frame.
//
// Encapsulated data: the Basic Offset Table if present, else the Extended
// Offset Table, else one fragment per frame when the counts agree, else
// all fragments as one frame when there is one frame, else a new frame at
// each fragment starting with a JPEG SOI (FFD8) or JPEG 2000 SOC (FF4F)
// marker. Video transfer syntaxes hold one stream: one Frame with all
// fragments, whatever NumberOfFrames says.
//
// Pixel data that contradicts its attributes is not an error here: the
// archive keeps what it was sent. Native data shorter than the
// attributes say gives the frames that begin inside the value (the last
// one short); fragments that map to another number of frames than
// NumberOfFrames give the frames their markers delimit.
func (p *parser) frames() error {
	h := p.h
	pd := h.Dataset.find(tagPixelData)
	if pd == nil || pd.Bulk == nil {
		return nil
	}
	nf := 1
	if e := h.Dataset.find(tagNumberOfFrames); e != nil {
		if v, err := strconv.Atoi(strings.Trim(string(e.Value), " \x00")); err == nil && v > 1 {
			nf = v
		}
	}
	if nf > maxFrames {
		return invalidf("NumberOfFrames %d exceeds %d", nf, maxFrames)
	}
	if h.Encapsulated {
		return p.encapsulatedFrames(nf)
	}
	rows, cols := uint64(h.Int(tagRows)), uint64(h.Int(tagColumns))
	spp, ba := uint64(max(h.Int(tagSamplesPerPixel), 1)), uint64(h.Int(tagBitsAllocated))
	v := *pd.Bulk
	if rows == 0 || cols == 0 || ba == 0 || rows*cols*spp*ba > 1<<46 {
		if rows == 0 || cols == 0 || ba == 0 {
			h.Frames = []Frame{{v}}
			return nil
		}
		return invalidf("frame size %dx%dx%dx%d bits too large", rows, cols, spp, ba)
	}
	bits := rows * cols * spp * ba
	if pi := h.Text(tagPhotometricInterpretation); spp == 3 && strings.HasSuffix(pi, "_422") {
		bits = bits * 2 / 3 // 4:2:2: two luminance samples share one Cb and one Cr
	}
	length, n := uint64(v.Length), uint64(nf)
	if need := (n*bits + 7) / 8; length < need {
		// Short pixel data is kept as sent: the frames that start inside
		// the value, the last one cut at its end (at least one, maybe
		// empty). Decoding such a frame fails with codec.ErrCorrupt, and
		// ingest tells the sender (storage.pixelDataProblem).
		n = max(min(n, (length*8+bits-1)/bits), 1)
	}
	spans := make([]Span, n)
	h.Frames = make([]Frame, n)
	for i := range spans {
		to := min((uint64(i+1)*bits+7)/8, length)
		from := min(uint64(i)*bits/8, to)
		spans[i] = Span{Offset: v.Offset + int64(from), Length: int64(to - from)}
		h.Frames[i] = spans[i : i+1 : i+1]
	}
	return nil
}

func (p *parser) encapsulatedFrames(nf int) error {
	h, fr := p.h, p.frags
	if len(fr) == 0 {
		if nf == 0 {
			return nil
		}
		return invalidf("encapsulated PixelData without fragments")
	}
	spanOf := func(from, to int) Frame {
		f := make(Frame, 0, to-from)
		for _, x := range fr[from:to] {
			f = append(f, x.span)
		}
		return f
	}
	// byOffsets maps frame start offsets (relative to the first fragment
	// header) to fragment indexes; false when they do not line up.
	byOffsets := func(offs []uint64) bool {
		if len(offs) != nf || offs[0] != 0 {
			return false
		}
		starts := make([]int, 0, nf)
		j := 0
		for _, o := range offs {
			for j < len(fr) && uint64(fr[j].rel) < o {
				j++
			}
			if j == len(fr) || uint64(fr[j].rel) != o || len(starts) > 0 && starts[len(starts)-1] >= j {
				return false
			}
			starts = append(starts, j)
		}
		h.Frames = make([]Frame, nf)
		for i, st := range starts {
			end := len(fr)
			if i+1 < len(starts) {
				end = starts[i+1]
			}
			h.Frames[i] = spanOf(st, end)
		}
		return true
	}
	if p.ts.video {
		h.Frames = []Frame{spanOf(0, len(fr))}
		return nil
	}
	if len(p.bot) > 0 {
		offs := make([]uint64, len(p.bot))
		for i, o := range p.bot {
			offs[i] = uint64(o)
		}
		if byOffsets(offs) {
			return nil
		}
	}
	if e := h.Dataset.find(tagExtendedOffsetTable); e != nil && len(e.Value) >= 8 {
		offs := make([]uint64, len(e.Value)/8)
		for i := range offs {
			offs[i] = binary.LittleEndian.Uint64(e.Value[8*i:])
		}
		if byOffsets(offs) {
			return nil
		}
	}
	switch {
	case len(fr) == nf:
		h.Frames = make([]Frame, nf)
		for i := range fr {
			h.Frames[i] = spanOf(i, i+1)
		}
		return nil
	case nf == 1:
		h.Frames = []Frame{spanOf(0, len(fr))}
		return nil
	}
	var starts []int
	for i, f := range fr {
		if f.start || i == 0 {
			starts = append(starts, i)
		}
	}
	// When the markers do not give NumberOfFrames frames either, the
	// frames they delimit are kept (storage.pixelDataProblem reports
	// the mismatch to the sender).
	h.Frames = make([]Frame, len(starts))
	for i, st := range starts {
		end := len(fr)
		if i+1 < len(starts) {
			end = starts[i+1]
		}
		h.Frames[i] = spanOf(st, end)
	}
	return nil
}
