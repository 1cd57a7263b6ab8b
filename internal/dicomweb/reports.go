package dicomweb

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"html/template"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/cloudpacs/pacs/internal/reports"
	"github.com/cloudpacs/pacs/internal/storage"
)

// Reports for referring physicians (docs/reports.md).
//
//	GET .../studies/{s}/series/{se}/instances/{i}/rendered
//	    SR: text/html (default) or text/plain; Encapsulated PDF:
//	    application/pdf (Range requests work). Also ?accept=.
//	GET /dicom-web/studies/{study}/reports
//	GET /dicom-web/reports?PatientID=…[&IssuerOfPatientID=…]
//	    the reports (SR and PDF instances) of a study or a patient,
//	    newest first: application/json (default) or text/html.
//	GET /wado?requestType=WADO&…&contentType=application/pdf|text/html|text/plain
//	    the same renderings through WADO-URI (wadouri.go).

const (
	mtPDF   = "application/pdf"
	mtHTML  = "text/html"
	mtPlain = "text/plain"
	mtJSON  = "application/json"
)

// reportCSP forbids scripts, plugins and outside resources in rendered
// report pages: defence in depth behind html/template escaping.
const reportCSP = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'self'"

// maxLinkLookups bounds the index look-ups one rendered report makes to
// link its referenced instances (a Key Object Selection may list many).
const maxLinkLookups = 2000

func registerReports(g *echo.Group, h *Handler) {
	get := []string{http.MethodGet, http.MethodHead}
	g.Match(get, "/studies/:study/reports", h.listReports)
	g.Match(get, "/reports", h.listReports)
}

// isReport reports an instance served by the report renderings.
func isReport(in *storage.Instance) bool {
	return reports.KindOf(in.SOPClassUID) != reports.KindNone
}

// chooseReport negotiates the representation of a report of kind k.
func chooseReport(ranges []mediaRange, k reports.Kind) (string, error) {
	best, bestQ := "", -1.0
	for _, m := range ranges {
		var t string
		switch k {
		case reports.KindPDF:
			switch m.typ {
			case mtPDF, "application/*", "*/*":
				t = mtPDF
			}
		case reports.KindSR:
			switch m.typ {
			case mtHTML, "text/*", "*/*", "application/xhtml+xml":
				t = mtHTML
			case mtPlain:
				t = mtPlain
			}
		}
		if t != "" && m.q > bestQ && m.q > 0 {
			best, bestQ = t, m.q
		}
	}
	if best == "" {
		if k == reports.KindPDF {
			return "", notAcceptablef("this instance is an Encapsulated PDF: it is rendered as application/pdf only")
		}
		return "", notAcceptablef("this instance is a Structured Report: it is rendered as text/html or text/plain")
	}
	return best, nil
}

// renderedReport answers /rendered of an SR or Encapsulated PDF instance.
func (h *Handler) renderedReport(c echo.Context, in *storage.Instance) error {
	mt, err := chooseReport(acceptRanges(c), reports.KindOf(in.SOPClassUID))
	if err != nil {
		return err
	}
	return h.writeReport(c, in, mt)
}

// writeReport sends in rendered as mt (application/pdf, text/html or
// text/plain, as chooseReport or WADO-URI picked).
func (h *Handler) writeReport(c echo.Context, in *storage.Instance, mt string) error {
	res := c.Response()
	res.Header().Set("X-Content-Type-Options", "nosniff")
	if mt == mtPDF {
		return h.writePDF(c, in)
	}
	doc, err := reports.Parse(in.Metadata)
	if err != nil {
		return err
	}
	link := h.reportLinker(c.Request().Context(), h.baseURL(c), doc)
	var buf bytes.Buffer
	ct := mtPlain + "; charset=utf-8"
	if mt == mtHTML {
		ct = mtHTML + "; charset=utf-8"
		res.Header().Set("Content-Security-Policy", reportCSP)
		err = doc.WriteHTML(&buf, link)
	} else {
		err = doc.WriteText(&buf, link)
	}
	if err != nil {
		return err
	}
	// Links depend on what else is archived: revalidate every time.
	res.Header().Set("Cache-Control", "private, no-cache")
	return c.Blob(http.StatusOK, ct, buf.Bytes())
}

