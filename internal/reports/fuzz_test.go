package reports

import (
	"bytes"
	"testing"
)

// FuzzParse: any metadata document gives a report or an error, never a
// panic; a parsed report renders to HTML and text.
func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"0040A040":{"vr":"CS","Value":["CONTAINER"]},"0040A730":{"vr":"SQ","Value":[{"0040A040":{"vr":"CS","Value":["TEXT"]},"0040A160":{"vr":"UT","Value":["<script>x</script>"]}}]}}`))
	f.Add([]byte(`{"00420011":{"vr":"OB","BulkDataURI":"\u0001/bulk/00420011"}}`))
	f.Add([]byte(`{"0040A730":{"vr":"SQ","Value":[{"0040A730":{"vr":"SQ","Value":[{}]}}]}}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		doc, err := Parse(b)
		if err != nil || doc == nil {
			return
		}
		var html, text bytes.Buffer
		link := func(r Ref) string { return "/r/" + r.SOPInstanceUID }
		if err := doc.WriteHTML(&html, link); err != nil {
			t.Fatalf("WriteHTML: %v", err)
		}
		if err := doc.WriteText(&text, link); err != nil {
			t.Fatalf("WriteText: %v", err)
		}
		if bytes.Contains(html.Bytes(), []byte("<script")) {
			t.Fatalf("unescaped script in HTML of %q", b)
		}
	})
}
