package dcm

import (
	"strconv"
	"strings"
	"sync"

	"github.com/suyashkumar/dicom/pkg/tag"
)

// Frequently used tags. Named after the standard keyword.
const (
	tagFileMetaInformationGroupLength Tag = 0x00020000
	tagMediaStorageSOPClassUID        Tag = 0x00020002
	tagMediaStorageSOPInstanceUID     Tag = 0x00020003
	tagTransferSyntaxUID              Tag = 0x00020010
	tagSpecificCharacterSet           Tag = 0x00080005
	tagSOPClassUID                    Tag = 0x00080016
	tagSOPInstanceUID                 Tag = 0x00080018
	tagStudyInstanceUID               Tag = 0x0020000D
	tagSeriesInstanceUID              Tag = 0x0020000E
	tagSamplesPerPixel                Tag = 0x00280002
	tagNumberOfFrames                 Tag = 0x00280008
	tagPhotometricInterpretation      Tag = 0x00280004
	tagRows                           Tag = 0x00280010
	tagColumns                        Tag = 0x00280011
	tagBitsAllocated                  Tag = 0x00280100
	tagPixelRepresentation            Tag = 0x00280103
	tagExtendedOffsetTable            Tag = 0x7FE00001
	tagExtendedOffsetTableLengths     Tag = 0x7FE00002
	tagPixelData                      Tag = 0x7FE00010
	tagItem                           Tag = 0xFFFEE000
	tagItemDelimitation               Tag = 0xFFFEE00D
	tagSequenceDelimitation           Tag = 0xFFFEE0DD
)

func toLib(t Tag) tag.Tag { return tag.Tag{Group: t.Group(), Element: t.Element()} }

// dictInfo finds the dictionary entry of t, including the repeating
// groups 50xx (curves) and 60xx (overlays).
func dictInfo(t Tag) (tag.Info, bool) {
	if t.Group()&1 == 1 || t.Group() == 0xFFFE {
		return tag.Info{}, false
	}
	if t.Element() == 0 {
		info, err := tag.Find(toLib(t)) // generic group length for even groups
		return info, err == nil
	}
	if info, err := tag.Find(toLib(t)); err == nil {
		return info, true
	}
	if g := t.Group() & 0xFF00; g == 0x5000 || g == 0x6000 {
		if info, err := tag.Find(tag.Tag{Group: g, Element: t.Element()}); err == nil {
			return info, true
		}
	}
	return tag.Info{}, false
}

// DictVR is the dictionary VR of t ("UN" when unknown; the first VR when
// the dictionary lists several).
func DictVR(t Tag) string {
	if t.Element() == 0 && t.Group() != 0xFFFE {
		return "UL"
	}
	if t.Group()&1 == 1 {
		if t.Element() >= 0x10 && t.Element() <= 0xFF {
			return "LO" // private creator
		}
		return "UN"
	}
	info, ok := dictInfo(t)
	if !ok || len(info.VRs) == 0 || !knownVR(info.VRs[0]) {
		return "UN"
	}
	return info.VRs[0]
}

// Keyword is the dictionary keyword of t, or "" for unknown tags.
func Keyword(t Tag) string {
	info, ok := dictInfo(t)
	if !ok {
		return ""
	}
	return info.Keyword
}

// keywordCache memoises keyword -> tag. pkg/tag has no way to enumerate
// its dictionary (the map is unexported) and FindByKeyword is a linear
// scan, so each distinct keyword is looked up once and remembered; only
// hits are stored, so the cache is bounded by the dictionary size.
var keywordCache sync.Map // string -> Tag

func lookupKeyword(s string) (Tag, bool) {
	if v, ok := keywordCache.Load(s); ok {
		return v.(Tag), true
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return 0, false
		}
	}
	info, err := tag.FindByKeyword(s)
	if err != nil || info.Keyword != s {
		return 0, false
	}
	t := Tag(info.Tag.Uint32())
	keywordCache.Store(s, t)
	return t, true
}

// ParseTag accepts "0020000D", "0020,000D", "(0020,000D)" or a keyword
// ("StudyInstanceUID").
func ParseTag(s string) (Tag, bool) {
	s = strings.TrimSpace(s)
	h := s
	if strings.HasPrefix(h, "(") && strings.HasSuffix(h, ")") {
		h = h[1 : len(h)-1]
	}
	if len(h) == 9 && h[4] == ',' {
		h = h[:4] + h[5:]
	}
	if len(h) == 8 {
		if v, err := strconv.ParseUint(h, 16, 32); err == nil {
			return Tag(v), true
		}
	}
	if s == "" || s[0] < 'A' || s[0] > 'Z' {
		return 0, false
	}
	return lookupKeyword(s)
}

// knownVR reports the two-letter value representations of PS3.5.
func knownVR(vr string) bool {
	switch vr {
	case "AE", "AS", "AT", "CS", "DA", "DS", "DT", "FL", "FD", "IS", "LO", "LT",
		"OB", "OD", "OF", "OL", "OV", "OW", "PN", "SH", "SL", "SQ", "SS", "ST",
		"SV", "TM", "UC", "UI", "UL", "UN", "UR", "US", "UT", "UV":
		return true
	}
	return false
}

// longVR reports VRs with a 2-byte reserved field and a 4-byte length in
// explicit VR encodings.
func longVR(vr string) bool {
	switch vr {
	case "OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV":
		return true
	}
	return false
}

// binaryVR reports VRs whose large values become bulk data.
func binaryVR(vr string) bool {
	switch vr {
	case "OB", "OD", "OF", "OL", "OV", "OW", "UN":
		return true
	}
	return false
}

// swapUnit is the byte-swap width of a VR's values (1: no swapping).
func swapUnit(vr string) int {
	switch vr {
	case "US", "SS", "OW", "AT": // AT: two 16-bit numbers
		return 2
	case "UL", "SL", "FL", "OL", "OF":
		return 4
	case "FD", "SV", "UV", "OD", "OV":
		return 8
	}
	return 1
}

// swapBytes converts values of width unit in place between byte orders;
// a trailing partial value is left alone.
func swapBytes(b []byte, unit int) {
	switch unit {
	case 2:
		for i := 0; i+1 < len(b); i += 2 {
			b[i], b[i+1] = b[i+1], b[i]
		}
	case 4:
		for i := 0; i+3 < len(b); i += 4 {
			b[i], b[i+1], b[i+2], b[i+3] = b[i+3], b[i+2], b[i+1], b[i]
		}
	case 8:
		for i := 0; i+7 < len(b); i += 8 {
			b[i], b[i+1], b[i+2], b[i+3], b[i+4], b[i+5], b[i+6], b[i+7] =
				b[i+7], b[i+6], b[i+5], b[i+4], b[i+3], b[i+2], b[i+1], b[i]
		}
	}
}
