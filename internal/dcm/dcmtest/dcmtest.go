// Package dcmtest writes small synthetic DICOM Part 10 objects for
// tests: a file meta group, a data set of a few attributes in ascending
// tag order, and native or encapsulated pixel data, in Explicit or
// Implicit VR Little Endian, whatever the transfer syntax UID claims (so
// a test can label bytes with a syntax they are not in).
package dcmtest

import (
	"encoding/binary"
	"maps"
	"slices"
	"strconv"

	"github.com/cloudpacs/pacs/internal/dcm"
)

// Transfer syntax and SOP class UIDs the tests use.
const (
	ImplicitVRLittleEndian = "1.2.840.10008.1.2"
	ExplicitVRLittleEndian = "1.2.840.10008.1.2.1"
	ExplicitVRBigEndian    = "1.2.840.10008.1.2.2"
	JPEGBaseline8Bit       = "1.2.840.10008.1.2.4.50"
	JPEGLosslessSV1        = "1.2.840.10008.1.2.4.70"
	RLELossless            = "1.2.840.10008.1.2.5"
	SecondaryCapture       = "1.2.840.10008.5.1.4.1.1.7"
)

// Tags of the attributes Image sets.
const (
	TagSOPClassUID               dcm.Tag = 0x00080016
	TagSOPInstanceUID            dcm.Tag = 0x00080018
	TagModality                  dcm.Tag = 0x00080060
	TagPatientName               dcm.Tag = 0x00100010
	TagPatientID                 dcm.Tag = 0x00100020
	TagStudyInstanceUID          dcm.Tag = 0x0020000D
	TagSeriesInstanceUID         dcm.Tag = 0x0020000E
	TagInstanceNumber            dcm.Tag = 0x00200013
	TagSamplesPerPixel           dcm.Tag = 0x00280002
	TagPhotometricInterpretation dcm.Tag = 0x00280004
	TagPlanarConfiguration       dcm.Tag = 0x00280006
	TagNumberOfFrames            dcm.Tag = 0x00280008
	TagRows                      dcm.Tag = 0x00280010
	TagColumns                   dcm.Tag = 0x00280011
	TagBitsAllocated             dcm.Tag = 0x00280100
	TagBitsStored                dcm.Tag = 0x00280101
	TagHighBit                   dcm.Tag = 0x00280102
	TagPixelRepresentation       dcm.Tag = 0x00280103
	TagPixelData                 dcm.Tag = 0x7FE00010
)

type element struct {
	vr    string
	value []byte
	// encap: encapsulated PixelData (undefined length) of frags, after
	// an empty Basic Offset Table.
	encap bool
	frags [][]byte
}

// Object is a synthetic instance under construction. The zero value is
// not usable; start with New or Image.
type Object struct {
	// TransferSyntaxUID is written into the file meta group.
	TransferSyntaxUID string
	// Implicit encodes the data set in Implicit VR Little Endian
	// instead of Explicit VR Little Endian.
	Implicit bool
	elems    map[dcm.Tag]element
}

// New starts an object labelled with transfer syntax ts, encoded in
// Explicit VR Little Endian.
func New(ts string) *Object {
	return &Object{TransferSyntaxUID: ts, elems: map[dcm.Tag]element{}}
}

// Image is a Secondary Capture image with the identifying attributes and
// the Image Pixel module of rows × cols, spp samples of bits bits
// (MONOCHROME2 or RGB), frames frames (NumberOfFrames only when > 1),
// and no PixelData yet.
func Image(ts, study, series, sop string, rows, cols, spp, bits, frames int) *Object {
	o := New(ts).
		Str(TagSOPClassUID, "UI", SecondaryCapture).
		Str(TagSOPInstanceUID, "UI", sop).
		Str(TagModality, "CS", "OT").
		Str(TagPatientName, "PN", "SYNTHETIC^IMAGE").
		Str(TagPatientID, "LO", "SYN0001").
		Str(TagStudyInstanceUID, "UI", study).
		Str(TagSeriesInstanceUID, "UI", series).
		Str(TagInstanceNumber, "IS", "1").
		US(TagSamplesPerPixel, uint16(spp)).
		US(TagRows, uint16(rows)).
		US(TagColumns, uint16(cols)).
		US(TagBitsAllocated, uint16(bits)).
		US(TagBitsStored, uint16(bits)).
		US(TagHighBit, uint16(bits-1)).
		US(TagPixelRepresentation, 0)
	if spp == 3 {
		o.Str(TagPhotometricInterpretation, "CS", "RGB").US(TagPlanarConfiguration, 0)
	} else {
		o.Str(TagPhotometricInterpretation, "CS", "MONOCHROME2")
	}
	if frames > 1 {
		o.Str(TagNumberOfFrames, "IS", strconv.Itoa(frames))
	}
	return o
}

