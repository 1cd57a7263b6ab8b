package codec

import (
	"encoding/binary"
	"fmt"
)

func init() {
	n := DecoderFunc(decodeNative)
	for _, ts := range []string{ImplicitVRLittleEndian, ExplicitVRLittleEndian, DeflatedExplicitVRLE, ExplicitVRBigEndian} {
		Register(ts, n)
	}
}

// decodeNative reads uncompressed pixel data, little endian (the archive
// swaps big-endian and inflates deflated objects before a frame gets
// here), any BitsAllocated of 1, 8, 16 or 32, either planar
// configuration, and YBR_FULL_422 (two luminance samples share one pair
// of chrominance samples, PS3.3 C.7.6.3.1.2), which comes out as YBR_FULL.
func decodeNative(_ string, frame []byte, info PixelInfo) (*Pixels, error) {
	info, err := info.normalized()
	if err != nil {
		return nil, err
	}
	if info.PhotometricInterpretation == "YBR_FULL_422" && info.SamplesPerPixel == 3 {
		return decodeNative422(frame, info)
	}
	// The length is checked before the samples are allocated: a short
	// frame claiming a large image costs nothing.
	n := info.Rows * info.Columns * info.SamplesPerPixel
	if need := (n*info.BitsAllocated + 7) / 8; len(frame) < need {
		return nil, fmt.Errorf("%w: native frame has %d bytes, %dx%dx%d samples of %d bits need %d",
			ErrCorrupt, len(frame), info.Columns, info.Rows, info.SamplesPerPixel, info.BitsAllocated, need)
	}
	px := newPixels(info)
	unpackNative(px.Data, frame, info)
	if info.PlanarConfiguration == 1 && info.SamplesPerPixel > 1 {
		interleave(px.Data, info.SamplesPerPixel)
	}
	return px, nil
}

// unpackNative fills dst with the masked, sign-extended samples of src in
// storage order.
func unpackNative(dst []int32, src []byte, info PixelInfo) {
	shift := uint(info.HighBit + 1 - info.BitsStored)
	bits := uint(info.BitsStored)
	signed := info.PixelRepresentation == 1
	conv := sampleConv(info)
	switch info.BitsAllocated {
	case 1:
		for i := range dst {
			dst[i] = int32(src[i>>3] >> (uint(i) & 7) & 1)
		}
	case 8:
		// Fast path: full 8 bits.
		if shift == 0 && bits == 8 {
			if signed {
				for i := range dst {
					dst[i] = int32(int8(src[i]))
				}
			} else {
				for i := range dst {
					dst[i] = int32(src[i])
				}
			}
			return
		}
		for i := range dst {
			dst[i] = conv(uint32(src[i]))
		}
	case 16:
		src = src[:2*len(dst)]
		if shift == 0 && bits == 16 {
			if signed {
				for i := range dst {
					dst[i] = int32(int16(binary.LittleEndian.Uint16(src[2*i:])))
				}
			} else {
				for i := range dst {
					dst[i] = int32(binary.LittleEndian.Uint16(src[2*i:]))
				}
			}
			return
		}
		for i := range dst {
			dst[i] = conv(uint32(binary.LittleEndian.Uint16(src[2*i:])))
		}
	case 32:
		for i := range dst {
			v := binary.LittleEndian.Uint32(src[4*i:])
			if !signed && bits == 32 && v > 1<<31-1 {
				v = 1<<31 - 1 // clamp: Pixels hold int32
			}
			dst[i] = conv(v)
		}
	}
}

// interleave turns colour-by-plane samples into colour-by-pixel, in place.
func interleave(data []int32, spp int) {
	n := len(data) / spp
	tmp := make([]int32, len(data))
	for s := 0; s < spp; s++ {
		plane := data[s*n : (s+1)*n]
		for i, v := range plane {
			tmp[i*spp+s] = v
		}
	}
	copy(data, tmp)
}

func decodeNative422(frame []byte, info PixelInfo) (*Pixels, error) {
	if info.BitsAllocated != 8 && info.BitsAllocated != 16 {
		return nil, fmt.Errorf("%w: YBR_FULL_422 with BitsAllocated %d", ErrUnsupported, info.BitsAllocated)
	}
	if info.Columns%2 != 0 {
		return nil, fmt.Errorf("%w: YBR_FULL_422 with an odd number of columns (%d)", ErrCorrupt, info.Columns)
	}
	stored := info.Rows * info.Columns * 2 // Y Y Cb Cr per pair of pixels
	bpp := info.BitsAllocated / 8
	if len(frame) < stored*bpp {
		return nil, fmt.Errorf("%w: YBR_FULL_422 frame has %d bytes, want %d", ErrCorrupt, len(frame), stored*bpp)
	}
	raw := make([]int32, stored)
	unpackNative(raw, frame, info)
	px := newPixels(info)
	px.PhotometricInterpretation = "YBR_FULL"
	d := px.Data
	for i, j := 0, 0; i+3 < len(raw); i, j = i+4, j+6 {
		y1, y2, cb, cr := raw[i], raw[i+1], raw[i+2], raw[i+3]
		d[j], d[j+1], d[j+2] = y1, cb, cr
		d[j+3], d[j+4], d[j+5] = y2, cb, cr
	}
	return px, nil
}

// sampleConv returns the function that turns a stored word into a sample
// value: shift down to the high bit, keep BitsStored bits, sign-extend.
func sampleConv(info PixelInfo) func(uint32) int32 {
	shift := uint(info.HighBit + 1 - info.BitsStored)
	bits := uint(info.BitsStored)
	mask := uint32(1)<<bits - 1
	if bits >= 32 {
		mask = ^uint32(0)
	}
	ext := 32 - bits
	if info.PixelRepresentation == 1 {
		return func(v uint32) int32 { return int32(((v>>shift)&mask)<<ext) >> ext }
	}
	return func(v uint32) int32 { return int32((v >> shift) & mask) }
}
