//go:build cgo && cgocodecs

package codec

// JPEG-LS (ITU T.87) lossless and near-lossless through CharLS, the
// reference-grade C++ implementation Debian ships (libcharls-dev 2.4,
// its C API). No maintained pure-Go JPEG-LS decoder exists.

/*
#cgo LDFLAGS: -lcharls
#include <stdlib.h>
#include <charls/charls.h>

// pacs_jls_decode runs the whole decode in one call, so that no Go
// pointer outlives the call. It checks the header against the expected
// geometry before CharLS allocates or writes anything.
static int pacs_jls_decode(const void* src, size_t srclen, void* dst, size_t dstlen,
                           int want_w, int want_h, int want_c,
                           charls_frame_info* fi, int* interleave, int* near, size_t* need) {
	charls_jpegls_decoder* d = charls_jpegls_decoder_create();
	if (!d) return -1;
	int rc = charls_jpegls_decoder_set_source_buffer(d, src, srclen);
	if (rc == 0) rc = charls_jpegls_decoder_read_header(d);
	if (rc == 0) rc = charls_jpegls_decoder_get_frame_info(d, fi);
	if (rc == 0) {
		charls_interleave_mode m = CHARLS_INTERLEAVE_MODE_NONE;
		rc = charls_jpegls_decoder_get_interleave_mode(d, &m);
		*interleave = (int)m;
	}
	if (rc == 0) rc = charls_jpegls_decoder_get_near_lossless(d, 0, near);
	if (rc == 0) {
		if ((int)fi->width != want_w || (int)fi->height != want_h || fi->component_count != want_c) {
			charls_jpegls_decoder_destroy(d);
			return -2;
		}
		rc = charls_jpegls_decoder_get_destination_size(d, 0, need);
	}
	if (rc == 0) {
		if (*need > dstlen) {
			charls_jpegls_decoder_destroy(d);
			return -3;
		}
		rc = charls_jpegls_decoder_decode_to_buffer(d, dst, *need, 0);
	}
	charls_jpegls_decoder_destroy(d);
	return rc;
}

static const char* pacs_jls_message(int rc) {
	return charls_get_error_message((charls_jpegls_errc)rc);
}
*/
import "C"

import (
	"encoding/binary"
	"fmt"
	"unsafe"
)

func init() {
	d := DecoderFunc(decodeJPEGLS)
	Register(JPEGLSLossless, d)
	Register(JPEGLSNearLossless, d)
}

func decodeJPEGLS(_ string, frame []byte, info PixelInfo) (*Pixels, error) {
	info, err := info.normalized()
	if err != nil {
		return nil, err
	}
	if len(frame) < 4 || frame[0] != 0xFF || frame[1] != 0xD8 {
		return nil, fmt.Errorf("%w: JPEG-LS stream does not start with SOI", ErrCorrupt)
	}
	// CharLS 2.4 spends seconds on a truncated stream before it fails;
	// a stream without its EOI marker is refused here. (Fragments are
	// padded to even length with a zero byte.)
	end := len(frame)
	for end > 2 && frame[end-1] == 0 {
		end--
	}
	if end < 4 || frame[end-2] != 0xFF || frame[end-1] != 0xD9 {
		return nil, fmt.Errorf("%w: JPEG-LS stream does not end with EOI (truncated?)", ErrCorrupt)
	}
	frame = frame[:end]
	if info.BitsAllocated > 16 {
		return nil, fmt.Errorf("%w: JPEG-LS with BitsAllocated %d", ErrUnsupported, info.BitsAllocated)
	}
	n := info.Rows * info.Columns * info.SamplesPerPixel
	// At most 2 bytes per sample (JPEG-LS precision <= 16).
	dst := make([]byte, 2*n)
	var (
		fi               C.charls_frame_info
		interleave, near C.int
		need             C.size_t
	)
	rc := C.pacs_jls_decode(unsafe.Pointer(&frame[0]), C.size_t(len(frame)), unsafe.Pointer(&dst[0]), C.size_t(len(dst)),
		C.int(info.Columns), C.int(info.Rows), C.int(info.SamplesPerPixel), &fi, &interleave, &near, &need)
	switch rc {
	case 0:
	case -1:
		return nil, fmt.Errorf("codec: CharLS: out of memory")
	case -2:
		return nil, fmt.Errorf("%w: JPEG-LS frame %dx%dx%d, the data set says %dx%dx%d", ErrCorrupt,
			fi.width, fi.height, fi.component_count, info.Columns, info.Rows, info.SamplesPerPixel)
	case -3:
		return nil, fmt.Errorf("%w: JPEG-LS frame needs %d bytes", ErrCorrupt, need)
	default:
		return nil, fmt.Errorf("%w: JPEG-LS: %s", ErrCorrupt, C.GoString(C.pacs_jls_message(rc)))
	}
	bps := int(fi.bits_per_sample)
	bpsBytes := 1
	if bps > 8 {
		bpsBytes = 2
	}
	if int(need) != n*bpsBytes {
		return nil, fmt.Errorf("%w: JPEG-LS decoded %d bytes for %d samples of %d bits", ErrCorrupt, need, n, bps)
	}
	px := newPixels(info)
	// The decoded sample is the pixel cell as it would be stored natively:
	// mask to BitsStored/HighBit and sign-extend like native data.
	conv := sampleConv(info)
	spp := info.SamplesPerPixel
	planar := interleave == C.CHARLS_INTERLEAVE_MODE_NONE && spp > 1
	plane := info.Rows * info.Columns
	for i := 0; i < n; i++ {
		var v uint32
		if bpsBytes == 1 {
			v = uint32(dst[i])
		} else {
			v = uint32(binary.LittleEndian.Uint16(dst[2*i:]))
		}
		j := i
		if planar {
			j = (i%plane)*spp + i/plane
		}
		px.Data[j] = conv(v)
	}
	return px, nil
}
