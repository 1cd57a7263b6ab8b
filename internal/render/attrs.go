package render

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/cloudpacs/pacs/internal/codec"
)

// Window is a VOI window (PS3.3 C.11.2.1.2). Function is "LINEAR" (also
// for ""), "LINEAR_EXACT" or "SIGMOID".
type Window struct {
	Center, Width float64
	Function      string
}

// LUT is a lookup table with its descriptor (PS3.3 C.11.1.1.1): Data[i]
// is the output for input First+i; inputs below First map to Data[0],
// above the end to the last entry. Bits is the output precision.
type LUT struct {
	First int
	Bits  int
	Data  []uint16
}

func (l *LUT) lookup(v int32) uint16 {
	i := int(v) - l.First
	if i < 0 {
		i = 0
	} else if i >= len(l.Data) {
		i = len(l.Data) - 1
	}
	return l.Data[i]
}

// Attrs are the attributes of an instance the pixel pipeline needs.
type Attrs struct {
	Pixel          codec.PixelInfo
	NumberOfFrames int

	// Modality LUT: RescaleSlope (0 means 1) and RescaleIntercept, or a
	// Modality LUT Sequence LUT (which then wins).
	RescaleSlope, RescaleIntercept float64
	ModalityLUT                    *LUT

	// VOI: the windows of the data set (one per WindowCenter value) and
	// the first VOI LUT Sequence item.
	Windows []Window
	VOILUT  *LUT

	// PresentationLUTShape: "IDENTITY", "INVERSE" or "".
	PresentationLUTShape string

	// Palette colour LUTs (PALETTE COLOR).
	Red, Green, Blue *LUT

	// Text for annotations.
	Text Text

	// Functional groups of enhanced multi-frame objects (ForFrame).
	shared   jsonDataset
	perFrame []jsonDataset
}

// ForFrame returns the attributes of frame n (1-based): for enhanced
// multi-frame objects the Pixel Value Transformation and Frame VOI LUT
// functional groups (per-frame, else shared) replace the top-level
// rescale and window values.
func (a *Attrs) ForFrame(n int) *Attrs {
	if a.shared == nil && a.perFrame == nil {
		return a
	}
	out := *a
	apply := func(g jsonDataset) {
		if g == nil {
			return
		}
		if it := g.items("00289145"); len(it) > 0 { // PixelValueTransformationSequence
			if f := it[0].floats("00281053"); len(f) > 0 && f[0] != 0 {
				out.RescaleSlope = f[0]
			}
			if f := it[0].floats("00281052"); len(f) > 0 {
				out.RescaleIntercept = f[0]
			}
		}
		if it := g.items("00289132"); len(it) > 0 { // FrameVOILUTSequence
			if w := it[0].windows(); len(w) > 0 {
				out.Windows = w
			}
		}
	}
	apply(a.shared)
	if n >= 1 && n <= len(a.perFrame) {
		apply(a.perFrame[n-1])
	}
	return &out
}

func (d jsonDataset) windows() []Window {
	var out []Window
	centers, widths := d.floats("00281050"), d.floats("00281051")
	fns := d.strings("00281056")
	for i := 0; i < len(centers) && i < len(widths); i++ {
		w := Window{Center: centers[i], Width: widths[i]}
		if len(fns) > 0 {
			w.Function = fns[min(i, len(fns)-1)]
		}
		out = append(out, w)
	}
	return out
}

// BulkLoader returns the bytes of a BulkDataURI value of the metadata
// (palette or LUT data too large to be inline), 16-bit words in little
// endian order. May be nil: see AttrsFromJSON.
type BulkLoader func(uri string) ([]byte, error)

// errNoLoader: a LUT is bulk data and AttrsFromJSON has no loader.
var errNoLoader = errors.New("render: bulk LUT data and no loader")

type jsonAttr struct {
	VR           string            `json:"vr"`
	Value        []json.RawMessage `json:"Value"`
	InlineBinary string            `json:"InlineBinary"`
	BulkDataURI  string            `json:"BulkDataURI"`
}

type jsonDataset map[string]jsonAttr

func (d jsonDataset) strings(tag string) []string {
	a, ok := d[tag]
	if !ok {
		return nil
	}
	out := make([]string, 0, len(a.Value))
	for _, v := range a.Value {
		var s string
		if json.Unmarshal(v, &s) == nil {
			out = append(out, strings.TrimSpace(s))
			continue
		}
		out = append(out, strings.TrimSpace(string(v))) // a JSON number
	}
	return out
}

// pn returns the first value of a PN attribute in its Alphabetic
// representation (Ideographic or Phonetic when that is all there is).
func (d jsonDataset) pn(tag string) string {
	a, ok := d[tag]
	if !ok || len(a.Value) == 0 {
		return ""
	}
	var v struct{ Alphabetic, Ideographic, Phonetic string }
	if json.Unmarshal(a.Value[0], &v) != nil {
		return d.str(tag)
	}
	for _, s := range []string{v.Alphabetic, v.Ideographic, v.Phonetic} {
		if s = strings.TrimSpace(s); s != "" {
			return s
		}
	}
	return ""
}

func (d jsonDataset) str(tag string) string {
	if s := d.strings(tag); len(s) > 0 {
		return s[0]
	}
	return ""
}

func (d jsonDataset) floats(tag string) []float64 {
	var out []float64
	for _, s := range d.strings(tag) {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil
		}
		out = append(out, f)
	}
	return out
}

func (d jsonDataset) int(tag string) int {
	f := d.floats(tag)
	if len(f) == 0 {
		return 0
	}
	return int(f[0])
}

func (d jsonDataset) items(tag string) []jsonDataset {
	a, ok := d[tag]
	if !ok {
		return nil
	}
	var out []jsonDataset
	for _, v := range a.Value {
		var it jsonDataset
		if json.Unmarshal(v, &it) == nil {
			out = append(out, it)
		}
	}
	return out
}

