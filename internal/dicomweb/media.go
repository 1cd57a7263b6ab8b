package dicomweb

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
)

// Transfer syntaxes the serving layer needs to know by name.
const (
	tsImplicitLE = "1.2.840.10008.1.2"
	tsExplicitLE = "1.2.840.10008.1.2.1"
	tsDeflatedLE = "1.2.840.10008.1.2.1.99"
	tsExplicitBE = "1.2.840.10008.1.2.2"
)

const (
	mtDICOM       = "application/dicom"
	mtDICOMJSON   = "application/dicom+json"
	mtOctetStream = "application/octet-stream"
	mtMultipart   = "multipart/related"
)

// uncompressedTS reports a transfer syntax dcm.ToExplicitLE can convert.
func uncompressedTS(ts string) bool {
	switch ts {
	case tsImplicitLE, tsExplicitLE, tsDeflatedLE, tsExplicitBE:
		return true
	}
	return false
}

// frameMediaType is the media type of one frame of pixel data stored in
// transfer syntax ts (PS3.18 Table 8.7.3-2/-3/-4): application/octet-stream
// for native pixel data.
func frameMediaType(ts string) string {
	switch ts {
	case "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.70":
		return "image/jpeg"
	case "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81":
		return "image/jls"
	case "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91":
		return "image/jp2"
	case "1.2.840.10008.1.2.4.92", "1.2.840.10008.1.2.4.93":
		return "image/jpx"
	case "1.2.840.10008.1.2.4.201", "1.2.840.10008.1.2.4.202", "1.2.840.10008.1.2.4.203":
		return "image/jphc"
	case "1.2.840.10008.1.2.5":
		return "image/dicom-rle"
	case "1.2.840.10008.1.2.4.100", "1.2.840.10008.1.2.4.101":
		return "video/mpeg"
	case "1.2.840.10008.1.2.4.102", "1.2.840.10008.1.2.4.103", "1.2.840.10008.1.2.4.104",
		"1.2.840.10008.1.2.4.105", "1.2.840.10008.1.2.4.106":
		return "video/mp4"
	case "1.2.840.10008.1.2.4.107", "1.2.840.10008.1.2.4.108":
		return "video/H265"
	}
	return mtOctetStream
}

// sameMediaType compares media types, accepting the older names.
func sameMediaType(a, b string) bool {
	norm := func(s string) string {
		switch s {
		case "image/x-dicom-rle":
			return "image/dicom-rle"
		case "image/x-jls":
			return "image/jls"
		case "video/h265", "video/hevc":
			return "video/H265"
		}
		return s
	}
	return strings.EqualFold(norm(a), norm(b))
}

// mediaRange is one entry of an Accept header.
type mediaRange struct {
	typ    string            // lower case: "multipart/related", "*/*"
	params map[string]string // lower-case names; values unquoted
	q      float64
}

func (m mediaRange) param(name string) string { return m.params[name] }

// partType is the "type" parameter of a multipart range, lower case.
func (m mediaRange) partType() string { return strings.ToLower(m.params["type"]) }

// parseAccept parses an Accept header value into media ranges ordered by
// preference (q descending, then as written). Ranges with q=0 are
// dropped. It is lenient where clients are sloppy: unquoted parameter
// values containing '/' (type=application/octet-stream, as OHIF sends)
// are accepted. An empty header is "*/*".
func parseAccept(s string) []mediaRange {
	if strings.TrimSpace(s) == "" {
		return []mediaRange{{typ: "*/*", q: 1}}
	}
	var out []mediaRange
	for _, item := range splitOutsideQuotes(s, ',') {
		fields := splitOutsideQuotes(item, ';')
		typ := strings.ToLower(strings.TrimSpace(fields[0]))
		if typ == "" {
			continue
		}
		if typ == "*" {
			typ = "*/*"
		}
		m := mediaRange{typ: typ, params: map[string]string{}, q: 1}
		for _, f := range fields[1:] {
			k, v, ok := strings.Cut(f, "=")
			if !ok {
				continue
			}
			k = strings.ToLower(strings.TrimSpace(k))
			v = strings.TrimSpace(v)
			if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
				v = strings.ReplaceAll(v[1:len(v)-1], `\"`, `"`)
			}
			if k == "q" {
				q, err := strconv.ParseFloat(v, 64)
				if err == nil && q >= 0 && q <= 1 {
					m.q = q
				}
				continue
			}
			m.params[k] = v
		}
		if m.q > 0 {
			out = append(out, m)
		}
	}
	slices.SortStableFunc(out, func(a, b mediaRange) int { return cmp.Compare(b.q, a.q) })
	return out
}

func splitOutsideQuotes(s string, sep byte) []string {
	var out []string
	inQ := false
	start := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			inQ = !inQ
		case c == '\\' && inQ:
			i++
		case c == sep && !inQ:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// isWildcard reports */* or application/* style ranges that any type matches.
func (m mediaRange) matches(typ string) bool {
	if m.typ == "*/*" || m.typ == typ {
		return true
	}
	if major, ok := strings.CutSuffix(m.typ, "/*"); ok {
		return strings.HasPrefix(typ, major+"/")
	}
	return sameMediaType(m.typ, typ)
}

// acceptsJSON reports whether the ranges allow a DICOM JSON answer.
func acceptsJSON(ranges []mediaRange) bool {
	for _, m := range ranges {
		if m.matches(mtDICOMJSON) || m.typ == "application/json" {
			return true
		}
	}
	return false
}
