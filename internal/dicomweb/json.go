package dicomweb

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/cloudpacs/pacs/internal/dcm"
)

// This file is a small append-based writer for DICOM JSON (PS3.18 Annex
// F). encoding/json is not used: results are built from index columns
// (strings in DICOM form) and from stored instance JSON that carries a raw
// placeholder byte, which encoding/json would reject.

// dataset collects the attributes of one DICOM JSON object and writes
// them in ascending tag order. The first value set for a tag wins.
type dataset struct {
	buf []byte
	els []elemRef
}

type elemRef struct {
	tag        dcm.Tag
	start, end int
}

func (d *dataset) reset() { d.buf, d.els = d.buf[:0], d.els[:0] }

func (d *dataset) has(t dcm.Tag) bool {
	for _, e := range d.els {
		if e.tag == t {
			return true
		}
	}
	return false
}

func (d *dataset) begin(t dcm.Tag) (ok bool) { return !d.has(t) }

func (d *dataset) end(t dcm.Tag, start int) {
	d.els = append(d.els, elemRef{tag: t, start: start, end: len(d.buf)})
}

// raw adds an already encoded value ({"vr":...}).
func (d *dataset) raw(t dcm.Tag, v []byte) {
	if !d.begin(t) {
		return
	}
	s := len(d.buf)
	d.buf = append(d.buf, v...)
	d.end(t, s)
}

// str adds a string VR value; s holds multiple values joined by `\`.
func (d *dataset) str(t dcm.Tag, vr, s string) {
	if !d.begin(t) {
		return
	}
	st := len(d.buf)
	d.buf = appendStringElem(d.buf, vr, s)
	d.end(t, st)
}

// strs adds a multi-valued string attribute.
func (d *dataset) strs(t dcm.Tag, vr string, vals []string) {
	d.str(t, vr, strings.Join(vals, `\`))
}

// num adds an integer-valued attribute (US, UL, SL, SS, IS).
func (d *dataset) num(t dcm.Tag, vr string, n int) {
	if !d.begin(t) {
		return
	}
	st := len(d.buf)
	d.buf = append(d.buf, `{"vr":"`...)
	d.buf = append(d.buf, vr...)
	d.buf = append(d.buf, `","Value":[`...)
	d.buf = strconv.AppendInt(d.buf, int64(n), 10)
	d.buf = append(d.buf, "]}"...)
	d.end(t, st)
}

// appendTo writes the object {…} to dst.
func (d *dataset) appendTo(dst []byte) []byte {
	slices.SortStableFunc(d.els, func(a, b elemRef) int {
		switch {
		case a.tag < b.tag:
			return -1
		case a.tag > b.tag:
			return 1
		}
		return 0
	})
	dst = append(dst, '{')
	for i, e := range d.els {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendTagKey(dst, e.tag)
		dst = append(dst, d.buf[e.start:e.end]...)
	}
	return append(dst, '}')
}

const hexUpper = "0123456789ABCDEF"

// appendTagKey appends `"GGGGEEEE":`.
func appendTagKey(dst []byte, t dcm.Tag) []byte {
	dst = append(dst, '"')
	for sh := 28; sh >= 0; sh -= 4 {
		dst = append(dst, hexUpper[(uint32(t)>>uint(sh))&0xF])
	}
	return append(dst, '"', ':')
}

// appendStringElem encodes a value in DICOM form (multi-values joined by
// `\`) as a DICOM JSON element of the given VR: PN as objects, IS/DS as
// numbers, other string VRs as strings. Empty: no Value.
func appendStringElem(dst []byte, vr, s string) []byte {
	dst = append(dst, `{"vr":"`...)
	dst = append(dst, vr...)
	dst = append(dst, '"')
	s = strings.TrimRight(s, " \x00")
	if s == "" {
		return append(dst, '}')
	}
	dst = append(dst, `,"Value":[`...)
	first := true
	for v := range strings.SplitSeq(s, `\`) {
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = appendValue(dst, vr, v)
	}
	return append(dst, "]}"...)
}

func appendValue(dst []byte, vr, v string) []byte {
	switch vr {
	case "PN":
		return appendPN(dst, v)
	case "IS", "SL", "SS", "UL", "US", "SV", "UV":
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return append(dst, "null"...)
		}
		return strconv.AppendInt(dst, n, 10)
	case "DS", "FL", "FD":
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return append(dst, "null"...)
		}
		return strconv.AppendFloat(dst, f, 'g', -1, 64)
	case "UI", "DA", "TM", "DT", "CS", "AS":
		v = strings.TrimSpace(strings.TrimRight(v, "\x00"))
	}
	if v == "" {
		return append(dst, "null"...)
	}
	return appendJSONString(dst, v)
}

// appendPN writes one person name as {"Alphabetic":…,"Ideographic":…,
// "Phonetic":…}; an empty name is null.
func appendPN(dst []byte, v string) []byte {
	if strings.Trim(v, " =") == "" {
		return append(dst, "null"...)
	}
	dst = append(dst, '{')
	n := 0
	for i, g := range strings.SplitN(v, "=", 3) {
		g = strings.TrimRight(g, " ")
		if g == "" {
			continue
		}
		if n > 0 {
			dst = append(dst, ',')
		}
		n++
		dst = append(dst, [...]string{`"Alphabetic":`, `"Ideographic":`, `"Phonetic":`}[i]...)
		dst = appendJSONString(dst, g)
	}
	return append(dst, '}')
}

// appendJSONString appends s as a JSON string; invalid UTF-8 becomes U+FFFD.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	dst = appendJSONStringContent(dst, s)
	return append(dst, '"')
}

func appendJSONStringContent(dst []byte, s string) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c == '\n':
				dst = append(dst, '\\', 'n')
			case c == '\r':
				dst = append(dst, '\\', 'r')
			case c == '\t':
				dst = append(dst, '\\', 't')
			case c < 0x20 || c == 0x7F:
				dst = append(dst, '\\', 'u', '0', '0', hexUpper[c>>4], hexUpper[c&0xF])
			default:
				dst = append(dst, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, `\uFFFD`...)
		} else {
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return dst
}
