package codec

import (
	"errors"
	"fmt"
	"sort"
	"sync"
)

// Transfer syntax UIDs the package knows by name.
const (
	ImplicitVRLittleEndian = "1.2.840.10008.1.2"
	ExplicitVRLittleEndian = "1.2.840.10008.1.2.1"
	DeflatedExplicitVRLE   = "1.2.840.10008.1.2.1.99"
	ExplicitVRBigEndian    = "1.2.840.10008.1.2.2"
	JPEGBaseline8Bit       = "1.2.840.10008.1.2.4.50"
	JPEGExtended12Bit      = "1.2.840.10008.1.2.4.51"
	JPEGLossless           = "1.2.840.10008.1.2.4.57"
	JPEGLosslessSV1        = "1.2.840.10008.1.2.4.70"
	JPEGLSLossless         = "1.2.840.10008.1.2.4.80"
	JPEGLSNearLossless     = "1.2.840.10008.1.2.4.81"
	JPEG2000Lossless       = "1.2.840.10008.1.2.4.90"
	JPEG2000               = "1.2.840.10008.1.2.4.91"
	HTJ2KLossless          = "1.2.840.10008.1.2.4.201"
	HTJ2KLosslessRPCL      = "1.2.840.10008.1.2.4.202"
	HTJ2K                  = "1.2.840.10008.1.2.4.203"
	RLELossless            = "1.2.840.10008.1.2.5"
)

// Errors. Every decode failure wraps one of them.
var (
	// ErrUnsupported: no decoder for the transfer syntax is compiled in, or
	// the decoder cannot handle this variant (e.g. an arithmetic-coded JPEG).
	ErrUnsupported = errors.New("codec: unsupported")
	// ErrCorrupt: the frame bytes are malformed or do not match PixelInfo
	// (internal/render uses it too for a palette or LUT that contradicts
	// its descriptor). It describes stored data, not the request: the
	// DICOMweb handlers answer it with 422 and the reason.
	ErrCorrupt = errors.New("codec: corrupt frame")
)

// PixelInfo is what the data set says about the pixel data (Image Pixel
// module, PS3.3 C.7.6.3).
type PixelInfo struct {
	Rows, Columns       int
	SamplesPerPixel     int // 0 means 1
	BitsAllocated       int
	BitsStored          int // 0 means BitsAllocated
	HighBit             int // 0 with BitsStored != 1 means BitsStored-1
	PixelRepresentation int // 1: two's complement signed
	PlanarConfiguration int // 1: colour-by-plane (native and RLE input only)
	// PhotometricInterpretation as stored (MONOCHROME2, YBR_FULL_422, ...).
	PhotometricInterpretation string
}

// normalized fills the defaults and checks the values are sane.
func (p PixelInfo) normalized() (PixelInfo, error) {
	if p.SamplesPerPixel == 0 {
		p.SamplesPerPixel = 1
	}
	if p.BitsStored == 0 {
		p.BitsStored = p.BitsAllocated
	}
	if p.HighBit == 0 || p.HighBit < p.BitsStored-1 {
		p.HighBit = p.BitsStored - 1
	}
	switch {
	case p.Rows <= 0 || p.Columns <= 0 || p.Rows > 65535 || p.Columns > 65535:
		return p, fmt.Errorf("%w: %dx%d pixels", ErrCorrupt, p.Columns, p.Rows)
	case p.SamplesPerPixel != 1 && p.SamplesPerPixel != 3:
		return p, fmt.Errorf("%w: SamplesPerPixel %d", ErrUnsupported, p.SamplesPerPixel)
	case p.BitsAllocated != 1 && p.BitsAllocated != 8 && p.BitsAllocated != 16 && p.BitsAllocated != 32:
		return p, fmt.Errorf("%w: BitsAllocated %d", ErrUnsupported, p.BitsAllocated)
	case p.BitsStored < 1 || p.BitsStored > p.BitsAllocated || p.HighBit >= p.BitsAllocated:
		return p, fmt.Errorf("%w: BitsStored %d HighBit %d of BitsAllocated %d", ErrCorrupt, p.BitsStored, p.HighBit, p.BitsAllocated)
	case p.Rows*p.Columns > 1<<28:
		return p, fmt.Errorf("%w: %dx%d pixels is too large", ErrUnsupported, p.Columns, p.Rows)
	}
	return p, nil
}