// Str sets a string attribute (padded to even length on write).
func (o *Object) Str(t dcm.Tag, vr, s string) *Object {
	o.elems[t] = element{vr: vr, value: []byte(s)}
	return o
}

// US sets an unsigned short attribute.
func (o *Object) US(t dcm.Tag, v ...uint16) *Object {
	var b []byte
	for _, x := range v {
		b = binary.LittleEndian.AppendUint16(b, x)
	}
	o.elems[t] = element{vr: "US", value: b}
	return o
}

// Raw sets an attribute to value as is (no padding).
func (o *Object) Raw(t dcm.Tag, vr string, value []byte) *Object {
	o.elems[t] = element{vr: vr, value: value}
	return o
}

// Delete removes an attribute.
func (o *Object) Delete(t dcm.Tag) *Object {
	delete(o.elems, t)
	return o
}

// Native sets PixelData to px with a defined length (OB when
// BitsAllocated is 8 or less, else OW), not padded: an odd length stays
// odd.
func (o *Object) Native(px []byte) *Object {
	vr := "OW"
	if e, ok := o.elems[TagBitsAllocated]; ok && len(e.value) >= 2 && binary.LittleEndian.Uint16(e.value) <= 8 {
		vr = "OB"
	}
	o.elems[TagPixelData] = element{vr: vr, value: px}
	return o
}

// Encapsulated sets PixelData to undefined-length encapsulated data: an
// empty Basic Offset Table, then one item per fragment.
func (o *Object) Encapsulated(frags ...[]byte) *Object {
	o.elems[TagPixelData] = element{vr: "OB", encap: true, frags: frags}
	return o
}

// Bytes is the Part 10 object: preamble, "DICM", meta group, data set.
func (o *Object) Bytes() []byte {
	sop := string(o.elems[TagSOPInstanceUID].value)
	class := string(o.elems[TagSOPClassUID].value)
	var meta []byte
	meta = appendExplicit(meta, 0x00020001, "OB", []byte{0, 1})
	meta = appendExplicit(meta, 0x00020002, "UI", pad("UI", []byte(class)))
	meta = appendExplicit(meta, 0x00020003, "UI", pad("UI", []byte(sop)))
	meta = appendExplicit(meta, 0x00020010, "UI", pad("UI", []byte(o.TransferSyntaxUID)))
	out := append(make([]byte, 128), "DICM"...)
	out = appendExplicit(out, 0x00020000, "UL", binary.LittleEndian.AppendUint32(nil, uint32(len(meta))))
	out = append(out, meta...)
	for _, t := range slices.Sorted(maps.Keys(o.elems)) {
		e := o.elems[t]
		if e.encap {
			out = appendHeader(out, t, e.vr, 0xFFFFFFFF, o.Implicit)
			out = appendItem(out, nil) // empty Basic Offset Table
			for _, f := range e.frags {
				out = appendItem(out, f)
			}
			out = binary.LittleEndian.AppendUint32(out, 0xE0DDFFFE) // sequence delimiter (FFFE,E0DD)
			out = binary.LittleEndian.AppendUint32(out, 0)
			continue
		}
		v := e.value
		if t != TagPixelData && e.vr != "US" {
			v = pad(e.vr, v)
		}
		out = appendHeader(out, t, e.vr, uint32(len(v)), o.Implicit)
		out = append(out, v...)
	}
	return out
}

func appendItem(b, v []byte) []byte {
	b = binary.LittleEndian.AppendUint32(b, 0xE000FFFE) // item (FFFE,E000)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(v)))
	return append(b, v...)
}

func appendExplicit(b []byte, t dcm.Tag, vr string, v []byte) []byte {
	return append(appendHeader(b, t, vr, uint32(len(v)), false), v...)
}

func appendHeader(b []byte, t dcm.Tag, vr string, n uint32, implicit bool) []byte {
	b = binary.LittleEndian.AppendUint16(b, t.Group())
	b = binary.LittleEndian.AppendUint16(b, t.Element())
	if implicit {
		return binary.LittleEndian.AppendUint32(b, n)
	}
	b = append(b, vr...)
	switch vr {
	case "OB", "OD", "OF", "OL", "OV", "OW", "SQ", "UC", "UN", "UR", "UT", "SV", "UV":
		b = append(b, 0, 0)
		return binary.LittleEndian.AppendUint32(b, n)
	}
	return binary.LittleEndian.AppendUint16(b, uint16(n))
}

// pad makes v even-length: UI and binary values with NUL, text with a space.
func pad(vr string, v []byte) []byte {
	if len(v)%2 == 0 {
		return v
	}
	switch vr {
	case "UI", "OB":
		return append(v, 0)
	}
	return append(v, ' ')
}
