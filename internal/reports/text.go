package reports

import (
	"bufio"
	"io"
	"strings"
)

// WriteText writes d as plain UTF-8 text: a header block, then the
// content tree indented by two spaces a level. Multi-line text values
// keep their lines, indented. link may be nil.
func (d *Document) WriteText(w io.Writer, link Linker) error {
	bw := bufio.NewWriter(w)
	title := d.Title
	bw.WriteString(title + "\n" + strings.Repeat("=", max(len([]rune(title)), 3)) + "\n\n")
	field := func(name, v string) {
		if v == "" {
			return
		}
		bw.WriteString(name + ": " + strings.Repeat(" ", max(0, 20-len(name))) + oneLine(v) + "\n")
	}
	pat := d.PatientName
	if d.PatientSex != "" {
		pat += " (" + d.PatientSex + ")"
	}
	field("Patient", pat)
	pid := d.PatientID
	if d.Issuer != "" {
		pid += " (issuer " + d.Issuer + ")"
	}
	field("Patient ID", pid)
	field("Birth date", d.PatientBirthDate)
	field("Referring physician", d.ReferringPhysician)
	study := d.StudyDescription
	if d.StudyDate != "" {
		study = strings.TrimSpace(study + " " + d.StudyDate)
	}
	field("Study", study)
	field("Accession number", d.AccessionNumber)
	field("Series", d.SeriesDescription)
	field("Institution", d.Institution)
	field("Document", d.ClassName)
	c := d.CompletionFlag
	if d.CompletionFlagDesc != "" {
		c += " – " + d.CompletionFlagDesc
	}
	field("Completion", c)
	field("Verification", d.VerificationFlag)
	field("Preliminary flag", d.PreliminaryFlag)
	for _, o := range d.Observers {
		v := o.Name
		if o.Organization != "" {
			v += ", " + o.Organization
		}
		if o.DateTime != "" {
			v += ", " + o.DateTime
		}
		field(o.Role, v)
	}
	field("Content date/time", d.ContentDateTime)
	bw.WriteString("\n")
	if d.Root != nil {
		for _, k := range d.Root.Children {
			writeTextItem(bw, k, 0, link)
		}
	}
	if len(d.Evidence) > 0 {
		bw.WriteString("\nEvidence\n")
		for _, r := range d.Evidence {
			bw.WriteString("  " + refText(r, link) + "\n")
		}
	}
	return bw.Flush()
}

func refText(r Ref, link Linker) string {
	s := RefLabel(r) + " " + r.SOPInstanceUID
	if link != nil {
		if u := link(r); u != "" {
			s += " <" + u + ">"
		}
	}
	return s
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func writeTextItem(bw *bufio.Writer, it *Item, depth int, link Linker) {
	ind := strings.Repeat("  ", depth)
	var b strings.Builder
	b.WriteString(ind)
	if it.Relationship != "CONTAINS" && it.Relationship != "" {
		b.WriteString("[" + RelationshipLabel(it.Relationship) + "] ")
	}
	name := it.Concept.String()
	switch {
	case it.ValueType == "CONTAINER":
		if name == "" {
			name = "(untitled section)"
		}
		b.WriteString(strings.ToUpper(name))
	case len(it.Refs) > 0:
		if name != "" {
			b.WriteString(name + ": ")
		}
		for i, r := range it.Refs {
			if i > 0 {
				b.WriteString("; ")
			}
			b.WriteString(refText(r, link))
		}
	default:
		if name != "" {
			b.WriteString(name + ": ")
		}
		v := strings.ReplaceAll(strings.ReplaceAll(it.Value, "\r\n", "\n"), "\r", "\n")
		v = strings.TrimRight(v, "\n")
		b.WriteString(strings.ReplaceAll(v, "\n", "\n"+ind+"    "))
	}
	if it.ObservationDT != "" {
		b.WriteString(" (" + it.ObservationDT + ")")
	}
	b.WriteString("\n")
	bw.WriteString(b.String())
	for _, k := range it.Children {
		writeTextItem(bw, k, depth+1, link)
	}
}
