package dcm

import (
	"errors"
	"io"
)

// This file declares the package API other packages build on. The bodies
// are placeholders until the parser lands; signatures are the contract.

var errTODO = errors.New("dcm: not implemented yet")

// BulkThreshold: binary values (OB, OD, OF, OL, OV, OW, UN) longer than
// this many bytes are not kept in memory; they become Element.Bulk spans
// and BulkDataURIs in JSON. PixelData is always bulk.
const BulkThreshold = 1024

// Parse reads one DICOM Part 10 stream from r to EOF in a single pass,
// with memory bounded by the size of the non-bulk attributes (bulk values
// are skipped with io.CopyN to io.Discard, never buffered). Errors wrap
// ErrInvalid for malformed input. It reads r to EOF on success so that a
// caller teeing r into a blob and a hash sees every byte.
func Parse(r io.Reader) (*Header, error) { return nil, errTODO }

// AppendJSON appends the DICOM JSON object (PS3.18 Annex F) of the main
// data set of h to dst. Bulk values become {"vr":..,"BulkDataURI":
// BulkPlaceholder+"/bulk/<path>"} where path is the tag path as in
// BulkPath. Strings are decoded to UTF-8 using SpecificCharacterSet.
func AppendJSON(dst []byte, h *Header) []byte { return dst }

// Text returns the value of a top-level string attribute of the data set
// as UTF-8 (charset decoded, trailing padding removed, multiple values
// joined by `\`), or "" when absent.
func (h *Header) Text(t Tag) string { return "" }

// Int returns the first value of a top-level numeric attribute (US, UL,
// SS, SL, IS) or 0 when absent or unparsable.
func (h *Header) Int(t Tag) int { return 0 }

// Bulk lists every bulk value of the data set by path, for BulkDataURI
// retrieval; PixelData is "7FE00010".
func (h *Header) Bulk() []BulkRef { return nil }

// BulkRef is one bulk value and where it is in the stored object.
type BulkRef struct {
	// Path names the element: top level "00420011"; nested values
	// "00540016/0/00181072" (sequence tag / item index / tag ...).
	Path string
	VR   string
	Span Span
}

// ToExplicitLE streams the Part 10 object in r, stored in any
// uncompressed transfer syntax (implicit VR LE, explicit VR BE, deflated
// explicit VR LE, explicit VR LE), to w as an Explicit VR Little Endian
// Part 10 object. Encapsulated (compressed) input returns an error
// wrapping ErrUnsupported. Memory stays bounded.
func ToExplicitLE(w io.Writer, r io.Reader) error { return errTODO }

// ErrUnsupported marks a conversion the package cannot do.
var ErrUnsupported = errors.New("dcm: unsupported")

// ParseTag accepts "0020000D", "0020,000D", "(0020,000D)" or a keyword
// ("StudyInstanceUID").
func ParseTag(s string) (Tag, bool) { return 0, false }

// Keyword is the dictionary keyword of t, or "" for unknown tags.
func Keyword(t Tag) string { return "" }

// DictVR is the dictionary VR of t ("UN" when unknown; the first VR when
// the dictionary lists several).
func DictVR(t Tag) string { return "UN" }
