package storage

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/cloudpacs/pacs/internal/dcm"
)

// This file turns QIDO matching keys into backend-neutral conditions, so
// that every Index backend implements the same PS3.18 10.6 / PS3.4
// C.2.2.2 semantics and only translates conditions into its own SQL.

// MatchAttr is an attribute the index can match on.
type MatchAttr struct {
	Tag     dcm.Tag
	Keyword string
	VR      string
	// Level is the level the attribute belongs to. It can be matched at
	// that level and below (a series search may match PatientName).
	Level Level
}

var matchAttrs = map[dcm.Tag]MatchAttr{}

func init() {
	for _, a := range []MatchAttr{
		{TagStudyDate, "StudyDate", "DA", LevelStudy},
		{TagStudyTime, "StudyTime", "TM", LevelStudy},
		{TagAccessionNumber, "AccessionNumber", "SH", LevelStudy},
		{TagModalitiesInStudy, "ModalitiesInStudy", "CS", LevelStudy},
		{TagReferringPhysicianName, "ReferringPhysicianName", "PN", LevelStudy},
		{TagPatientName, "PatientName", "PN", LevelStudy},
		{TagPatientID, "PatientID", "LO", LevelStudy},
		{TagIssuerOfPatientID, "IssuerOfPatientID", "LO", LevelStudy},
		{TagPatientBirthDate, "PatientBirthDate", "DA", LevelStudy},
		{TagPatientSex, "PatientSex", "CS", LevelStudy},
		{TagStudyInstanceUID, "StudyInstanceUID", "UI", LevelStudy},
		{TagStudyID, "StudyID", "SH", LevelStudy},
		{TagStudyDescription, "StudyDescription", "LO", LevelStudy},

		{TagModality, "Modality", "CS", LevelSeries},
		{TagSeriesInstanceUID, "SeriesInstanceUID", "UI", LevelSeries},
		{TagSeriesNumber, "SeriesNumber", "IS", LevelSeries},
		{TagSeriesDescription, "SeriesDescription", "LO", LevelSeries},
		{TagBodyPartExamined, "BodyPartExamined", "CS", LevelSeries},
		{TagPerformedProcedureStepStartDate, "PerformedProcedureStepStartDate", "DA", LevelSeries},
		{TagPerformedProcedureStepStartTime, "PerformedProcedureStepStartTime", "TM", LevelSeries},
		{TagSeriesDate, "SeriesDate", "DA", LevelSeries},
		{TagSeriesTime, "SeriesTime", "TM", LevelSeries},

		{TagSOPClassUID, "SOPClassUID", "UI", LevelInstance},
		{TagSOPInstanceUID, "SOPInstanceUID", "UI", LevelInstance},
		{TagInstanceNumber, "InstanceNumber", "IS", LevelInstance},
		{TagContentDate, "ContentDate", "DA", LevelInstance},
		{TagContentTime, "ContentTime", "TM", LevelInstance},
	} {
		matchAttrs[a.Tag] = a
	}
}

// LookupMatchAttr returns the matching attribute for t.
func LookupMatchAttr(t dcm.Tag) (MatchAttr, bool) {
	a, ok := matchAttrs[t]
	return a, ok
}

// MatchKind is the kind of a parsed matching key.
type MatchKind int

const (
	// MatchSingle: exact, case-sensitive; PN: Value upper-cased, compare
	// with the upper-cased column.
	MatchSingle MatchKind = iota + 1
	// MatchWildcard: Value is a DICOM pattern, `*` any run, `?` one
	// character; PN: upper-cased.
	MatchWildcard
	// MatchList: any of Values (UID list, or a CS/IS list).
	MatchList
	// MatchRange: Lo <= value <= Hi, either bound may be "" (open);
	// empty values never match. Bounds may be partial (a TM "0800"):
	// the upper bound compares against the value cut to the bound's
	// length, so "1200" includes 12:00:59.
	MatchRange
	// MatchFuzzy: PN fuzzy matching. Values are upper-cased words; each
	// word must be a prefix of some name component (family, given,
	// middle, ... split on ^, =, space) or have the PhoneticKey of one
	// (phonetic.go).
	MatchFuzzy
	// MatchPrefix: the value starts with Value (a single partial TM such
	// as "0830" matches 083000.123).
	MatchPrefix
)

