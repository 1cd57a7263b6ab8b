package dcm

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"
)

// BulkPlaceholder starts every BulkDataURI written by AppendJSON; it must
// equal storage.BulkPlaceholder. It is written as a raw byte (not
// escaped), so AppendJSON output is valid JSON only after the serving
// layer replaces it with the instance's retrieve URL.
const BulkPlaceholder = "\x01"

// AppendJSON appends the DICOM JSON object (PS3.18 Annex F) of the main
// data set of h to dst. Bulk values become {"vr":..,"BulkDataURI":
// BulkPlaceholder+"/bulk/<path>"} where path is the tag path as in
// BulkPath. Strings are decoded to UTF-8 using SpecificCharacterSet.
//
// Choices where Annex F leaves room: group 0002 and group length
// (gggg,0000) elements are left out; an IS or DS value that is not a
// number, and FL/FD values that are NaN or infinite, are written as null;
// SV/UV values beyond ±2^53 are written as JSON strings; an empty value
// gives {"vr":..} without "Value", an empty value among several gives
// null; DS values that are already valid JSON numbers are copied
// verbatim (no precision loss), others ("+1", ".5", "007") are
// normalised.
func AppendJSON(dst []byte, h *Header) []byte {
	if h == nil || h.Dataset == nil {
		return append(dst, "{}"...)
	}
	return appendDataset(dst, h.Dataset, newTextDecoder(h.Dataset.find(tagSpecificCharacterSet)), "")
}

// sortedElements returns the elements in strictly ascending tag order,
// dropping duplicates (the first one wins). Streams are nearly always
// sorted already, so this rarely allocates.
func sortedElements(ds *Dataset) []*Element {
	el := ds.Elements
	sorted := true
	for i := 1; i < len(el); i++ {
		if el[i].Tag <= el[i-1].Tag {
			sorted = false
			break
		}
	}
	if sorted {
		return el
	}
	c := slices.Clone(el)
	slices.SortStableFunc(c, func(a, b *Element) int {
		switch {
		case a.Tag < b.Tag:
			return -1
		case a.Tag > b.Tag:
			return 1
		}
		return 0
	})
	return slices.CompactFunc(c, func(a, b *Element) bool { return a.Tag == b.Tag })
}

const hexDigits = "0123456789ABCDEF"

func appendHex8(dst []byte, v uint32) []byte {
	for s := 28; s >= 0; s -= 4 {
		dst = append(dst, hexDigits[v>>uint(s)&0xF])
	}
	return dst
}

func appendDataset(dst []byte, ds *Dataset, dec *textDecoder, path string) []byte {
	if ds == nil {
		return append(dst, "{}"...)
	}
	if path != "" {
		if scs := ds.find(tagSpecificCharacterSet); scs != nil {
			dec = newTextDecoder(scs)
		}
	}
	dst = append(dst, '{')
	first := true
	for _, e := range sortedElements(ds) {
		if e.Tag.Group() == 0x0002 || e.Tag.Element() == 0 {
			continue
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = append(dst, '"')
		dst = appendHex8(dst, uint32(e.Tag))
		dst = append(dst, `":{"vr":"`...)
		dst = append(dst, e.VR...)
		dst = append(dst, '"')
		dst = appendValue(dst, e, dec, path)
		dst = append(dst, '}')
	}
	return append(dst, '}')
}

func elementPath(path string, t Tag) string {
	var b [8]byte
	h := appendHex8(b[:0], uint32(t))
	if path == "" {
		return string(h)
	}
	return path + "/" + string(h)
}

func appendValue(dst []byte, e *Element, dec *textDecoder, path string) []byte {
	if e.Bulk != nil {
		dst = append(dst, `,"BulkDataURI":"`+BulkPlaceholder+"/bulk/"...)
		dst = append(dst, elementPath(path, e.Tag)...)
		return append(dst, '"')
	}
	switch e.VR {
	case "SQ":
		if len(e.Items) == 0 {
			return dst
		}
		p := elementPath(path, e.Tag)
		dst = append(dst, `,"Value":[`...)
		for i, it := range e.Items {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendDataset(dst, it, dec, p+"/"+strconv.Itoa(i))
		}
		return append(dst, ']')
	case "OB", "OD", "OF", "OL", "OV", "OW", "UN":
		if len(e.Value) == 0 {
			return dst
		}
		dst = append(dst, `,"InlineBinary":"`...)
		dst = base64.StdEncoding.AppendEncode(dst, e.Value)
		return append(dst, '"')
	case "AT", "US", "SS", "UL", "SL", "FL", "FD", "SV", "UV":
		return appendBinaryNumbers(dst, e)
	}
	v := trimValue(e.VR, e.Value)
	if len(v) == 0 {
		return dst
	}
	var s string
	if charsetVR(e.VR) {
		s = dec.decode(v)
	} else {
		s = defaultDecode(v)
	}
	switch e.VR {
	case "LT", "ST", "UT", "UR":
		dst = append(dst, `,"Value":[`...)
		dst = appendJSONString(dst, s)
		return append(dst, ']')
	}
	parts := splitValues(s)
	empty := true
	for _, part := range parts {
		if !emptyPart(e.VR, part) {
			empty = false
			break
		}
	}
	if empty {
		return dst
	}
	dst = append(dst, `,"Value":[`...)
	for i, part := range parts {
		if i > 0 {
			dst = append(dst, ',')
		}
		switch e.VR {
		case "PN":
			dst = appendPN(dst, trimRightSpace(part))
		case "IS":
			dst = appendIS(dst, trimSpace(part))
		case "DS":
			dst = appendDS(dst, trimSpace(part))
		default:
			part = trimRightSpace(part)
			if part == "" {
				dst = append(dst, "null"...)
			} else {
				dst = appendJSONString(dst, part)
			}
		}
	}
	return append(dst, ']')
}

// trimValue removes trailing padding (spaces, NULs) from a string value.
func trimValue(vr string, v []byte) []byte {
	return bytes.TrimRight(v, " \x00")
}

func trimRightSpace(s string) string {
	i := len(s)
	for i > 0 && (s[i-1] == ' ' || s[i-1] == 0) {
		i--
	}
	return s[:i]
}

func trimSpace(s string) string {
	s = trimRightSpace(s)
	i := 0
	for i < len(s) && s[i] == ' ' {
		i++
	}
	return s[i:]
}

// splitValues splits a decoded multi-valued string at backslashes.
func splitValues(s string) []string {
	n := 1
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' {
			n++
		}
	}
	out := make([]string, 0, n)
	for {
		i := indexByte(s, '\\')
		if i < 0 {
			return append(out, s)
		}
		out = append(out, s[:i])
		s = s[i+1:]
	}
}

