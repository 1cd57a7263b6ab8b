//go:build cgo && cgocodecs

package codec

// JPEG 2000 (ISO 15444-1, J2K codestream or JP2 file) lossless and
// lossy, and HTJ2K (ISO 15444-15), through OpenJPEG, which Debian ships
// (libopenjp2-7-dev 2.5; HTJ2K decoding since 2.5.0). The pure-Go JPEG
// 2000 decoders on the module proxy are young and partial.

/*
#cgo LDFLAGS: -lopenjp2
#include <stdlib.h>
#include <string.h>
#include <openjpeg-2.5/openjpeg.h> // Debian libopenjp2-7-dev; no pkg-config needed

typedef struct {
	const OPJ_BYTE* data;
	OPJ_SIZE_T len;
	OPJ_SIZE_T pos;
} pacs_mem;

static OPJ_SIZE_T pacs_read(void* buf, OPJ_SIZE_T n, void* user) {
	pacs_mem* m = (pacs_mem*)user;
	if (m->pos >= m->len) return (OPJ_SIZE_T)-1;
	OPJ_SIZE_T k = m->len - m->pos;
	if (k > n) k = n;
	memcpy(buf, m->data + m->pos, k);
	m->pos += k;
	return k;
}

static OPJ_OFF_T pacs_skip(OPJ_OFF_T n, void* user) {
	pacs_mem* m = (pacs_mem*)user;
	if (n < 0) {
		if ((OPJ_SIZE_T)(-n) > m->pos) n = -(OPJ_OFF_T)m->pos;
	} else if ((OPJ_SIZE_T)n > m->len - m->pos) {
		n = (OPJ_OFF_T)(m->len - m->pos);
	}
	m->pos += n;
	return n;
}

static OPJ_BOOL pacs_seek(OPJ_OFF_T n, void* user) {
	pacs_mem* m = (pacs_mem*)user;
	if (n < 0 || (OPJ_SIZE_T)n > m->len) return OPJ_FALSE;
	m->pos = (OPJ_SIZE_T)n;
	return OPJ_TRUE;
}

typedef struct {
	char msg[256];
} pacs_err;

static void pacs_on_error(const char* msg, void* user) {
	pacs_err* e = (pacs_err*)user;
	if (e->msg[0] == 0) {
		strncpy(e->msg, msg, sizeof(e->msg) - 1);
		size_t l = strlen(e->msg);
		while (l > 0 && (e->msg[l-1] == '\n' || e->msg[l-1] == ' ')) e->msg[--l] = 0;
	}
}

static void pacs_quiet(const char* msg, void* user) { (void)msg; (void)user; }

// pacs_j2k_decode decodes src (format OPJ_CODEC_J2K or OPJ_CODEC_JP2)
// in one call (no Go pointer is kept). The header is checked against
// the expected geometry before any tile is decoded, so a lying
// codestream cannot make OpenJPEG allocate more than the data set's
// frame. Return: 0 ok, -1 setup, -2 header, -3 geometry, -4 decode.
static int pacs_j2k_decode(const void* src, size_t srclen, int format,
                           int want_w, int want_h, int want_c,
                           opj_image_t** out, pacs_err* err) {
	pacs_mem mem = { (const OPJ_BYTE*)src, srclen, 0 };
	*out = NULL;
	opj_codec_t* codec = opj_create_decompress((OPJ_CODEC_FORMAT)format);
	if (!codec) return -1;
	opj_set_error_handler(codec, pacs_on_error, err);
	opj_set_warning_handler(codec, pacs_quiet, NULL);
	opj_set_info_handler(codec, pacs_quiet, NULL);
	opj_dparameters_t p;
	opj_set_default_decoder_parameters(&p);
	if (!opj_setup_decoder(codec, &p)) { opj_destroy_codec(codec); return -1; }
	opj_decoder_set_strict_mode(codec, OPJ_TRUE);
	opj_stream_t* s = opj_stream_create(1 << 16, OPJ_TRUE);
	if (!s) { opj_destroy_codec(codec); return -1; }
	opj_stream_set_user_data(s, &mem, NULL);
	opj_stream_set_user_data_length(s, srclen);
	opj_stream_set_read_function(s, pacs_read);
	opj_stream_set_skip_function(s, pacs_skip);
	opj_stream_set_seek_function(s, pacs_seek);
	opj_image_t* img = NULL;
	int rc = 0;
	if (!opj_read_header(s, codec, &img)) {
		rc = -2;
	} else if ((int)(img->x1 - img->x0) != want_w || (int)(img->y1 - img->y0) != want_h ||
	           (int)img->numcomps != want_c) {
		rc = -3;
	} else {
		// Many tiny tiles cost time and memory out of proportion.
		opj_codestream_info_v2_t* ci = opj_get_cstr_info(codec);
		if (!ci || (OPJ_UINT64)ci->tw * ci->th > 4096) rc = -3;
		if (ci) opj_destroy_cstr_info(&ci);
		for (OPJ_UINT32 i = 0; rc == 0 && i < img->numcomps; i++) {
			opj_image_comp_t* c = &img->comps[i];
			if (c->dx != 1 || c->dy != 1 || c->prec < 1 || c->prec > 31) { rc = -3; break; }
		}
		if (rc == 0 && (!opj_decode(codec, s, img) || !opj_end_decompress(codec, s))) rc = -4;
	}
	opj_stream_destroy(s);
	opj_destroy_codec(codec);
	if (rc != 0) {
		if (img) opj_image_destroy(img);
		return rc;
	}
	*out = img;
	return 0;
}

static opj_image_comp_t* pacs_comp(opj_image_t* img, int i) { return &img->comps[i]; }
*/
import "C"