// Cond is one parsed matching key.
type Cond struct {
	Attr   MatchAttr
	Kind   MatchKind
	Value  string
	Values []string
	Lo, Hi string
}

func (l Level) String() string {
	switch l {
	case LevelStudy:
		return "study"
	case LevelSeries:
		return "series"
	case LevelInstance:
		return "instance"
	}
	return "level(" + strconv.Itoa(int(l)) + ")"
}

// ParseConds checks the matching keys of q against its level and parses
// their values. Universal matches (empty value, or a lone `*`) are left
// out. Unknown attributes, or attributes of a lower level: an error
// wrapping ErrUnsupportedMatch that names the attribute. Malformed values
// (e.g. a range of non-dates): ErrBadQuery.
func ParseConds(q Query) ([]Cond, error) {
	conds := make([]Cond, 0, len(q.Matches))
	for _, m := range q.Matches {
		a, ok := matchAttrs[m.Tag]
		if !ok || a.Level > q.Level {
			name := dcm.Keyword(m.Tag)
			if ok {
				name = a.Keyword
			}
			if name == "" {
				name = fmt.Sprintf("(%04X,%04X)", m.Tag.Group(), m.Tag.Element())
			} else {
				name = fmt.Sprintf("%s (%04X,%04X)", name, m.Tag.Group(), m.Tag.Element())
			}
			return nil, fmt.Errorf("%w: %s at %s level", ErrUnsupportedMatch, name, q.Level)
		}
		c, skip, err := parseCond(a, m.Value, q.FuzzyMatching)
		if err != nil {
			return nil, fmt.Errorf("%w: %s=%q: %v", ErrBadQuery, a.Keyword, m.Value, err)
		}
		if !skip {
			conds = append(conds, c)
		}
	}
	return conds, nil
}

func hasWildcard(s string) bool { return strings.ContainsAny(s, "*?") }