func indexByte(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}

// emptyPart reports a value that is only padding; a PN value of only
// component delimiters ("^^^^") is empty too.
func emptyPart(vr, s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == ' ' || c == 0:
		case vr == "PN" && (c == '^' || c == '='):
		default:
			return false
		}
	}
	return true
}

func appendPN(dst []byte, s string) []byte {
	if emptyPart("PN", s) {
		return append(dst, "null"...)
	}
	names := [3]string{"Alphabetic", "Ideographic", "Phonetic"}
	dst = append(dst, '{')
	first := true
	for i := 0; i < 3; i++ {
		g := s
		j := indexByte(s, '=')
		if j >= 0 {
			g, s = s[:j], s[j+1:]
		} else {
			s = ""
		}
		g = trimRightSpace(g)
		if !emptyPart("PN", g) {
			if !first {
				dst = append(dst, ',')
			}
			first = false
			dst = append(dst, '"')
			dst = append(dst, names[i]...)
			dst = append(dst, `":`...)
			dst = appendJSONString(dst, g)
		}
		if j < 0 {
			break
		}
	}
	return append(dst, '}')
}

func appendIS(dst []byte, s string) []byte {
	if s == "" {
		return append(dst, "null"...)
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		// tolerate "12.0" style integers
		f, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
			return append(dst, "null"...)
		}
		v = int64(f)
	}
	return strconv.AppendInt(dst, v, 10)
}

func appendDS(dst []byte, s string) []byte {
	if s == "" {
		return append(dst, "null"...)
	}
	if isJSONNumber(s) {
		return append(dst, s...)
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return append(dst, "null"...)
	}
	return strconv.AppendFloat(dst, f, 'g', -1, 64)
}

// isJSONNumber checks s against the JSON number grammar (RFC 8259).
func isJSONNumber(s string) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	default:
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		d := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == d {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		d := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == d {
			return false
		}
	}
	return i == len(s)
}

func appendBinaryNumbers(dst []byte, e *Element) []byte {
	v := e.Value
	size := swapUnit(e.VR)
	if e.VR == "AT" {
		size = 4
	}
	if len(v) < size {
		return dst
	}
	dst = append(dst, `,"Value":[`...)
	le := binary.LittleEndian
	for i := 0; i+size <= len(v); i += size {
		if i > 0 {
			dst = append(dst, ',')
		}
		b := v[i:]
		switch e.VR {
		case "AT":
			dst = append(dst, '"')
			dst = appendHex8(dst, uint32(le.Uint16(b))<<16|uint32(le.Uint16(b[2:])))
			dst = append(dst, '"')
		case "US":
			dst = strconv.AppendUint(dst, uint64(le.Uint16(b)), 10)
		case "SS":
			dst = strconv.AppendInt(dst, int64(int16(le.Uint16(b))), 10)
		case "UL":
			dst = strconv.AppendUint(dst, uint64(le.Uint32(b)), 10)
		case "SL":
			dst = strconv.AppendInt(dst, int64(int32(le.Uint32(b))), 10)
		case "FL":
			dst = appendFloat(dst, float64(math.Float32frombits(le.Uint32(b))), 32)
		case "FD":
			dst = appendFloat(dst, math.Float64frombits(le.Uint64(b)), 64)
		case "SV":
			x := int64(le.Uint64(b))
			if x > 1<<53 || x < -(1<<53) {
				dst = append(dst, '"')
				dst = strconv.AppendInt(dst, x, 10)
				dst = append(dst, '"')
			} else {
				dst = strconv.AppendInt(dst, x, 10)
			}
		case "UV":
			x := le.Uint64(b)
			if x > 1<<53 {
				dst = append(dst, '"')
				dst = strconv.AppendUint(dst, x, 10)
				dst = append(dst, '"')
			} else {
				dst = strconv.AppendUint(dst, x, 10)
			}
		}
	}
	return append(dst, ']')
}

func appendFloat(dst []byte, f float64, bits int) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(dst, "null"...)
	}
	return strconv.AppendFloat(dst, f, 'g', -1, bits)
}

// appendJSONString writes s as a JSON string: quotes, backslashes and
// control characters escaped (\n, \r, \t, \b, \f, else \u00XX), invalid
// UTF-8 replaced by U+FFFD, U+2028/U+2029 escaped for JavaScript.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, `\n`...)
			case '\r':
				dst = append(dst, `\r`...)
			case '\t':
				dst = append(dst, `\t`...)
			case '\b':
				dst = append(dst, `\b`...)
			case '\f':
				dst = append(dst, `\f`...)
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\u202`...)
			dst = append(dst, hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
