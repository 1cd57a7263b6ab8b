package reports

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/cloudpacs/pacs/internal/storage"
)

// dataset is one DICOM JSON object (PS3.18 Annex F), decoded lazily:
// sequence items are decoded when asked for.
type dataset map[string]*element

type element struct {
	VR           string            `json:"vr"`
	Value        []json.RawMessage `json:"Value"`
	InlineBinary string            `json:"InlineBinary"`
	BulkDataURI  string            `json:"BulkDataURI"`
}

// DICOM JSON tags (upper-case hex, as Annex F writes them).
const (
	tSpecificCharacterSet  = "00080005"
	tSOPClassUID           = "00080016"
	tSOPInstanceUID        = "00080018"
	tStudyDate             = "00080020"
	tContentDate           = "00080023"
	tStudyTime             = "00080030"
	tContentTime           = "00080033"
	tAccessionNumber       = "00080050"
	tModality              = "00080060"
	tManufacturer          = "00080070"
	tInstitutionName       = "00080080"
	tReferringPhysician    = "00080090"
	tCodeValue             = "00080100"
	tCodingScheme          = "00080102"
	tCodeMeaning           = "00080104"
	tLongCodeValue         = "00080119"
	tURNCodeValue          = "00080120"
	tStudyDescription      = "00081030"
	tSeriesDescription     = "0008103E"
	tReferencedSeriesSeq   = "00081115"
	tRefSOPClassUID        = "00081150"
	tRefSOPInstanceUID     = "00081155"
	tRefFrameNumber        = "00081160"
	tReferencedSOPSeq      = "00081199"
	tPatientName           = "00100010"
	tPatientID             = "00100020"
	tIssuerOfPatientID     = "00100021"
	tPatientBirthDate      = "00100030"
	tPatientSex            = "00100040"
	tStudyInstanceUID      = "0020000D"
	tSeriesInstanceUID     = "0020000E"
	tStudyID               = "00200010"
	tSeriesNumber          = "00200011"
	tInstanceNumber        = "00200013"
	tUnitsCodeSeq          = "004008EA"
	tRelationshipType      = "0040A010"
	tVerifyingOrganization = "0040A027"
	tVerificationDateTime  = "0040A030"
	tObservationDateTime   = "0040A032"
	tValueType             = "0040A040"
	tConceptNameCodeSeq    = "0040A043"
	tContinuity            = "0040A050"
	tVerifyingObserverSeq  = "0040A073"
	tVerifyingObserverName = "0040A075"
	tAuthorObserverSeq     = "0040A078"
	tParticipantSeq        = "0040A07A"
	tParticipationType     = "0040A080"
	tObserverType          = "0040A084"
	tDateTime              = "0040A120"
	tDate                  = "0040A121"
	tTime                  = "0040A122"
	tPersonName            = "0040A123"
	tUID                   = "0040A124"
	tTemporalRangeType     = "0040A130"
	tTextValue             = "0040A160"
	tFloatingPointValue    = "0040A161"
	tConceptCodeSeq        = "0040A168"
	tMeasuredValueSeq      = "0040A300"
	tNumericValueQualifier = "0040A301"
	tNumericValue          = "0040A30A"
	tPredecessorDocsSeq    = "0040A360"
	tEvidenceSeq           = "0040A375"
	tPertinentEvidenceSeq  = "0040A385"
	tCompletionFlag        = "0040A491"
	tCompletionFlagDesc    = "0040A492"
	tVerificationFlag      = "0040A493"
	tPreliminaryFlag       = "0040A496"
	tContentSeq            = "0040A730"
	tRefContentItemID      = "0040DB73"
	tDocumentTitle         = "00420010"
	tEncapsulatedDocument  = "00420011"
	tMIMEType              = "00420012"
	tEncapsulatedDocLength = "00420015"
	tGraphicData           = "00700022"
	tGraphicType           = "00700023"
	tRefFrameOfReference   = "30060024"
)

func parseDataset(b []byte) (dataset, error) {
	// BulkDataURIs in stored metadata start with the raw control byte
	// storage.BulkPlaceholder, which JSON decoders reject: drop it (it
	// occurs nowhere else), leaving "/bulk/<path>".
	if bytes.IndexByte(b, storage.BulkPlaceholder[0]) >= 0 {
		b = bytes.ReplaceAll(b, []byte(storage.BulkPlaceholder), nil)
	}
	var ds dataset
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if err := d.Decode(&ds); err != nil {
		return nil, err
	}
	return ds, nil
}

