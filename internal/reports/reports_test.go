package reports

import (
	"bytes"
	"encoding/base64"
	"strconv"
	"strings"
	"testing"

	"github.com/cloudpacs/pacs/internal/storage"
)

// srJSON is a synthetic SR's DICOM JSON with markup in every free-text
// place a hostile or careless sender could put it.
const srJSON = `{
"00080016":{"vr":"UI","Value":["1.2.840.10008.5.1.4.1.1.88.22"]},
"00080018":{"vr":"UI","Value":["1.2.3.4"]},
"00080023":{"vr":"DA","Value":["20240102"]},
"00080033":{"vr":"TM","Value":["0930"]},
"00100010":{"vr":"PN","Value":[{"Alphabetic":"O'Brien^<b>Ann</b>"}]},
"00100020":{"vr":"LO","Value":["P&1"]},
"0040A491":{"vr":"CS","Value":["PARTIAL"]},
"0040A493":{"vr":"CS","Value":["UNVERIFIED"]},
"0040A073":{"vr":"SQ","Value":[{"0040A075":{"vr":"PN","Value":[{"Alphabetic":"Doe^John^^Dr"}]},"0040A027":{"vr":"LO","Value":["General \"Hospital\""]},"0040A030":{"vr":"DT","Value":["20240102101500"]}}]},
"0040A040":{"vr":"CS","Value":["CONTAINER"]},
"0040A050":{"vr":"CS","Value":["SEPARATE"]},
"0040A043":{"vr":"SQ","Value":[{"00080100":{"vr":"SH","Value":["11528-7"]},"00080102":{"vr":"SH","Value":["LN"]},"00080104":{"vr":"LO","Value":["Report </title><script>alert(0)</script>"]}}]},
"0040A730":{"vr":"SQ","Value":[
 {"0040A010":{"vr":"CS","Value":["HAS OBS CONTEXT"]},"0040A040":{"vr":"CS","Value":["PNAME"]},
  "0040A043":{"vr":"SQ","Value":[{"00080100":{"vr":"SH","Value":["121008"]},"00080102":{"vr":"SH","Value":["DCM"]},"00080104":{"vr":"LO","Value":["Person Observer Name"]}}]},
  "0040A123":{"vr":"PN","Value":[{"Alphabetic":"Smith^Jane"}]}},
 {"0040A010":{"vr":"CS","Value":["CONTAINS"]},"0040A040":{"vr":"CS","Value":["CONTAINER"]},
  "0040A043":{"vr":"SQ","Value":[{"00080104":{"vr":"LO","Value":["Findings"]}}]},
  "0040A730":{"vr":"SQ","Value":[
   {"0040A010":{"vr":"CS","Value":["CONTAINS"]},"0040A040":{"vr":"CS","Value":["TEXT"]},
    "0040A043":{"vr":"SQ","Value":[{"00080104":{"vr":"LO","Value":["Finding"]}}]},
    "0040A160":{"vr":"UT","Value":["<script>alert(1)</script> & \"quoted\" <img src=x onerror=alert(2)>\nsecond line"]}},
   {"0040A010":{"vr":"CS","Value":["CONTAINS"]},"0040A040":{"vr":"CS","Value":["NUM"]},
    "0040A043":{"vr":"SQ","Value":[{"00080104":{"vr":"LO","Value":["Diameter"]}}]},
    "0040A300":{"vr":"SQ","Value":[{"0040A30A":{"vr":"DS","Value":[12.5]},"004008EA":{"vr":"SQ","Value":[{"00080100":{"vr":"SH","Value":["mm"]},"00080102":{"vr":"SH","Value":["UCUM"]},"00080104":{"vr":"LO","Value":["millimeter"]}}]}}]}},
   {"0040A010":{"vr":"CS","Value":["HAS CONCEPT MOD"]},"0040A040":{"vr":"CS","Value":["CODE"]},
    "0040A043":{"vr":"SQ","Value":[{"00080104":{"vr":"LO","Value":["Laterality"]}}]},
    "0040A168":{"vr":"SQ","Value":[{"00080100":{"vr":"SH","Value":["7771000"]},"00080102":{"vr":"SH","Value":["SCT"]},"00080104":{"vr":"LO","Value":["Left"]}}]}},
   {"0040A010":{"vr":"CS","Value":["CONTAINS"]},"0040A040":{"vr":"CS","Value":["DATE"]},"0040A121":{"vr":"DA","Value":["20231231"]}},
   {"0040A010":{"vr":"CS","Value":["CONTAINS"]},"0040A040":{"vr":"CS","Value":["UIDREF"]},"0040A124":{"vr":"UI","Value":["1.2.999"]}},
   {"0040A010":{"vr":"CS","Value":["INFERRED FROM"]},"0040A040":{"vr":"CS","Value":["IMAGE"]},
    "00081199":{"vr":"SQ","Value":[{"00081150":{"vr":"UI","Value":["1.2.840.10008.5.1.4.1.1.2"]},"00081155":{"vr":"UI","Value":["1.2.5.6"]},"00081160":{"vr":"IS","Value":[3]}}]}},
   {"0040A010":{"vr":"CS","Value":["INFERRED FROM"]},"0040DB73":{"vr":"UL","Value":[1,2,1]}}
  ]}}
]}}`

