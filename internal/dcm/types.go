package dcm

import (
	"errors"
)

// ErrInvalid marks input that is not a well-formed DICOM Part 10 stream
// (bad preamble, lying lengths, truncation, missing required UIDs).
// Callers map it to STOW failure reason 0xC000 / HTTP 400.
var ErrInvalid = errors.New("dcm: invalid DICOM")

// Tag is a DICOM attribute tag, group in the high 16 bits: 0x7FE00010.
type Tag uint32

// Group and Element split a tag.
func (t Tag) Group() uint16   { return uint16(t >> 16) }
func (t Tag) Element() uint16 { return uint16(t) }

// Span is a byte range [Offset, Offset+Length) inside the stored object
// (for deflated objects: inside the inflated data set stream, see
// Header.Deflated).
type Span struct {
	Offset int64
	Length int64
}

// Frame is one frame of pixel data. Native pixel data: exactly one span.
// Encapsulated pixel data: the fragment values (without item headers)
// that make up the frame, in order; the frame is their concatenation.
type Frame []Span

// Element is one attribute of a parsed data set. Values are kept raw
// (little-endian byte order whatever the source transfer syntax) so that
// JSON conversion and index extraction decide how to interpret them.
type Element struct {
	Tag Tag
	VR  string // two letters; from the stream (explicit VR) or the dictionary (implicit VR)
	// Value holds the raw value bytes, converted to little endian.
	// Nil when the value was left in the object (Bulk != nil) or for SQ.
	Value []byte
	// Items holds sequence items for VR "SQ".
	Items []*Dataset
	// Bulk is set when the value is large binary data kept only in the
	// stored object (PixelData, large OB/OW/OF/OD/OL/OV/UN values). Its
	// offset is that of the value, after the element header.
	Bulk *Span
}

// Dataset is an ordered list of elements (ascending tag order as in the
// stream).
type Dataset struct {
	Elements []*Element
}

// Header is everything ingest learns from one instance in one streaming
// pass: identifiers, the data set without bulk values, and where the
// frames and bulk data live inside the stored bytes.
type Header struct {
	TransferSyntaxUID string
	SOPClassUID       string
	SOPInstanceUID    string
	StudyInstanceUID  string
	SeriesInstanceUID string

	// Meta is the file meta information group (0002,xxxx).
	Meta *Dataset
	// Dataset is the main data set (groups after 0002), bulk values elided.
	Dataset *Dataset

	// Frames locates each frame of PixelData. Empty when the instance has
	// no pixel data.
	Frames []Frame
	// Encapsulated reports compressed (fragment) pixel data.
	Encapsulated bool
	// Deflated reports the Deflated Explicit VR Little Endian transfer
	// syntax: spans then refer to offsets in the inflated data set stream
	// that starts right after the file meta group (DataSetOffset).
	Deflated bool
	// BigEndian reports Explicit VR Big Endian: native frame bytes are
	// stored big-endian and must be swapped for little-endian delivery when
	// BitsAllocated > 8.
	BigEndian bool
	// DataSetOffset is the byte offset of the main data set (after the meta group).
	DataSetOffset int64
	// RetainedBytes is about what the header holds in memory: attribute
	// values and element overhead as charged against MaxRetainedBytes,
	// plus the frame and fragment spans. A pipeline that keeps headers
	// between parse and commit budgets them by it.
	RetainedBytes int64
}
