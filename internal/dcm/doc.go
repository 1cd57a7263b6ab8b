// Package dcm is the one place in the PACS that parses DICOM.
//
// It reads a Part 10 stream in a single forward pass (Parse), records the
// absolute byte offset of every value, of every native frame and of every
// encapsulated fragment, keeps the non-bulk attributes in memory and skips
// bulk values (PixelData, large OB/OW/UN...) without buffering them. From
// the parsed Header it produces the DICOM JSON model (AppendJSON) and the
// index attributes (Text, Int). ToExplicitLE converts uncompressed
// transfer syntaxes to Explicit VR Little Endian in a stream.
//
// Why hand-written and not github.com/suyashkumar/dicom: that library
// buffers element values and cannot report the byte offsets of frames and
// fragments inside the object. DESIGN.md decisions 1-3 (stream, never
// buffer; parse once at ingest; serve frames by byte range) need exactly
// that, in one streaming pass with bounded memory. The library is still
// used for what it does well: the data dictionary (pkg/tag) and character
// set names (pkg/charset).
//
// Offsets. Every Span is an absolute byte offset into the stored object,
// except for the Deflated Explicit VR Little Endian transfer syntax, where
// the data set after the file meta group is a raw DEFLATE stream: there a
// Span offset is DataSetOffset + the offset inside the inflated data set
// bytes (so inflating the stored bytes from DataSetOffset on and reading
// at Offset-DataSetOffset gives the value).
//
// Limits (all failures wrap ErrInvalid): the values kept in memory for one
// instance (plus a small per-element charge) may not exceed
// MaxRetainedBytes; sequences nest at most maxDepth levels; at most
// maxFrames frames and maxFragments fragments per instance.
package dcm
