package reports

import (
	"html/template"
	"io"
	"strconv"
	"strings"
)

// Linker returns the URL a referenced instance links to, or "" for none.
// For IMAGE references it is the instance's (or frame's) /rendered URL.
type Linker func(r Ref) string

// imageClasses names the common referenced SOP classes in link labels.
var refClassNames = map[string]string{
	"1.2.840.10008.5.1.4.1.1.1":        "CR image",
	"1.2.840.10008.5.1.4.1.1.1.1":      "DX image",
	"1.2.840.10008.5.1.4.1.1.1.2":      "MG image",
	"1.2.840.10008.5.1.4.1.1.2":        "CT image",
	"1.2.840.10008.5.1.4.1.1.2.1":      "Enhanced CT image",
	"1.2.840.10008.5.1.4.1.1.3.1":      "US multi-frame image",
	"1.2.840.10008.5.1.4.1.1.4":        "MR image",
	"1.2.840.10008.5.1.4.1.1.4.1":      "Enhanced MR image",
	"1.2.840.10008.5.1.4.1.1.6.1":      "US image",
	"1.2.840.10008.5.1.4.1.1.7":        "Secondary capture image",
	"1.2.840.10008.5.1.4.1.1.11.1":     "Grayscale presentation state",
	"1.2.840.10008.5.1.4.1.1.12.1":     "X-ray angiographic image",
	"1.2.840.10008.5.1.4.1.1.20":       "NM image",
	"1.2.840.10008.5.1.4.1.1.128":      "PET image",
	"1.2.840.10008.5.1.4.1.1.130":      "Enhanced PET image",
	"1.2.840.10008.5.1.4.1.1.481.1":    "RT image",
	"1.2.840.10008.5.1.4.1.1.9.1.1":    "12-lead ECG waveform",
	"1.2.840.10008.5.1.4.1.1.9.2.1":    "Hemodynamic waveform",
	"1.2.840.10008.5.1.4.1.1.77.1.4":   "VL photographic image",
	"1.2.840.10008.5.1.4.1.1.66.4":     "Segmentation",
	"1.2.840.10008.5.1.4.1.1.88.59":    "Key object selection",
	"1.2.840.10008.5.1.4.1.1.104.1":    "Encapsulated PDF",
	"1.2.840.10008.5.1.4.1.1.88.11":    "Basic text SR",
	"1.2.840.10008.5.1.4.1.1.88.22":    "Enhanced SR",
	"1.2.840.10008.5.1.4.1.1.88.33":    "Comprehensive SR",
	"1.2.840.10008.5.1.4.1.1.88.34":    "Comprehensive 3D SR",
	"1.2.840.10008.5.1.4.1.1.13.1.3":   "Breast tomosynthesis image",
	"1.2.840.10008.5.1.4.1.1.77.1.6":   "VL whole slide microscopy image",
	"1.2.840.10008.5.1.4.1.1.481.2":    "RT dose",
	"1.2.840.10008.5.1.4.1.1.11.2":     "Color presentation state",
	"1.2.840.10008.5.1.4.1.1.9.4.1":    "Respiratory waveform",
	"1.2.840.10008.5.1.4.1.1.9.3.1":    "Cardiac electrophysiology waveform",
	"1.2.840.10008.5.1.4.1.1.13.1.1":   "X-ray 3D angiographic image",
	"1.2.840.10008.5.1.4.1.1.88.67":    "X-ray radiation dose SR",
	"1.2.840.10008.5.1.4.1.1.104.2":    "Encapsulated CDA",
	"1.2.840.10008.5.1.4.1.1.66":       "Raw data",
	"1.2.840.10008.5.1.4.1.1.7.4":      "Multi-frame true color SC image",
	"1.2.840.10008.5.1.4.1.1.7.2":      "Multi-frame grayscale byte SC image",
	"1.2.840.10008.5.1.4.1.1.7.3":      "Multi-frame grayscale word SC image",
	"1.2.840.10008.5.1.4.1.1.12.2":     "X-ray radiofluoroscopic image",
	"1.2.840.10008.5.1.4.1.1.1.1.1":    "DX image (processing)",
	"1.2.840.10008.5.1.4.1.1.1.2.1":    "MG image (processing)",
	"1.2.840.10008.5.1.4.1.1.128.1":    "Legacy converted enhanced PET image",
	"1.2.840.10008.5.1.4.1.1.2.2":      "Legacy converted enhanced CT image",
	"1.2.840.10008.5.1.4.1.1.4.4":      "Legacy converted enhanced MR image",
	"1.2.840.10008.5.1.4.1.1.77.1.5.1": "Ophthalmic photography 8-bit image",
}

