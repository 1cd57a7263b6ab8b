package dcm

import (
	"encoding/binary"
	"errors"
	"math"
	"strconv"
	"strings"
)

// This file declares the package API other packages build on: Parse
// (parse.go), AppendJSON (json.go), ToExplicitLE (convert.go), ParseTag,
// Keyword and DictVR (dict.go), and the Header accessors below.

// BulkThreshold: binary values (OB, OD, OF, OL, OV, OW, UN) longer than
// this many bytes are not kept in memory; they become Element.Bulk spans
// and BulkDataURIs in JSON. PixelData is always bulk. (The Extended Offset
// Table and its lengths, 7FE0,0001-0002, are always kept: Parse needs
// them to locate frames.)
const BulkThreshold = 1024

// Text returns the value of a top-level string attribute of the data set
// as UTF-8 (charset decoded, trailing padding removed, multiple values
// joined by `\`), or "" when absent.
//
// Binary numbers (US, SS, UL, SL, FL, FD, SV, UV) are formatted in
// decimal and joined by `\`; SQ and bulk values give "".
func (h *Header) Text(t Tag) string {
	if h == nil {
		return ""
	}
	e := h.Dataset.find(t)
	if e == nil || e.Bulk != nil {
		return ""
	}
	switch e.VR {
	case "SQ", "OB", "OD", "OF", "OL", "OV", "OW", "UN":
		return ""
	case "AT", "US", "SS", "UL", "SL", "FL", "FD", "SV", "UV":
		b := appendBinaryNumbers(nil, e)
		if len(b) == 0 {
			return ""
		}
		s := string(b[len(`,"Value":[`) : len(b)-1])
		s = strings.ReplaceAll(strings.ReplaceAll(s, `"`, ""), ",", `\`)
		return s
	}
	v := trimValue(e.VR, e.Value)
	var s string
	if charsetVR(e.VR) {
		s = newTextDecoder(h.Dataset.find(tagSpecificCharacterSet)).decode(v)
	} else {
		s = defaultDecode(v)
	}
	switch e.VR {
	case "LT", "ST", "UT", "UR":
		return s
	}
	if strings.IndexByte(s, '\\') < 0 {
		if e.VR == "DS" || e.VR == "IS" {
			return trimSpace(s)
		}
		return trimRightSpace(s)
	}
	parts := splitValues(s)
	for i, p := range parts {
		if e.VR == "DS" || e.VR == "IS" {
			parts[i] = trimSpace(p)
		} else {
			parts[i] = trimRightSpace(p)
		}
	}
	return strings.Join(parts, `\`)
}

// Int returns the first value of a top-level numeric attribute (US, UL,
// SS, SL, IS) or 0 when absent or unparsable.
func (h *Header) Int(t Tag) int {
	if h == nil {
		return 0
	}
	e := h.Dataset.find(t)
	if e == nil {
		return 0
	}
	v, le := e.Value, binary.LittleEndian
	switch e.VR {
	case "US":
		if len(v) >= 2 {
			return int(le.Uint16(v))
		}
	case "SS":
		if len(v) >= 2 {
			return int(int16(le.Uint16(v)))
		}
	case "UL":
		if len(v) >= 4 {
			return int(le.Uint32(v))
		}
	case "SL":
		if len(v) >= 4 {
			return int(int32(le.Uint32(v)))
		}
	case "SV", "UV":
		if len(v) >= 8 {
			x := le.Uint64(v)
			if e.VR == "UV" && x > math.MaxInt64 {
				return 0
			}
			return int(x)
		}
	case "IS":
		s := string(v)
		if i := strings.IndexByte(s, '\\'); i >= 0 {
			s = s[:i]
		}
		n, err := strconv.Atoi(strings.Trim(s, " \x00"))
		if err == nil {
			return n
		}
	}
	return 0
}

// Bulk lists every bulk value of the data set by path, for BulkDataURI
// retrieval; PixelData is "7FE00010".
//
// For encapsulated pixel data the span covers the whole value: every
// item (Basic Offset Table and fragments) with its 8-byte item header,
// without the sequence delimiter.
func (h *Header) Bulk() []BulkRef {
	if h == nil {
		return nil
	}
	return appendBulk(nil, h.Dataset, "")
}

func appendBulk(out []BulkRef, ds *Dataset, path string) []BulkRef {
	if ds == nil {
		return out
	}
	for _, e := range ds.Elements {
		switch {
		case e.Bulk != nil:
			out = append(out, BulkRef{Path: elementPath(path, e.Tag), VR: e.VR, Span: *e.Bulk})
		case len(e.Items) > 0:
			p := elementPath(path, e.Tag)
			for i, it := range e.Items {
				out = appendBulk(out, it, p+"/"+strconv.Itoa(i))
			}
		}
	}
	return out
}

// BulkRef is one bulk value and where it is in the stored object.
type BulkRef struct {
	// Path names the element: top level "00420011"; nested values
	// "00540016/0/00181072" (sequence tag / item index / tag ...).
	Path string
	VR   string
	Span Span
}

// ErrUnsupported marks a conversion the package cannot do.
var ErrUnsupported = errors.New("dcm: unsupported")
