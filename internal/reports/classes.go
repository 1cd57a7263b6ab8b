package reports

import "slices"

// Kind is the kind of a report instance.
type Kind string

// Report kinds.
const (
	KindNone Kind = ""
	KindSR   Kind = "sr"  // a Structured Report: rendered as HTML or text
	KindPDF  Kind = "pdf" // an Encapsulated PDF: served as the PDF
)

// EncapsulatedPDF is the Encapsulated PDF Storage SOP class.
const EncapsulatedPDF = "1.2.840.10008.5.1.4.1.1.104.1"

// srClasses are the SR storage SOP classes (PS3.4 B.5, Table B.5-1) whose
// content tree this package renders.
var srClasses = map[string]string{
	"1.2.840.10008.5.1.4.1.1.88.11": "Basic Text SR",
	"1.2.840.10008.5.1.4.1.1.88.22": "Enhanced SR",
	"1.2.840.10008.5.1.4.1.1.88.33": "Comprehensive SR",
	"1.2.840.10008.5.1.4.1.1.88.34": "Comprehensive 3D SR",
	"1.2.840.10008.5.1.4.1.1.88.35": "Extensible SR",
	"1.2.840.10008.5.1.4.1.1.88.40": "Procedure Log",
	"1.2.840.10008.5.1.4.1.1.88.50": "Mammography CAD SR",
	"1.2.840.10008.5.1.4.1.1.88.59": "Key Object Selection Document",
	"1.2.840.10008.5.1.4.1.1.88.65": "Chest CAD SR",
	"1.2.840.10008.5.1.4.1.1.88.67": "X-Ray Radiation Dose SR",
	"1.2.840.10008.5.1.4.1.1.88.68": "Radiopharmaceutical Radiation Dose SR",
	"1.2.840.10008.5.1.4.1.1.88.69": "Colon CAD SR",
	"1.2.840.10008.5.1.4.1.1.88.70": "Implantation Plan SR",
	"1.2.840.10008.5.1.4.1.1.88.71": "Acquisition Context SR",
	"1.2.840.10008.5.1.4.1.1.88.72": "Simplified Adult Echo SR",
	"1.2.840.10008.5.1.4.1.1.88.73": "Patient Radiation Dose SR",
	"1.2.840.10008.5.1.4.1.1.88.74": "Planned Imaging Agent Administration SR",
	"1.2.840.10008.5.1.4.1.1.88.75": "Performed Imaging Agent Administration SR",
	"1.2.840.10008.5.1.4.1.1.88.76": "Enhanced X-Ray Radiation Dose SR",
	"1.2.840.10008.5.1.4.1.1.88.77": "Waveform Annotation SR",
}

// KindOf tells whether instances of sopClass are reports, and which kind.
func KindOf(sopClass string) Kind {
	if sopClass == EncapsulatedPDF {
		return KindPDF
	}
	if _, ok := srClasses[sopClass]; ok {
		return KindSR
	}
	return KindNone
}

// ClassName is the name of an SR or PDF SOP class, "" if unknown.
func ClassName(sopClass string) string {
	if sopClass == EncapsulatedPDF {
		return "Encapsulated PDF"
	}
	return srClasses[sopClass]
}

// ClassUIDs lists every report SOP class, for a SOPClassUID list match.
func ClassUIDs() []string {
	out := []string{EncapsulatedPDF}
	for uid := range srClasses {
		out = append(out, uid)
	}
	slices.Sort(out)
	return out
}