// RefLabel names a referenced instance for people: its SOP class and frames.
func RefLabel(r Ref) string {
	s := refClassNames[r.SOPClassUID]
	if s == "" {
		s = ClassName(r.SOPClassUID)
	}
	if s == "" {
		s = "instance of class " + r.SOPClassUID
	}
	if len(r.Frames) > 0 {
		fs := make([]string, len(r.Frames))
		for i, f := range r.Frames {
			fs[i] = strconv.Itoa(f)
		}
		if len(fs) == 1 {
			s += ", frame " + fs[0]
		} else {
			s += ", frames " + strings.Join(fs, ", ")
		}
	}
	return s
}

var relLabels = map[string]string{
	"CONTAINS":        "contains",
	"HAS PROPERTIES":  "has properties",
	"HAS OBS CONTEXT": "has observation context",
	"HAS ACQ CONTEXT": "has acquisition context",
	"HAS CONCEPT MOD": "has concept modifier",
	"INFERRED FROM":   "inferred from",
	"SELECTED FROM":   "selected from",
}

// RelationshipLabel is a relationship type in words.
func RelationshipLabel(rel string) string {
	if s, ok := relLabels[rel]; ok {
		return s
	}
	return strings.ToLower(rel)
}

type htmlRef struct {
	Label, URL, UID string
}

type htmlNode struct {
	*Item
	Level int
	Rel   string // relationship label, "" for CONTAINS
	Refs  []htmlRef
	Kids  []*htmlNode
}

type htmlPage struct {
	D         *Document
	Root      *htmlNode
	Evidence  []htmlRef
	Generator string
}

func buildNode(it *Item, level int, link Linker) *htmlNode {
	n := &htmlNode{Item: it, Level: min(level, 6)}
	if it.Relationship != "CONTAINS" && it.Relationship != "" {
		n.Rel = RelationshipLabel(it.Relationship)
	}
	for _, r := range it.Refs {
		n.Refs = append(n.Refs, makeRef(r, link))
	}
	for _, c := range it.Children {
		l := level
		if c.ValueType == "CONTAINER" {
			l++
		}
		n.Kids = append(n.Kids, buildNode(c, l, link))
	}
	return n
}

func makeRef(r Ref, link Linker) htmlRef {
	h := htmlRef{Label: RefLabel(r), UID: r.SOPInstanceUID}
	if link != nil {
		h.URL = link(r)
	}
	return h
}

// WriteHTML writes d as one self-contained HTML page (inline style, no
// script, no external resource). Every value is escaped by html/template:
// SR text is patient data and may hold markup. link may be nil.
func (d *Document) WriteHTML(w io.Writer, link Linker) error {
	p := htmlPage{D: d}
	if d.Root != nil {
		p.Root = buildNode(d.Root, 1, link)
	}
	for _, r := range d.Evidence {
		p.Evidence = append(p.Evidence, makeRef(r, link))
	}
	return pageTemplate.Execute(w, p)
}