// writePDF streams the encapsulated document with http.ServeContent
// (Range and conditional requests: PDF viewers read by range).
func (h *Handler) writePDF(c echo.Context, in *storage.Instance) error {
	req := c.Request()
	doc, err := reports.OpenEncapsulated(req.Context(), h.archive, in)
	if err != nil {
		return err
	}
	if !strings.EqualFold(doc.MIMEType, mtPDF) {
		return notAcceptablef("the encapsulated document is %s, not application/pdf", doc.MIMEType)
	}
	res := c.Response()
	res.Header().Set(echo.HeaderContentType, mtPDF)
	res.Header().Set(echo.HeaderContentDisposition, `inline; filename="`+in.SOPInstanceUID+`.pdf"`)
	res.Header().Set("ETag", `"`+in.SHA256+`-pdf"`)
	res.Header().Set("Cache-Control", "private, max-age=3600")
	rs := storage.NewContent(doc.Size, doc.Open).Seeker(req.Context())
	defer rs.Close()
	http.ServeContent(res, req, "", in.Created, rs)
	return nil
}

// reportLinker links the instances an SR references: IMAGE references
// to their /rendered (or /frames/{n}/rendered) URL, report instances to
// their /rendered URL. Study and series come from the index, else from
// the report's evidence sequences; an unknown instance gets no link.
func (h *Handler) reportLinker(ctx context.Context, base string, doc *reports.Document) reports.Linker {
	type loc struct{ study, series, class string }
	evidence := map[string]loc{}
	for _, r := range doc.Evidence {
		evidence[r.SOPInstanceUID] = loc{r.StudyInstanceUID, r.SeriesInstanceUID, r.SOPClassUID}
	}
	cache := map[string]*loc{}
	lookups := 0
	find := func(sop string) *loc {
		if l, ok := cache[sop]; ok {
			return l
		}
		var l *loc
		if lookups < maxLinkLookups && validUID(sop) {
			lookups++
			if in, err := h.index.Instance(ctx, "", "", sop); err == nil {
				cl := in.SOPClassUID
				if len(in.Frames) == 0 && !isReport(in) {
					cl = "" // nothing to render
				}
				l = &loc{in.StudyInstanceUID, in.SeriesInstanceUID, cl}
			}
		}
		if l == nil {
			if e, ok := evidence[sop]; ok {
				l = &e
			}
		}
		cache[sop] = l
		return l
	}
	return func(r reports.Ref) string {
		l := find(r.SOPInstanceUID)
		if l == nil || !validUID(l.study) || !validUID(l.series) || l.class == "" {
			return ""
		}
		u := instanceURL(base, l.study, l.series, r.SOPInstanceUID)
		if reports.KindOf(l.class) != reports.KindNone || reports.KindOf(r.SOPClassUID) != reports.KindNone {
			return u + "/rendered"
		}
		if len(r.Frames) == 1 {
			return u + "/frames/" + strconv.Itoa(r.Frames[0]) + "/rendered"
		}
		return u + "/rendered"
	}
}

// reportEntry is one report in a listing (schema in docs/reports.md).
type reportEntry struct {
	SOPInstanceUID    string     `json:"sopInstanceUID"`
	SeriesInstanceUID string     `json:"seriesInstanceUID"`
	StudyInstanceUID  string     `json:"studyInstanceUID"`
	SOPClassUID       string     `json:"sopClassUID"`
	Kind              string     `json:"kind"`
	Title             string     `json:"title"`
	ContentDate       string     `json:"contentDate,omitempty"`
	ContentTime       string     `json:"contentTime,omitempty"`
	CompletionFlag    string     `json:"completionFlag,omitempty"`
	VerificationFlag  string     `json:"verificationFlag,omitempty"`
	PatientName       string     `json:"patientName,omitempty"`
	PatientID         string     `json:"patientID,omitempty"`
	StudyDate         string     `json:"studyDate,omitempty"`
	StudyDescription  string     `json:"studyDescription,omitempty"`
	AccessionNumber   string     `json:"accessionNumber,omitempty"`
	URLs              reportURLs `json:"urls"`
}