// Pixels is one decoded frame: sample values as integers, interleaved
// (R,G,B,R,G,B... for colour), rows top to bottom. Values are the stored
// values after BitsStored/HighBit masking and sign extension, before any
// Modality LUT.
type Pixels struct {
	Rows, Columns   int
	SamplesPerPixel int
	// BitsStored is the precision of the values (signed: including the
	// sign bit).
	BitsStored int
	Signed     bool
	// PhotometricInterpretation of Data: as stored, except where the
	// decoder converted colour (JPEG baseline YBR → "RGB", YBR_FULL_422
	// upsampled → "YBR_FULL", JPEG 2000 YBR_ICT/YBR_RCT → "RGB").
	PhotometricInterpretation string
	Data                      []int32
}

// Decoder turns one frame, as stored (native bytes little endian;
// encapsulated: the codestream), into Pixels.
type Decoder interface {
	Decode(ts string, frame []byte, info PixelInfo) (*Pixels, error)
}

// DecoderFunc adapts a function to Decoder.
type DecoderFunc func(ts string, frame []byte, info PixelInfo) (*Pixels, error)

// Decode calls f.
func (f DecoderFunc) Decode(ts string, frame []byte, info PixelInfo) (*Pixels, error) {
	return f(ts, frame, info)
}

var (
	mu       sync.RWMutex
	registry = map[string]Decoder{}
)

// Register makes d the decoder of transfer syntax ts, replacing any
// earlier one. The pure-Go decoders register themselves; optional cgo
// decoders (build tags) do too.
func Register(ts string, d Decoder) {
	mu.Lock()
	defer mu.Unlock()
	registry[ts] = d
}

// Lookup returns the decoder of ts.
func Lookup(ts string) (Decoder, bool) {
	mu.RLock()
	defer mu.RUnlock()
	d, ok := registry[ts]
	return d, ok
}

// Supported lists the transfer syntaxes with a decoder, sorted.
func Supported() []string {
	mu.RLock()
	defer mu.RUnlock()
	out := make([]string, 0, len(registry))
	for ts := range registry {
		out = append(out, ts)
	}
	sort.Strings(out)
	return out
}

// Decode decodes frame with the decoder registered for ts. A syntax
// without decoder gives an error wrapping ErrUnsupported that names it.
func Decode(ts string, frame []byte, info PixelInfo) (*Pixels, error) {
	d, ok := Lookup(ts)
	if !ok {
		hint := ""
		if !cgoBuild && needsCgo(ts) {
			hint = "; this build has no decoder for it: build with -tags cgocodecs (make build does; needs gcc, libcharls-dev and libopenjp2-7-dev)"
		}
		return nil, fmt.Errorf("%w: no decoder for transfer syntax %s (%s) in this build%s", ErrUnsupported, ts, Name(ts), hint)
	}
	return d.Decode(ts, frame, info)
}

// needsCgo reports the syntaxes decoded through C libraries.
func needsCgo(ts string) bool {
	switch ts {
	case JPEGLSLossless, JPEGLSNearLossless, JPEG2000Lossless, JPEG2000, HTJ2KLossless, HTJ2KLosslessRPCL, HTJ2K:
		return true
	}
	return false
}

// Name is the short name of a transfer syntax, for messages.
func Name(ts string) string {
	switch ts {
	case ImplicitVRLittleEndian:
		return "Implicit VR Little Endian"
	case ExplicitVRLittleEndian:
		return "Explicit VR Little Endian"
	case DeflatedExplicitVRLE:
		return "Deflated Explicit VR Little Endian"
	case ExplicitVRBigEndian:
		return "Explicit VR Big Endian"
	case JPEGBaseline8Bit:
		return "JPEG Baseline"
	case JPEGExtended12Bit:
		return "JPEG Extended 12-bit"
	case JPEGLossless, JPEGLosslessSV1:
		return "JPEG Lossless"
	case JPEGLSLossless:
		return "JPEG-LS Lossless"
	case JPEGLSNearLossless:
		return "JPEG-LS Near-Lossless"
	case JPEG2000Lossless, JPEG2000:
		return "JPEG 2000"
	case HTJ2KLossless, HTJ2KLosslessRPCL, HTJ2K:
		return "HTJ2K"
	case RLELossless:
		return "RLE Lossless"
	}
	return "unknown"
}

// newPixels allocates the output for info.
func newPixels(info PixelInfo) *Pixels {
	return &Pixels{
		Rows:                      info.Rows,
		Columns:                   info.Columns,
		SamplesPerPixel:           info.SamplesPerPixel,
		BitsStored:                info.BitsStored,
		Signed:                    info.PixelRepresentation == 1,
		PhotometricInterpretation: info.PhotometricInterpretation,
		Data:                      make([]int32, info.Rows*info.Columns*info.SamplesPerPixel),
	}
}