var pageTemplate = template.Must(template.New("page").Funcs(template.FuncMap{
	"flagClass": func(s string) string {
		switch s {
		case "COMPLETE", "VERIFIED":
			return "ok"
		}
		return "warn"
	},
}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{{.D.Title}}{{with .D.PatientName}} – {{.}}{{end}}</title>
<style>
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;max-width:52rem;padding:1rem 1.25rem;color:#1b1b1b;background:#fff}
h1{font-size:1.5rem;margin:.2rem 0 .8rem}
.h2{font-size:1.2rem}.h3{font-size:1.08rem}.h4,.h5,.h6{font-size:1rem}
.hd{font-weight:600;margin:1rem 0 .35rem}
table.meta{border-collapse:collapse;margin-bottom:1rem;width:100%}
table.meta th{text-align:left;font-weight:600;padding:.15rem .8rem .15rem 0;vertical-align:top;white-space:nowrap;color:#444;width:11rem}
table.meta td{padding:.15rem 0;vertical-align:top}
.ok{color:#17623a;font-weight:600}.warn{color:#9a4b00;font-weight:600}
.item{margin:.25rem 0 .25rem 0}
.kids{margin-left:1.1rem;border-left:2px solid #e3e3e3;padding-left:.7rem}
.concept{font-weight:600}
.value{white-space:pre-wrap}
.rel{font-size:.78rem;color:#666;border:1px solid #ccc;border-radius:.25rem;padding:0 .3rem;margin-right:.35rem}
.when,.uid,.code{font-size:.85rem;color:#555}
.vt{font-size:.72rem;color:#888;margin-left:.3rem}
footer{margin-top:2rem;font-size:.8rem;color:#777;border-top:1px solid #ddd;padding-top:.5rem}
@media print{.rel,.vt{display:none}body{max-width:none}}
</style>
</head>
<body>
<header>
<h1>{{.D.Title}}</h1>
<table class="meta">
<tr><th>Patient</th><td>{{.D.PatientName}}{{if .D.PatientSex}} ({{.D.PatientSex}}){{end}}</td></tr>
<tr><th>Patient ID</th><td>{{.D.PatientID}}{{with .D.Issuer}} <span class="code">(issuer {{.}})</span>{{end}}</td></tr>
<tr><th>Birth date</th><td>{{.D.PatientBirthDate}}</td></tr>
{{with .D.ReferringPhysician}}<tr><th>Referring physician</th><td>{{.}}</td></tr>
{{end}}<tr><th>Study</th><td>{{.D.StudyDescription}}{{with .D.StudyDate}} <span class="when">{{.}}</span>{{end}}</td></tr>
<tr><th>Accession number</th><td>{{.D.AccessionNumber}}</td></tr>
{{with .D.SeriesDescription}}<tr><th>Series</th><td>{{.}}</td></tr>
{{end}}{{with .D.Institution}}<tr><th>Institution</th><td>{{.}}</td></tr>
{{end}}<tr><th>Document</th><td>{{.D.ClassName}}{{with .D.Manufacturer}} <span class="code">({{.}})</span>{{end}}</td></tr>
{{with .D.CompletionFlag}}<tr><th>Completion</th><td><span class="{{flagClass .}}">{{.}}</span>{{with $.D.CompletionFlagDesc}} – {{.}}{{end}}</td></tr>
{{end}}{{with .D.VerificationFlag}}<tr><th>Verification</th><td><span class="{{flagClass .}}">{{.}}</span></td></tr>
{{end}}{{with .D.PreliminaryFlag}}<tr><th>Preliminary flag</th><td>{{.}}</td></tr>
{{end}}{{range .D.Observers}}<tr><th>{{.Role}}</th><td>{{.Name}}{{with .Organization}}, {{.}}{{end}}{{with .DateTime}} <span class="when">{{.}}</span>{{end}}</td></tr>
{{end}}<tr><th>Content date/time</th><td>{{.D.ContentDateTime}}</td></tr>
</table>
</header>
<main>
{{with .Root}}{{range .Kids}}{{template "item" .}}{{end}}{{end}}
</main>
{{with .Evidence}}<section>
<div class="hd h2" role="heading" aria-level="2">Evidence</div>
<ul>{{range .}}<li>{{if .URL}}<a href="{{.URL}}">{{.Label}}</a>{{else}}{{.Label}}{{end}} <span class="uid">{{.UID}}</span></li>{{end}}</ul>
</section>{{end}}
<footer>SOP Instance UID {{.D.SOPInstanceUID}}</footer>
</body>
</html>
{{define "item"}}{{if eq .ValueType "CONTAINER"}}<section class="item" data-rel="{{.Relationship}}" data-id="{{.ID}}">
<div class="hd h{{.Level}}" role="heading" aria-level="{{.Level}}">{{with .Rel}}<span class="rel">{{.}}</span>{{end}}{{.Concept}}{{with .ObservationDT}} <span class="when">{{.}}</span>{{end}}</div>
{{if .Kids}}<div class="kids">{{range .Kids}}{{template "item" .}}{{end}}</div>{{end}}
</section>
{{else}}<div class="item" data-rel="{{.Relationship}}" data-id="{{.ID}}">{{with .Rel}}<span class="rel">{{.}}</span>{{end}}{{with .Concept.String}}<span class="concept">{{.}}:</span> {{end}}{{if .Refs}}{{range $i, $r := .Refs}}{{if $i}}; {{end}}{{if $r.URL}}<a href="{{$r.URL}}">{{$r.Label}}</a>{{else}}{{$r.Label}}{{end}} <span class="uid">{{$r.UID}}</span>{{end}}{{else}}<span class="value">{{.Value}}</span>{{end}}{{with .Code}} <span class="code">({{.Value}}, {{.Scheme}})</span>{{end}}{{with .ObservationDT}} <span class="when">{{.}}</span>{{end}}<span class="vt">{{.ValueType}}</span>
{{if .Kids}}<div class="kids">{{range .Kids}}{{template "item" .}}{{end}}</div>{{end}}</div>
{{end}}{{end}}`))