// strs returns the values of tag as text: strings as they are, numbers
// as written in the JSON, person names formatted (see formatPN).
func (ds dataset) strs(tag string) []string {
	e := ds[tag]
	if e == nil {
		return nil
	}
	out := make([]string, 0, len(e.Value))
	for _, raw := range e.Value {
		out = append(out, rawText(e.VR, raw))
	}
	return out
}

// str is the first value of tag as text, "" when absent.
func (ds dataset) str(tag string) string {
	e := ds[tag]
	if e == nil || len(e.Value) == 0 {
		return ""
	}
	return rawText(e.VR, e.Value[0])
}

// all is every value of tag joined by sep.
func (ds dataset) all(tag, sep string) string {
	return strings.Join(ds.strs(tag), sep)
}

func rawText(vr string, raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return ""
	}
	switch raw[0] {
	case '"':
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s
		}
		return ""
	case '{':
		if vr == "PN" {
			var pn struct{ Alphabetic, Ideographic, Phonetic string }
			if json.Unmarshal(raw, &pn) == nil {
				return formatPN(pn.Alphabetic, pn.Ideographic, pn.Phonetic)
			}
		}
		return ""
	}
	return string(raw) // a number, as written
}

// items decodes the items of sequence tag; malformed items are skipped.
func (ds dataset) items(tag string) []dataset {
	e := ds[tag]
	if e == nil {
		return nil
	}
	out := make([]dataset, 0, len(e.Value))
	for _, raw := range e.Value {
		if it, err := parseDataset(raw); err == nil && it != nil {
			out = append(out, it)
		}
	}
	return out
}

func (ds dataset) item(tag string) dataset {
	if it := ds.items(tag); len(it) > 0 {
		return it[0]
	}
	return nil
}

// formatPN shows a person name the way people read it: prefix, given,
// middle, family, suffix ("DOE^JANE" reads "JANE DOE"), with the
// ideographic and phonetic forms, if any, in parentheses.
func formatPN(alpha, ideo, phon string) string {
	main := pnReadable(alpha)
	var extra []string
	for _, s := range []string{ideo, phon} {
		if r := pnReadable(s); r != "" && r != main {
			extra = append(extra, r)
		}
	}
	if main == "" && len(extra) > 0 {
		main, extra = extra[0], extra[1:]
	}
	if len(extra) > 0 {
		main += " (" + strings.Join(extra, ", ") + ")"
	}
	return main
}

func pnReadable(s string) string {
	if !strings.Contains(s, "^") {
		return strings.TrimSpace(s)
	}
	c := strings.Split(s, "^")
	for len(c) < 5 {
		c = append(c, "")
	}
	var parts []string
	for _, p := range []string{c[3], c[1], c[2], c[0]} {
		if p = strings.TrimSpace(p); p != "" {
			parts = append(parts, p)
		}
	}
	out := strings.Join(parts, " ")
	if sfx := strings.TrimSpace(c[4]); sfx != "" {
		out += ", " + sfx
	}
	return out
}

// formatDA shows a DA value as YYYY-MM-DD (as is when not 8 digits).
func formatDA(s string) string {
	if len(s) == 8 && allDigits(s) {
		return s[:4] + "-" + s[4:6] + "-" + s[6:]
	}
	return s
}

// formatTM shows a TM value as HH:MM[:SS[.frac]].
func formatTM(s string) string {
	hms, frac, hasFrac := strings.Cut(s, ".")
	if !allDigits(hms) {
		return s
	}
	var out string
	switch len(hms) {
	case 2:
		out = hms + ":00"
	case 4:
		out = hms[:2] + ":" + hms[2:]
	case 6:
		out = hms[:2] + ":" + hms[2:4] + ":" + hms[4:]
	default:
		return s
	}
	if hasFrac && strings.Trim(frac, "0") != "" {
		out += "." + frac
	}
	return out
}

// formatDT shows a DT value as YYYY-MM-DD HH:MM:SS[.frac][±ZZZZ].
func formatDT(s string) string {
	body, off := s, ""
	if i := strings.IndexAny(s, "+-"); i >= 0 {
		body, off = s[:i], " "+s[i:]
	}
	date, tm := body, ""
	if len(body) > 8 {
		date, tm = body[:8], body[8:]
	}
	out := date
	switch len(date) {
	case 4:
	case 6:
		out = date[:4] + "-" + date[4:]
	case 8:
		out = formatDA(date)
	}
	if tm != "" {
		out += " " + formatTM(tm)
	}
	return out + off
}

// formatDateTime joins a DA and a TM value.
func formatDateTime(da, tm string) string {
	switch {
	case da == "" && tm == "":
		return ""
	case tm == "":
		return formatDA(da)
	case da == "":
		return formatTM(tm)
	}
	return formatDA(da) + " " + formatTM(tm)
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
