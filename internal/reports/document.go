package reports

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrNotReport: the instance is not of a report SOP class (or its
// metadata lacks what a report needs).
var ErrNotReport = errors.New("reports: not a report instance")

// Code is a coded concept (PS3.3 8.8).
type Code struct {
	Value, Scheme, Meaning string
}

// String is the meaning, else "(value, scheme)".
func (c Code) String() string {
	if c.Meaning != "" {
		return c.Meaning
	}
	if c.Value == "" && c.Scheme == "" {
		return ""
	}
	return "(" + c.Value + ", " + c.Scheme + ")"
}

// Observer is a person or device that made or verified the report.
type Observer struct {
	Role         string // "Verifying observer", "Author", "Person observer", ...
	Name         string
	Organization string
	DateTime     string // formatted
}

// Ref is one referenced SOP instance of an IMAGE, COMPOSITE or WAVEFORM
// content item, or of the evidence lists.
type Ref struct {
	SOPClassUID    string
	SOPInstanceUID string
	Frames         []int
	// Study and series, when the report's evidence sequences name them
	// (a Linker may also find them in the index).
	StudyInstanceUID  string
	SeriesInstanceUID string
}

// Item is one SR content item (PS3.3 C.17.3).
type Item struct {
	ID           string // position in the tree: "1", "1.2", "1.2.3"
	Relationship string // RelationshipType, "" for the root
	ValueType    string // CONTAINER, TEXT, CODE, NUM, ...
	Concept      Code   // ConceptNameCodeSequence
	Continuity   string // CONTAINER: SEPARATE or CONTINUOUS
	// Value is the item's value in readable form: the text, the code
	// meaning, "3 cm", a formatted date, a person name, a UID, a
	// coordinate summary, or the referenced item ("see 1.2.1").
	Value string
	// Code is the value of a CODE item; Units of a NUM item.
	Code, Units    *Code
	Refs           []Ref // IMAGE, COMPOSITE, WAVEFORM
	ObservationDT  string
	Children       []*Item
	ByReference    bool // a by-reference relationship: Value names the target
	ReferencedPath string
}

// Document is a Structured Report read from DICOM JSON metadata.
type Document struct {
	SOPClassUID, SOPInstanceUID          string
	StudyInstanceUID, SeriesInstanceUID  string
	ClassName                            string
	Title                                string // root concept name (or DocumentTitle)
	PatientName, PatientID, Issuer       string
	PatientBirthDate, PatientSex         string // birth date formatted
	StudyDate, AccessionNumber, StudyID  string // study date formatted (with time)
	StudyDescription, ReferringPhysician string
	SeriesDescription, SeriesNumber      string
	Modality, Manufacturer, Institution  string
	InstanceNumber                       string
	ContentDateTime                      string // formatted
	ContentDate, ContentTime             string // raw DA / TM
	CompletionFlag, CompletionFlagDesc   string
	VerificationFlag, PreliminaryFlag    string
	Observers                            []Observer
	Predecessors                         []Ref
	Evidence                             []Ref // current requested procedure + pertinent other evidence
	Root                                 *Item // nil for an Encapsulated PDF
	// Kind is KindSR or KindPDF.
	Kind Kind
	// MIMEType of an encapsulated document.
	MIMEType string
}

// maxDepth bounds the content tree (a hostile file cannot blow the stack).
const maxDepth = 64

// maxItems bounds the number of content items rendered.
const maxItems = 100000

// Parse reads the report in metadata (an instance's DICOM JSON object).
// SOP classes other than SR and Encapsulated PDF: ErrNotReport.
func Parse(metadata []byte) (*Document, error) {
	ds, err := parseDataset(metadata)
	if err != nil {
		return nil, fmt.Errorf("reports: metadata: %w", err)
	}
	d := &Document{
		SOPClassUID:        ds.str(tSOPClassUID),
		SOPInstanceUID:     ds.str(tSOPInstanceUID),
		StudyInstanceUID:   ds.str(tStudyInstanceUID),
		SeriesInstanceUID:  ds.str(tSeriesInstanceUID),
		PatientName:        ds.all(tPatientName, "; "),
		PatientID:          ds.str(tPatientID),
		Issuer:             ds.str(tIssuerOfPatientID),
		PatientBirthDate:   formatDA(ds.str(tPatientBirthDate)),
		PatientSex:         ds.str(tPatientSex),
		StudyDate:          formatDateTime(ds.str(tStudyDate), ds.str(tStudyTime)),
		AccessionNumber:    ds.str(tAccessionNumber),
		StudyID:            ds.str(tStudyID),
		StudyDescription:   ds.str(tStudyDescription),
		ReferringPhysician: ds.all(tReferringPhysician, "; "),
		SeriesDescription:  ds.str(tSeriesDescription),
		SeriesNumber:       ds.str(tSeriesNumber),
		Modality:           ds.str(tModality),
		Manufacturer:       ds.str(tManufacturer),
		Institution:        ds.str(tInstitutionName),
		InstanceNumber:     ds.str(tInstanceNumber),
		ContentDate:        ds.str(tContentDate),
		ContentTime:        ds.str(tContentTime),
		CompletionFlag:     ds.str(tCompletionFlag),
		CompletionFlagDesc: ds.str(tCompletionFlagDesc),
		VerificationFlag:   ds.str(tVerificationFlag),
		PreliminaryFlag:    ds.str(tPreliminaryFlag),
		MIMEType:           ds.str(tMIMEType),
	}
	d.ContentDateTime = formatDateTime(d.ContentDate, d.ContentTime)
	d.Kind = KindOf(d.SOPClassUID)
	d.ClassName = ClassName(d.SOPClassUID)
	switch d.Kind {
	case KindPDF:
		d.Title = ds.str(tDocumentTitle)
		if d.Title == "" {
			d.Title = codeOf(ds.item(tConceptNameCodeSeq)).String()
		}
		if d.Title == "" {
			d.Title = "PDF document"
		}
		return d, nil
	case KindSR:
	default:
		// Any other object with an SR content tree still renders.
		if ds[tValueType] == nil || ds.str(tValueType) != "CONTAINER" {
			return nil, fmt.Errorf("%w: SOP class %s", ErrNotReport, d.SOPClassUID)
		}
		d.Kind = KindSR
	}

	for _, it := range ds.items(tVerifyingObserverSeq) {
		d.Observers = append(d.Observers, Observer{
			Role:         "Verifying observer",
			Name:         it.all(tVerifyingObserverName, "; "),
			Organization: it.str(tVerifyingOrganization),
			DateTime:     formatDT(it.str(tVerificationDateTime)),
		})
	}
	for _, it := range ds.items(tAuthorObserverSeq) {
		o := Observer{Role: "Author", Name: it.all(tPersonName, "; "), Organization: it.str(tInstitutionName)}
		if it.str(tObserverType) == "DEV" {
			o.Role = "Author (device)"
			if o.Name == "" {
				o.Name = it.str(tManufacturer)
			}
		}
		d.Observers = append(d.Observers, o)
	}
	for _, it := range ds.items(tParticipantSeq) {
		role := "Participant"
		if t := it.str(tParticipationType); t != "" {
			role = "Participant (" + strings.ToLower(t) + ")"
		}
		d.Observers = append(d.Observers, Observer{Role: role, Name: it.all(tPersonName, "; "), Organization: it.str(tInstitutionName),
			DateTime: formatDT(it.str("0040A082"))})
	}
	d.Predecessors = evidenceRefs(ds, tPredecessorDocsSeq)
	d.Evidence = append(evidenceRefs(ds, tEvidenceSeq), evidenceRefs(ds, tPertinentEvidenceSeq)...)

	n := 0
	d.Root = parseItem(ds, "1", 0, &n)
	d.Root.Relationship = ""
	d.Title = d.Root.Concept.String()
	if d.Title == "" {
		d.Title = d.ClassName
	}
	if d.Title == "" {
		d.Title = "Structured report"
	}
	// Observer context at the root (PS3.16 TID 1002): PNAME items name
	// person observers, device observer names devices.
	for _, c := range d.Root.Children {
		if c.Relationship != "HAS OBS CONTEXT" {
			continue
		}
		switch {
		case c.ValueType == "PNAME":
			d.Observers = append(d.Observers, Observer{Role: "Person observer", Name: c.Value})
		case c.Concept.Value == "121013" && c.ValueType == "TEXT": // Device Observer Name
			d.Observers = append(d.Observers, Observer{Role: "Device observer", Name: c.Value})
		}
	}
	return d, nil
}

// evidenceRefs flattens a hierarchical SOP instance reference sequence
// (study / series / SOP, PS3.3 Table 10-4).
func evidenceRefs(ds dataset, tag string) []Ref {
	var out []Ref
	for _, st := range ds.items(tag) {
		study := st.str(tStudyInstanceUID)
		for _, se := range st.items(tReferencedSeriesSeq) {
			series := se.str(tSeriesInstanceUID)
			for _, s := range se.items(tReferencedSOPSeq) {
				out = append(out, Ref{
					SOPClassUID: s.str(tRefSOPClassUID), SOPInstanceUID: s.str(tRefSOPInstanceUID),
					StudyInstanceUID: study, SeriesInstanceUID: series,
				})
			}
		}
	}
	return out
}

func codeOf(ds dataset) Code {
	if ds == nil {
		return Code{}
	}
	v := ds.str(tCodeValue)
	if v == "" {
		v = ds.str(tLongCodeValue)
	}
	if v == "" {
		v = ds.str(tURNCodeValue)
	}
	return Code{Value: v, Scheme: ds.str(tCodingScheme), Meaning: ds.str(tCodeMeaning)}
}

func parseItem(ds dataset, id string, depth int, n *int) *Item {
	*n++
	it := &Item{
		ID:            id,
		Relationship:  ds.str(tRelationshipType),
		ValueType:     ds.str(tValueType),
		Concept:       codeOf(ds.item(tConceptNameCodeSeq)),
		Continuity:    ds.str(tContinuity),
		ObservationDT: formatDT(ds.str(tObservationDateTime)),
	}
	if ref := ds.strs(tRefContentItemID); len(ref) > 0 && ds[tValueType] == nil {
		it.ByReference = true
		it.ReferencedPath = strings.Join(ref, ".")
		it.Value = "see item " + it.ReferencedPath
		return it
	}
	switch it.ValueType {
	case "TEXT":
		it.Value = ds.str(tTextValue)
	case "CODE":
		c := codeOf(ds.item(tConceptCodeSeq))
		it.Code = &c
		it.Value = c.String()
	case "NUM":
		mv := ds.item(tMeasuredValueSeq)
		if mv != nil {
			it.Value = mv.str(tNumericValue)
			if it.Value == "" {
				it.Value = mv.str(tFloatingPointValue)
			}
			u := codeOf(mv.item(tUnitsCodeSeq))
			if u != (Code{}) {
				it.Units = &u
				if s := unitsText(u); s != "" {
					it.Value += " " + s
				}
			}
		}
		if q := codeOf(ds.item(tNumericValueQualifier)); q.String() != "" {
			if it.Value != "" {
				it.Value += " "
			}
			it.Value += "(" + q.String() + ")"
		}
	case "DATE":
		it.Value = formatDA(ds.str(tDate))
	case "TIME":
		it.Value = formatTM(ds.str(tTime))
	case "DATETIME":
		it.Value = formatDT(ds.str(tDateTime))
	case "PNAME":
		it.Value = ds.all(tPersonName, "; ")
	case "UIDREF":
		it.Value = ds.str(tUID)
	case "IMAGE", "COMPOSITE", "WAVEFORM":
		for _, s := range ds.items(tReferencedSOPSeq) {
			r := Ref{SOPClassUID: s.str(tRefSOPClassUID), SOPInstanceUID: s.str(tRefSOPInstanceUID)}
			for _, f := range s.strs(tRefFrameNumber) {
				if k, err := strconv.Atoi(strings.TrimSpace(f)); err == nil && k > 0 {
					r.Frames = append(r.Frames, k)
				}
			}
			it.Refs = append(it.Refs, r)
		}
	case "SCOORD", "SCOORD3D":
		it.Value = ds.str(tGraphicType)
		if pts := ds.strs(tGraphicData); len(pts) > 0 {
			it.Value += " " + coordSummary(pts)
		}
	case "TCOORD":
		it.Value = ds.str(tTemporalRangeType)
	case "CONTAINER":
	}
	if depth >= maxDepth {
		return it
	}
	for i, c := range ds.items(tContentSeq) {
		if *n >= maxItems {
			break
		}
		it.Children = append(it.Children, parseItem(c, id+"."+strconv.Itoa(i+1), depth+1, n))
	}
	return it
}

// unitsText is how a NUM value's units read: the units' code meaning
// (else the code value); UCUM "1" (no units) is left out.
func unitsText(u Code) string {
	if u.Scheme == "UCUM" && u.Value == "1" {
		return ""
	}
	if u.Meaning != "" {
		return u.Meaning
	}
	return u.Value
}

// coordSummary shows the first points of a coordinate list.
func coordSummary(pts []string) string {
	const show = 8
	var b strings.Builder
	for i, p := range pts {
		if i == show {
			fmt.Fprintf(&b, " … (%d values)", len(pts))
			break
		}
		if i > 0 {
			if i%2 == 0 {
				b.WriteString("; ")
			} else {
				b.WriteString(",")
			}
		}
		b.WriteString(p)
	}
	return b.String()
}

// Texts lists the values of every TEXT item in document order (tests
// and search indexing).
func (d *Document) Texts() []string {
	var out []string
	var walk func(*Item)
	walk = func(it *Item) {
		if it == nil {
			return
		}
		if it.ValueType == "TEXT" && it.Value != "" {
			out = append(out, it.Value)
		}
		for _, c := range it.Children {
			walk(c)
		}
	}
	walk(d.Root)
	return out
}

// Summary is what a report listing shows of one report, read from the
// top level of its metadata only (the content tree is not walked).
type Summary struct {
	Kind                                Kind
	SOPClassUID, SOPInstanceUID         string
	StudyInstanceUID, SeriesInstanceUID string
	Title                               string
	ContentDate, ContentTime            string // raw DA / TM
	CompletionFlag, VerificationFlag    string
	PatientName, PatientID              string
	StudyDate, StudyDescription         string // raw DA
	AccessionNumber                     string
}

// Summarize reads the Summary of the report in metadata.
func Summarize(metadata []byte) (Summary, error) {
	ds, err := parseDataset(metadata)
	if err != nil {
		return Summary{}, fmt.Errorf("reports: metadata: %w", err)
	}
	s := Summary{
		SOPClassUID:       ds.str(tSOPClassUID),
		SOPInstanceUID:    ds.str(tSOPInstanceUID),
		StudyInstanceUID:  ds.str(tStudyInstanceUID),
		SeriesInstanceUID: ds.str(tSeriesInstanceUID),
		ContentDate:       ds.str(tContentDate),
		ContentTime:       ds.str(tContentTime),
		CompletionFlag:    ds.str(tCompletionFlag),
		VerificationFlag:  ds.str(tVerificationFlag),
		PatientName:       ds.all(tPatientName, "; "),
		PatientID:         ds.str(tPatientID),
		StudyDate:         ds.str(tStudyDate),
		StudyDescription:  ds.str(tStudyDescription),
		AccessionNumber:   ds.str(tAccessionNumber),
	}
	s.Kind = KindOf(s.SOPClassUID)
	if s.Kind == KindPDF {
		s.Title = ds.str(tDocumentTitle)
	}
	if s.Title == "" {
		s.Title = codeOf(ds.item(tConceptNameCodeSeq)).String()
	}
	if s.Title == "" {
		s.Title = ClassName(s.SOPClassUID)
	}
	return s, nil
}
