package dcm

import (
	"bytes"
	"strings"
	"unicode/utf8"

	"github.com/suyashkumar/dicom/pkg/charset"
	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/japanese"
	"golang.org/x/text/encoding/korean"
	"golang.org/x/text/encoding/simplifiedchinese"
)

// textDecoder turns string values in a SpecificCharacterSet into UTF-8.
// It is not safe for concurrent use (x/text decoders keep state).
//
// Without SpecificCharacterSet the default repertoire is ASCII; bytes
// outside it are kept when they form valid UTF-8 and read as ISO 8859-1
// otherwise, so the output is always valid UTF-8.
//
// Code extension (ISO 2022): escape sequences switch the character set
// for the bytes that follow; the initial set (the first value of
// SpecificCharacterSet) is restored at each value delimiter, '^', '=',
// CR, LF, TAB and FF, as PS3.5 6.1.2.5.3 specifies.
type textDecoder struct {
	single  *encoding.Decoder // one character set, no code extensions
	iso2022 bool
	initial csKind
}

type csKind uint8

const (
	csDefault  csKind = iota // ASCII, UTF-8 tolerated, else Latin-1
	csJIS                    // ISO 2022 JIS X 0208/0212 (7-bit, keeps its escape)
	csKatakana               // JIS X 0201 katakana in G1
	csKorean                 // KS X 1001 in G1 (EUC-KR bytes)
	csChinese                // GB 2312 in G1 (EUC-CN bytes)
	csLatin1
	csLatin2
	csLatin3
	csLatin4
	csCyrillic
	csArabic
	csGreek
	csHebrew
	csLatin5
	csThai
)

var charmaps = map[csKind]*charmap.Charmap{
	csLatin1: charmap.ISO8859_1, csLatin2: charmap.ISO8859_2, csLatin3: charmap.ISO8859_3,
	csLatin4: charmap.ISO8859_4, csCyrillic: charmap.ISO8859_5, csArabic: charmap.ISO8859_6,
	csGreek: charmap.ISO8859_7, csHebrew: charmap.ISO8859_8, csLatin5: charmap.ISO8859_9,
	csThai: charmap.Windows874,
}

// iso2022Initial maps a first SpecificCharacterSet value of a code
// extension set to its initial G0/G1 state.
var iso2022Initial = map[string]csKind{
	"": csDefault, "ISO 2022 IR 6": csDefault, "ISO 2022 IR 100": csLatin1,
	"ISO 2022 IR 101": csLatin2, "ISO 2022 IR 109": csLatin3, "ISO 2022 IR 110": csLatin4,
	"ISO 2022 IR 144": csCyrillic, "ISO 2022 IR 127": csArabic, "ISO 2022 IR 126": csGreek,
	"ISO 2022 IR 138": csHebrew, "ISO 2022 IR 148": csLatin5, "ISO 2022 IR 166": csThai,
	"ISO 2022 IR 13": csKatakana, "ISO 2022 IR 87": csJIS, "ISO 2022 IR 159": csJIS,
	"ISO 2022 IR 149": csKorean, "ISO 2022 IR 58": csChinese,
}

// escapes maps the bytes after ESC to the character set they select.
var escapes = []struct {
	seq  string
	kind csKind
}{
	{"(B", csDefault}, {"(J", csDefault}, {")I", csKatakana}, {"$B", csJIS}, {"$@", csJIS},
	{"$(D", csJIS}, {"$)C", csKorean}, {"$)A", csChinese}, {"-A", csLatin1}, {"-B", csLatin2},
	{"-C", csLatin3}, {"-D", csLatin4}, {"-L", csCyrillic}, {"-G", csArabic}, {"-F", csGreek},
	{"-H", csHebrew}, {"-M", csLatin5}, {"-T", csThai},
}

// newTextDecoder reads the SpecificCharacterSet element (nil: default).
func newTextDecoder(scs *Element) *textDecoder {
	d := &textDecoder{}
	if scs == nil || len(scs.Value) == 0 {
		return d
	}
	terms := strings.Split(string(scs.Value), `\`)
	for i := range terms {
		terms[i] = strings.TrimSpace(strings.Trim(terms[i], "\x00"))
	}
	for _, t := range terms {
		if strings.HasPrefix(t, "ISO 2022") {
			d.iso2022 = true
		}
	}
	if d.iso2022 {
		d.initial = iso2022Initial[terms[0]]
		return d
	}
	switch terms[0] {
	case "", "ISO_IR 6":
		return d
	}
	cs, err := charset.ParseSpecificCharacterSet(terms[:1])
	if err == nil && cs.Ideographic != nil {
		d.single = cs.Ideographic
	}
	return d
}

// decode converts one raw value (all its values, with delimiters) to UTF-8.
func (d *textDecoder) decode(b []byte) string {
	if d.single != nil {
		out, err := d.single.Bytes(b)
		if err == nil {
			return string(out)
		}
		return defaultDecode(b)
	}
	if !d.iso2022 || bytes.IndexByte(b, 0x1B) < 0 && d.initial == csDefault {
		return defaultDecode(b)
	}
	var sb strings.Builder
	kind, start := d.initial, 0
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case c == 0x1B:
			sb.WriteString(decodeAs(kind, b[start:i]))
			k, n, ok := parseEscape(b[i+1:])
			if !ok {
				start = i // keep unknown escapes as text
				continue
			}
			kind = k
			if k == csJIS {
				start = i // the JIS decoder needs to see its escape
			} else {
				start = i + 1 + n
			}
			i += n
		case kind != csJIS && (c == '\\' || c == '=' || c == '^' || c == '\r' || c == '\n' || c == '\t' || c == '\f'):
			sb.WriteString(decodeAs(kind, b[start:i+1]))
			kind, start = d.initial, i+1
		}
	}
	sb.WriteString(decodeAs(kind, b[start:]))
	return sb.String()
}

func parseEscape(b []byte) (csKind, int, bool) {
	for _, e := range escapes {
		if len(b) >= len(e.seq) && string(b[:len(e.seq)]) == e.seq {
			return e.kind, len(e.seq), true
		}
	}
	return 0, 0, false
}

func decodeAs(k csKind, b []byte) string {
	if len(b) == 0 {
		return ""
	}
	var dec *encoding.Decoder
	switch k {
	case csDefault:
		return defaultDecode(b)
	case csJIS:
		dec = japanese.ISO2022JP.NewDecoder()
	case csKatakana:
		dec = japanese.ShiftJIS.NewDecoder()
	case csKorean:
		dec = korean.EUCKR.NewDecoder()
	case csChinese:
		dec = simplifiedchinese.GBK.NewDecoder()
	default:
		dec = charmaps[k].NewDecoder()
	}
	out, err := dec.Bytes(b)
	if err != nil {
		return defaultDecode(b)
	}
	return string(out)
}

func defaultDecode(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	out, _ := charmap.ISO8859_1.NewDecoder().Bytes(b)
	return string(out)
}

// charsetVR reports the VRs whose values use SpecificCharacterSet.
func charsetVR(vr string) bool {
	switch vr {
	case "SH", "LO", "ST", "LT", "UC", "UT", "PN":
		return true
	}
	return false
}