import (
	"bytes"
	"fmt"
	"unsafe"
)

func init() {
	d := DecoderFunc(decodeJPEG2000)
	for _, ts := range []string{JPEG2000Lossless, JPEG2000, HTJ2KLossless, HTJ2KLosslessRPCL, HTJ2K} {
		Register(ts, d)
	}
}

var jp2Signature = []byte{0, 0, 0, 0x0C, 'j', 'P', ' ', ' ', 0x0D, 0x0A, 0x87, 0x0A}

func decodeJPEG2000(ts string, frame []byte, info PixelInfo) (*Pixels, error) {
	info, err := info.normalized()
	if err != nil {
		return nil, err
	}
	var format C.int
	switch {
	case len(frame) >= 4 && frame[0] == 0xFF && frame[1] == 0x4F && frame[2] == 0xFF && frame[3] == 0x51:
		format = C.OPJ_CODEC_J2K
	case bytes.HasPrefix(frame, jp2Signature):
		format = C.OPJ_CODEC_JP2
	default:
		return nil, fmt.Errorf("%w: %s frame is neither a J2K codestream nor a JP2 file", ErrCorrupt, Name(ts))
	}
	var (
		img *C.opj_image_t
		e   C.pacs_err
	)
	rc := C.pacs_j2k_decode(unsafe.Pointer(&frame[0]), C.size_t(len(frame)), format,
		C.int(info.Columns), C.int(info.Rows), C.int(info.SamplesPerPixel), &img, &e)
	msg := C.GoString(&e.msg[0])
	switch rc {
	case 0:
	case -1:
		return nil, fmt.Errorf("codec: OpenJPEG set-up failed")
	case -3:
		return nil, fmt.Errorf("%w: %s codestream geometry (size, components, subsampling or precision) does not match the data set's %dx%dx%d",
			ErrCorrupt, Name(ts), info.Columns, info.Rows, info.SamplesPerPixel)
	default:
		if msg == "" {
			msg = "decode failed"
		}
		return nil, fmt.Errorf("%w: %s: %s", ErrCorrupt, Name(ts), msg)
	}
	defer C.opj_image_destroy(img)
	px := newPixels(info)
	spp := info.SamplesPerPixel
	plane := info.Rows * info.Columns
	// The decoded sample is the pixel cell: masked to BitsStored/HighBit
	// and sign-extended like native data. Encoders such as GDCM declare
	// 16-bit precision for 12-bit data; a lossy decode can then overshoot
	// the BitsStored range, so such values are clamped rather than
	// wrapped.
	conv := sampleConv(info)
	lo, hi := int32(0), int32(1)<<uint(info.BitsStored)-1
	if info.PixelRepresentation == 1 {
		lo, hi = -(int32(1) << uint(info.BitsStored-1)), int32(1)<<uint(info.BitsStored-1)-1
	}
	for c := 0; c < spp; c++ {
		comp := C.pacs_comp(img, C.int(c))
		if comp.data == nil {
			return nil, fmt.Errorf("%w: %s: component %d not decoded", ErrCorrupt, Name(ts), c)
		}
		src := unsafe.Slice((*int32)(unsafe.Pointer(comp.data)), plane)
		wide := int(comp.prec) > info.BitsStored
		for i, v := range src {
			if wide {
				v = min(max(v, lo), hi)
				px.Data[i*spp+c] = v
				continue
			}
			px.Data[i*spp+c] = conv(uint32(v))
		}
	}
	if spp == 3 {
		switch info.PhotometricInterpretation {
		case "YBR_ICT", "YBR_RCT":
			// OpenJPEG undid the component transform (COD MCT=1).
			px.PhotometricInterpretation = "RGB"
		}
	}
	return px, nil
}