// bytes returns the binary value of an OB/OW/US attribute: inline,
// numbers, or through load.
func (d jsonDataset) bytes(tag string, load BulkLoader) ([]byte, error) {
	a, ok := d[tag]
	switch {
	case !ok:
		return nil, nil
	case a.InlineBinary != "":
		return base64.StdEncoding.DecodeString(a.InlineBinary)
	case a.BulkDataURI != "":
		if load == nil {
			return nil, errNoLoader
		}
		return load(a.BulkDataURI)
	}
	// Numbers (US/SS LUT Data): little-endian 16-bit words.
	var out []byte
	for _, v := range a.Value {
		n, err := strconv.Atoi(string(v))
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", codec.ErrCorrupt, tag, err)
		}
		out = binary.LittleEndian.AppendUint16(out, uint16(n))
	}
	return out, nil
}

// lut reads a LUT from a descriptor tag and a data tag of d.
func (d jsonDataset) lut(descTag, dataTag string, load BulkLoader) (*LUT, error) {
	desc := d.floats(descTag)
	if len(desc) != 3 {
		return nil, nil
	}
	n, first, bits := int(desc[0]), int(desc[1]), int(desc[2])
	if n == 0 {
		n = 65536
	}
	// The first value mapped is US or SS depending on the data; a value
	// above 32767 from a US descriptor of a signed image is negative.
	if first > 32767 && d[descTag].VR == "US" {
		first -= 65536
	}
	raw, err := d.bytes(dataTag, load)
	if errors.Is(err, errNoLoader) {
		return nil, nil // see AttrsFromJSON
	}
	if err != nil || raw == nil {
		return nil, err
	}
	l := &LUT{First: first, Bits: bits, Data: make([]uint16, n)}
	switch {
	case len(raw) >= 2*n:
		for i := range l.Data {
			l.Data[i] = binary.LittleEndian.Uint16(raw[2*i:])
		}
	case bits <= 8 && len(raw) >= n:
		// 8-bit entries packed in bytes (allowed for palettes).
		for i := range l.Data {
			l.Data[i] = uint16(raw[i])
		}
	default:
		return nil, fmt.Errorf("%w: LUT data %s has %d bytes for the %d entries of its descriptor %s", codec.ErrCorrupt, dataTag, len(raw), n, descTag)
	}
	if bits <= 0 || bits > 16 {
		l.Bits = 16
	}
	return l, nil
}

// AttrsFromJSON reads Attrs from an instance's DICOM JSON metadata
// (PS3.18 Annex F). LUT data given as BulkDataURIs are read through load;
// with a nil load those LUTs are left nil (for callers that need only
// Pixel; rendering a PALETTE COLOR image without its palettes then fails
// with codec.ErrCorrupt).
func AttrsFromJSON(meta []byte, load BulkLoader) (*Attrs, error) {
	// Stored metadata starts BulkDataURIs with a raw 0x01 byte (see
	// storage.BulkPlaceholder), which JSON forbids in strings.
	if bytes.IndexByte(meta, 0x01) >= 0 {
		meta = bytes.ReplaceAll(meta, []byte{0x01}, nil)
	}
	var d jsonDataset
	if err := json.Unmarshal(meta, &d); err != nil {
		return nil, fmt.Errorf("render: metadata: %w", err)
	}
	a := &Attrs{
		Pixel: codec.PixelInfo{
			Rows:                      d.int("00280010"),
			Columns:                   d.int("00280011"),
			SamplesPerPixel:           d.int("00280002"),
			BitsAllocated:             d.int("00280100"),
			BitsStored:                d.int("00280101"),
			HighBit:                   d.int("00280102"),
			PixelRepresentation:       d.int("00280103"),
			PlanarConfiguration:       d.int("00280006"),
			PhotometricInterpretation: d.str("00280004"),
		},
		NumberOfFrames:       d.int("00280008"),
		RescaleSlope:         1,
		PresentationLUTShape: d.str("20500020"),
		Text: Text{
			PatientName:      d.pn("00100010"),
			PatientID:        d.str("00100020"),
			PatientBirthDate: d.str("00100030"),
			PatientSex:       d.str("00100040"),
			Modality:         d.str("00080060"),
			KVP:              d.str("00180060"),
			SliceThickness:   d.str("00180050"),
		},
	}
	if f := d.floats("00281053"); len(f) > 0 && f[0] != 0 {
		a.RescaleSlope = f[0]
	}
	if f := d.floats("00281052"); len(f) > 0 {
		a.RescaleIntercept = f[0]
	}
	a.Windows = d.windows()
	if it := d.items("52009229"); len(it) > 0 { // SharedFunctionalGroupsSequence
		a.shared = it[0]
	}
	a.perFrame = d.items("52009230") // PerFrameFunctionalGroupsSequence
	var err error
	if it := d.items("00283000"); len(it) > 0 { // ModalityLUTSequence
		if a.ModalityLUT, err = it[0].lut("00283002", "00283006", load); err != nil {
			return nil, err
		}
	}
	if it := d.items("00283010"); len(it) > 0 { // VOILUTSequence
		if a.VOILUT, err = it[0].lut("00283002", "00283006", load); err != nil {
			return nil, err
		}
	}
	if a.Pixel.PhotometricInterpretation == "PALETTE COLOR" {
		if a.Red, err = d.lut("00281101", "00281201", load); err != nil {
			return nil, err
		}
		if a.Green, err = d.lut("00281102", "00281202", load); err != nil {
			return nil, err
		}
		if a.Blue, err = d.lut("00281103", "00281203", load); err != nil {
			return nil, err
		}
	}
	return a, nil
}