// splitList splits a multi-valued matching key: PS3.18 accepts both `\`
// (DICOM value multiplicity) and `,` as separators.
func splitList(v string) []string {
	parts := strings.FieldsFunc(v, func(r rune) bool { return r == '\\' || r == ',' })
	out := parts[:0]
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func parseCond(a MatchAttr, v string, fuzzy bool) (c Cond, skip bool, err error) {
	c.Attr = a
	v = strings.TrimSpace(v)
	if v == "" || v == "*" {
		return c, true, nil
	}
	switch a.VR {
	case "UI":
		vals := splitList(v)
		if len(vals) == 0 {
			return c, true, nil
		}
		for _, u := range vals {
			if strings.Trim(u, "0123456789.") != "" {
				return c, false, fmt.Errorf("not a UID: %q", u)
			}
		}
		return listOrSingle(c, vals), false, nil
	case "DA", "TM":
		v = strings.ReplaceAll(v, ":", "") // ACR-NEMA style times
		if a.VR == "DA" {
			v = strings.ReplaceAll(v, ".", "") // ACR-NEMA YYYY.MM.DD
		}
		check := checkDA
		if a.VR == "TM" {
			check = checkTM
		}
		if lo, hi, ok := strings.Cut(v, "-"); ok {
			if lo == "" && hi == "" {
				return c, false, fmt.Errorf("empty range")
			}
			for _, b := range []string{lo, hi} {
				if b != "" && !check(b) {
					return c, false, fmt.Errorf("bad %s %q", a.VR, b)
				}
			}
			if lo != "" && hi != "" && lo > hi {
				return c, false, fmt.Errorf("range %q > %q", lo, hi)
			}
			c.Kind, c.Lo, c.Hi = MatchRange, lo, hi
			return c, false, nil
		}
		if !check(v) {
			return c, false, fmt.Errorf("bad %s %q", a.VR, v)
		}
		c.Kind, c.Value = MatchSingle, v
		if a.VR == "TM" {
			c.Kind = MatchPrefix
		}
		return c, false, nil
	case "PN":
		v = strings.ToUpper(v)
		switch {
		case hasWildcard(v):
			c.Kind, c.Value = MatchWildcard, v
		case fuzzy:
			words := strings.FieldsFunc(v, isNameSep)
			if len(words) == 0 {
				return c, true, nil
			}
			c.Kind, c.Values = MatchFuzzy, words
		default:
			c.Kind, c.Value = MatchSingle, v
		}
		return c, false, nil
	case "IS":
		vals := splitList(v)
		for _, n := range vals {
			if _, err := strconv.Atoi(n); err != nil {
				return c, false, fmt.Errorf("not an integer: %q", n)
			}
		}
		if len(vals) == 0 {
			return c, true, nil
		}
		return listOrSingle(c, vals), false, nil
	case "CS":
		if hasWildcard(v) {
			c.Kind, c.Value = MatchWildcard, v
			return c, false, nil
		}
		vals := splitList(v)
		if len(vals) == 0 {
			return c, true, nil
		}
		return listOrSingle(c, vals), false, nil
	default: // LO, SH: single value or wildcard
		c.Kind, c.Value = MatchSingle, v
		if hasWildcard(v) {
			c.Kind = MatchWildcard
		}
		return c, false, nil
	}
}

func listOrSingle(c Cond, vals []string) Cond {
	if len(vals) == 1 {
		c.Kind, c.Value = MatchSingle, vals[0]
	} else {
		c.Kind, c.Values = MatchList, vals
	}
	return c
}

// isNameSep splits a person name into components: `^` between family,
// given, middle, prefix, suffix; `=` between representations; spaces
// inside a component.
func isNameSep(r rune) bool { return r == '^' || r == '=' || r == ' ' || r == ',' }

func checkDA(s string) bool {
	return len(s) == 8 && allDigits(s)
}

func checkTM(s string) bool {
	hms, frac, _ := strings.Cut(s, ".")
	return (len(hms) == 2 || len(hms) == 4 || len(hms) == 6) && allDigits(hms) && allDigits(frac) && len(frac) <= 6
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// NameKey is the upper-cased form of a person name kept in the _key
// columns for case-insensitive matching (Unicode upper case, unlike
// SQLite's ASCII-only upper()).
func NameKey(name string) string { return strings.ToUpper(name) }

// PrefixEnd returns the smallest string greater than every string that
// starts with p, in byte order (which is code point order for UTF-8), so
// that "starts with p" is the range p <= v < PrefixEnd(p) that an index
// serves: p with its last character replaced by the next one. "" when
// there is none (p empty or only U+10FFFF).
func PrefixEnd(p string) string {
	if !utf8.ValidString(p) {
		return ""
	}
	r := []rune(p)
	for i := len(r) - 1; i >= 0; i-- {
		if r[i] < unicode.MaxRune {
			r[i]++
			if r[i] >= 0xD800 && r[i] <= 0xDFFF { // surrogates are not characters
				r[i] = 0xE000
			}
			return string(r[:i+1])
		}
	}
	return ""
}

// NameWords returns the distinct words of a person name as fuzzy
// matching sees them: the name upper-cased (NameKey) and split into
// components on ^ = space and comma (isNameSep), empty components
// dropped. A fuzzy query word matches the name when it is a prefix of
// one of them. The indexes keep these words in a table of their own
// (one row per study and word) so that a query word is a range scan.
func NameWords(name string) []string {
	parts := strings.FieldsFunc(NameKey(name), isNameSep)
	out := parts[:0]
	for _, p := range parts {
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}