func TestHTMLEscapes(t *testing.T) {
	d, err := Parse([]byte(srJSON))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	link := func(r Ref) string { return "https://pacs.example/x?a=1&sop=" + r.SOPInstanceUID + `"><script>` }
	if err := d.WriteHTML(&buf, link); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	for _, bad := range []string{"<script", "<img", "<b>Ann", "onerror=alert(2)>"} {
		if strings.Contains(page, bad) {
			t.Errorf("HTML holds unescaped %q", bad)
		}
	}
	for _, want := range []string{
		"&lt;script&gt;alert(1)&lt;/script&gt; &amp; &#34;quoted&#34; &lt;img src=x onerror=alert(2)&gt;\nsecond line",
		"Report &lt;/title&gt;&lt;script&gt;alert(0)&lt;/script&gt;",
		"&lt;b&gt;Ann&lt;/b&gt; O&#39;Brien", "P&amp;1",
		"12.5 millimeter", "Left", "2023-12-31", "1.2.999", "see item 1.2.1",
		"PARTIAL", "UNVERIFIED", "Dr John Doe", "2024-01-02 10:15:00", "Jane Smith",
		"inferred from", "has concept modifier", "CT image, frame 3",
		"https://pacs.example/x?a=1&amp;sop=1.2.5.6%22%3e%3cscript%3e",
		"2024-01-02 09:30",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("HTML lacks %q", want)
		}
	}
	if t.Failed() {
		t.Log(page)
	}
}

func TestText(t *testing.T) {
	d, err := Parse([]byte(srJSON))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := d.WriteText(&buf, nil); err != nil {
		t.Fatal(err)
	}
	txt := buf.String()
	for _, want := range []string{
		"  Finding: <script>alert(1)</script> & \"quoted\" <img src=x onerror=alert(2)>\n      second line\n",
		"FINDINGS", "Diameter: 12.5 millimeter", "[has concept modifier] Laterality: Left",
		"Verifying observer:", "Dr John Doe, General \"Hospital\", 2024-01-02 10:15:00",
	} {
		if !strings.Contains(txt, want) {
			t.Errorf("text lacks %q\n%s", want, txt)
		}
	}
}

func TestSummarize(t *testing.T) {
	s, err := Summarize([]byte(srJSON))
	if err != nil {
		t.Fatal(err)
	}
	if s.Kind != KindSR || s.Title != "Report </title><script>alert(0)</script>" || s.CompletionFlag != "PARTIAL" || s.ContentDate != "20240102" {
		t.Errorf("%+v", s)
	}
}

