package codec

import (
	"encoding/binary"
	"fmt"
)

// RLE Lossless (PS3.5 Annex G) is written here: it is a 64-byte header
// and PackBits segments, simpler than any dependency.

func init() { Register(RLELossless, DecoderFunc(decodeRLE)) }

func decodeRLE(_ string, frame []byte, info PixelInfo) (*Pixels, error) {
	info, err := info.normalized()
	if err != nil {
		return nil, err
	}
	if info.BitsAllocated == 1 {
		return nil, fmt.Errorf("%w: RLE with BitsAllocated 1", ErrUnsupported)
	}
	if len(frame) < 64 {
		return nil, fmt.Errorf("%w: RLE frame of %d bytes has no 64-byte header", ErrCorrupt, len(frame))
	}
	bpp := info.BitsAllocated / 8
	spp := info.SamplesPerPixel
	n := info.Rows * info.Columns
	nseg := int(binary.LittleEndian.Uint32(frame))
	if nseg != bpp*spp {
		return nil, fmt.Errorf("%w: RLE header has %d segments, %d samples of %d bytes need %d", ErrCorrupt, nseg, spp, bpp, bpp*spp)
	}
	var offs [16]int
	for i := 0; i < nseg; i++ {
		offs[i] = int(binary.LittleEndian.Uint32(frame[4+4*i:]))
		if offs[i] < 64 || offs[i] > len(frame) || i > 0 && offs[i] < offs[i-1] {
			return nil, fmt.Errorf("%w: RLE segment %d offset %d out of order or range", ErrCorrupt, i+1, offs[i])
		}
	}
	offs[nseg] = len(frame)
	// Segments come sample by sample, most significant byte first; lay
	// them out as little-endian colour-by-plane native data.
	native := make([]byte, n*spp*bpp)
	seg := make([]byte, n)
	for i := 0; i < nseg; i++ {
		if err := unpackBits(seg, frame[offs[i]:offs[i+1]]); err != nil {
			return nil, fmt.Errorf("segment %d: %w", i+1, err)
		}
		s, k := i/bpp, bpp-1-i%bpp
		plane := native[s*n*bpp:]
		for j, b := range seg {
			plane[j*bpp+k] = b
		}
	}
	px := newPixels(info)
	unpackNative(px.Data, native, info)
	if spp > 1 {
		interleave(px.Data, spp)
	}
	if px.PhotometricInterpretation == "YBR_FULL_422" {
		// RLE keeps every sample; a 422 label here is a mislabel.
		px.PhotometricInterpretation = "YBR_FULL"
	}
	return px, nil
}

// unpackBits decodes one PackBits segment into exactly len(dst) bytes.
// Extra output (encoders pad segments to even length) is ignored; short
// output is an error.
func unpackBits(dst, src []byte) error {
	o := 0
	for i := 0; i < len(src) && o < len(dst); {
		c := int(int8(src[i]))
		i++
		switch {
		case c >= 0:
			n := c + 1
			if i+n > len(src) {
				return fmt.Errorf("%w: RLE literal run past the segment end", ErrCorrupt)
			}
			o += copy(dst[o:], src[i:i+n])
			i += n
		case c != -128:
			if i >= len(src) {
				return fmt.Errorf("%w: RLE replicate run past the segment end", ErrCorrupt)
			}
			b := src[i]
			i++
			for n := 1 - c; n > 0 && o < len(dst); n-- {
				dst[o] = b
				o++
			}
		}
	}
	if o < len(dst) {
		return fmt.Errorf("%w: RLE segment decodes to %d bytes, want %d", ErrCorrupt, o, len(dst))
	}
	return nil
}