type reportURLs struct {
	HTML  string `json:"html,omitempty"`
	Text  string `json:"text,omitempty"`
	PDF   string `json:"pdf,omitempty"`
	DICOM string `json:"dicom"`
}

// listReports lists the reports of a study (path) or of a patient
// (?PatientID=, exact, with optional ?IssuerOfPatientID=), newest first.
// ?limit= and ?offset= page through them (default and maximum: the
// index's own).
func (h *Handler) listReports(c echo.Context) error {
	study, _, _, err := pathUIDs(c)
	if err != nil {
		return err
	}
	mt, err := chooseListing(acceptRanges(c))
	if err != nil {
		return err
	}
	qp := c.QueryParams()
	q := storage.Query{
		Level:            storage.LevelInstance,
		StudyInstanceUID: study,
		Matches:          []storage.Match{{Tag: storage.TagSOPClassUID, Value: strings.Join(reports.ClassUIDs(), `\`)}},
	}
	if study == "" {
		pid := strings.TrimSpace(qp.Get("PatientID"))
		if pid == "" {
			return badRequestf("PatientID is required: /reports?PatientID=…[&IssuerOfPatientID=…] (or /studies/{study}/reports)")
		}
		if strings.ContainsAny(pid, `*?\`) {
			return badRequestf("PatientID must be an exact value, without wildcards")
		}
		q.Matches = append(q.Matches, storage.Match{Tag: storage.TagPatientID, Value: pid})
		if iss := strings.TrimSpace(qp.Get("IssuerOfPatientID")); iss != "" {
			if strings.ContainsAny(iss, `*?\`) {
				return badRequestf("IssuerOfPatientID must be an exact value, without wildcards")
			}
			q.Matches = append(q.Matches, storage.Match{Tag: storage.TagIssuerOfPatientID, Value: iss})
		}
	}
	for _, p := range []struct {
		name string
		dst  *int
	}{{"limit", &q.Limit}, {"offset", &q.Offset}} {
		if s := qp.Get(p.name); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 0 {
				return badRequestf("%s must be a non-negative integer", p.name)
			}
			*p.dst = n
		}
	}
	ctx := c.Request().Context()
	results, err := h.index.Search(ctx, q)
	if err != nil {
		return err
	}
	if len(results) == 0 && study != "" {
		if _, err := h.index.StudyVersion(ctx, study); err != nil {
			return err // unknown study: 404
		}
	}
	base := h.baseURL(c)
	entries := make([]reportEntry, 0, len(results))
	for _, r := range results {
		in := &r.Instance
		s, err := reports.Summarize(in.Metadata)
		if err != nil {
			h.log.Warn("report listing: unreadable metadata", "sop", in.SOPInstanceUID, "err", err)
			continue
		}
		u := instanceURL(base, in.StudyInstanceUID, in.SeriesInstanceUID, in.SOPInstanceUID)
		e := reportEntry{
			SOPInstanceUID: in.SOPInstanceUID, SeriesInstanceUID: in.SeriesInstanceUID,
			StudyInstanceUID: in.StudyInstanceUID, SOPClassUID: in.SOPClassUID,
			Kind: string(s.Kind), Title: s.Title,
			ContentDate: s.ContentDate, ContentTime: s.ContentTime,
			CompletionFlag: s.CompletionFlag, VerificationFlag: s.VerificationFlag,
			PatientName: s.PatientName, PatientID: s.PatientID,
			StudyDate: s.StudyDate, StudyDescription: s.StudyDescription, AccessionNumber: s.AccessionNumber,
			URLs: reportURLs{DICOM: u},
		}
		switch s.Kind {
		case reports.KindPDF:
			e.URLs.PDF = u + "/rendered?accept=application%2Fpdf"
		case reports.KindSR:
			e.URLs.HTML = u + "/rendered?accept=text%2Fhtml"
			e.URLs.Text = u + "/rendered?accept=text%2Fplain"
		}
		entries = append(entries, e)
	}
	slices.SortStableFunc(entries, func(a, b reportEntry) int {
		return cmp.Or(
			cmp.Compare(b.ContentDate+b.ContentTime, a.ContentDate+a.ContentTime),
			cmp.Compare(b.StudyDate, a.StudyDate),
			cmp.Compare(a.SOPInstanceUID, b.SOPInstanceUID))
	})
	c.Response().Header().Set("Cache-Control", "private, no-cache")
	if mt == mtHTML {
		var buf bytes.Buffer
		title := "Reports of patient " + qp.Get("PatientID")
		if study != "" {
			title = "Reports of study " + study
		}
		if err := listTemplate.Execute(&buf, struct {
			Title   string
			Entries []reportEntry
		}{title, entries}); err != nil {
			return err
		}
		c.Response().Header().Set("Content-Security-Policy", reportCSP)
		c.Response().Header().Set("X-Content-Type-Options", "nosniff")
		return c.Blob(http.StatusOK, mtHTML+"; charset=utf-8", buf.Bytes())
	}
	b, err := json.Marshal(entries)
	if err != nil {
		return err
	}
	return c.Blob(http.StatusOK, mtJSON, append(b, '\n'))
}

func chooseListing(ranges []mediaRange) (string, error) {
	best, bestQ := "", -1.0
	for _, m := range ranges {
		var t string
		switch m.typ {
		case mtJSON, "application/*", "*/*":
			t = mtJSON
		case mtHTML, "text/*":
			t = mtHTML
		}
		if t != "" && m.q > bestQ && m.q > 0 {
			best, bestQ = t, m.q
		}
	}
	if best == "" {
		return "", notAcceptablef("report listings are available as application/json or text/html")
	}
	return best, nil
}

var listTemplate = template.Must(template.New("list").Funcs(template.FuncMap{
	"da": func(s string) string {
		if len(s) == 8 {
			return s[:4] + "-" + s[4:6] + "-" + s[6:]
		}
		return s
	},
}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{{.Title}}</title>
<style>
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;max-width:60rem;padding:1rem 1.25rem;color:#1b1b1b}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.3rem .6rem;border-bottom:1px solid #e3e3e3;vertical-align:top}
th{font-weight:600;color:#444}.muted{color:#666;font-size:.85rem}
</style>
</head>
<body>
<h1>{{.Title}}</h1>
{{if .Entries}}<table>
<thead><tr><th>Date</th><th>Report</th><th>Patient</th><th>Study</th><th>Status</th><th>Open</th></tr></thead>
<tbody>
{{range .Entries}}<tr><td>{{da .ContentDate}}</td><td>{{.Title}} <span class="muted">({{.Kind}})</span></td><td>{{.PatientName}} <span class="muted">{{.PatientID}}</span></td><td>{{.StudyDescription}} <span class="muted">{{da .StudyDate}}{{with .AccessionNumber}} #{{.}}{{end}}</span></td><td>{{.CompletionFlag}} {{.VerificationFlag}}</td><td>{{with .URLs.HTML}}<a href="{{.}}">HTML</a> {{end}}{{with .URLs.Text}}<a href="{{.}}">text</a> {{end}}{{with .URLs.PDF}}<a href="{{.}}">PDF</a>{{end}}</td></tr>
{{end}}</tbody>
</table>{{else}}<p>No reports.</p>{{end}}
</body>
</html>
`))