func TestParseNotReport(t *testing.T) {
	if _, err := Parse([]byte(`{"00080016":{"vr":"UI","Value":["1.2.840.10008.5.1.4.1.1.2"]}}`)); err == nil {
		t.Error("CT parsed as a report")
	}
	if _, err := Parse([]byte(`{`)); err == nil {
		t.Error("malformed JSON parsed")
	}
}

func TestDeepTreeBounded(t *testing.T) {
	// 200 nested containers: parsing stops at maxDepth, no stack blow-up.
	inner := `{"0040A040":{"vr":"CS","Value":["TEXT"]},"0040A160":{"vr":"UT","Value":["leaf"]}}`
	for range 200 {
		inner = `{"0040A010":{"vr":"CS","Value":["CONTAINS"]},"0040A040":{"vr":"CS","Value":["CONTAINER"]},"0040A730":{"vr":"SQ","Value":[` + inner + `]}}`
	}
	js := `{"00080016":{"vr":"UI","Value":["1.2.840.10008.5.1.4.1.1.88.33"]},"0040A040":{"vr":"CS","Value":["CONTAINER"]},"0040A730":{"vr":"SQ","Value":[` + inner + `]}}`
	d, err := Parse([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	depth := 0
	for it := d.Root; len(it.Children) > 0; it = it.Children[0] {
		depth++
	}
	if depth > maxDepth {
		t.Errorf("depth %d > %d", depth, maxDepth)
	}
	if err := d.WriteHTML(&bytes.Buffer{}, nil); err != nil {
		t.Fatal(err)
	}
}

func TestEncapsulatedInline(t *testing.T) {
	doc := []byte("%PDF-1.4 tiny\n") // 14 bytes; one pad byte below
	padded := append(append([]byte{}, doc...), 0)
	meta := `{"00080016":{"vr":"UI","Value":["1.2.840.10008.5.1.4.1.1.104.1"]},` +
		`"00420011":{"vr":"OB","InlineBinary":"` + base64.StdEncoding.EncodeToString(padded) + `"},` +
		`"00420015":{"vr":"UL","Value":[` + itoa(len(doc)) + `]}}`
	e, err := OpenEncapsulated(t.Context(), nil, &storage.Instance{Metadata: []byte(meta)})
	if err != nil {
		t.Fatal(err)
	}
	if e.Size != int64(len(doc)) || e.MIMEType != "application/pdf" {
		t.Fatalf("size %d mime %s", e.Size, e.MIMEType)
	}
	rc, err := e.Open(t.Context(), 5, -1)
	if err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	got.ReadFrom(rc)
	if got.String() != string(doc[5:]) {
		t.Errorf("got %q", got.String())
	}
	// Without EncapsulatedDocumentLength the whole value is the document.
	meta = `{"00420011":{"vr":"OB","InlineBinary":"` + base64.StdEncoding.EncodeToString(padded) + `"}}`
	if e, err = OpenEncapsulated(t.Context(), nil, &storage.Instance{Metadata: []byte(meta)}); err != nil || e.Size != int64(len(padded)) {
		t.Errorf("no length: %v %v", e, err)
	}
	if _, err := OpenEncapsulated(t.Context(), nil, &storage.Instance{Metadata: []byte(`{}`)}); err == nil {
		t.Error("no document: no error")
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestFormats(t *testing.T) {
	for _, c := range [][2]string{
		{formatPN("DOE^JANE", "", ""), "JANE DOE"},
		{formatPN("Smith^John^^Dr^MD", "", ""), "Dr John Smith, MD"},
		{formatPN("Yamada^Tarou", "山田^太郎", "やまだ^たろう"), "Tarou Yamada (太郎 山田, たろう やまだ)"},
		{formatDT("20010213184746.123+0100"), "2001-02-13 18:47:46.123 +0100"},
		{formatDT("2001"), "2001"},
		{formatTM("1200"), "12:00"},
		{formatTM("120000.000"), "12:00:00"},
		{formatDA("2001"), "2001"},
	} {
		if c[0] != c[1] {
			t.Errorf("got %q, want %q", c[0], c[1])
		}
	}
}
