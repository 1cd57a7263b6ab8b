package storage

import "testing"

func TestAppendBaseFree(t *testing.T) {
	md := []byte(`{"7FE00010":{"vr":"OW","BulkDataURI":"` + BulkPlaceholder + `/bulk/7FE00010"},"00091010":{"vr":"OB","BulkDataURI":"` + BulkPlaceholder + `/bulk/00091010"}}`)
	for _, c := range []struct {
		study, series, sop string
		path               string
	}{
		{"1.2", "1.2.3", "1.2.3.4", "/studies/1.2/series/1.2.3/instances/1.2.3.4"},
		// Not UIDs: nothing may end the string or add a placeholder.
		{`1"2`, "1\x012", "1\\\xff", `/studies/1\"2/series/1\u00012/instances/1\\\uFFFD`},
	} {
		got := string(appendBaseFree([]byte("x"), md, c.study, c.series, c.sop))
		want := `x{"7FE00010":{"vr":"OW","BulkDataURI":"` + BulkPlaceholder + c.path + `/bulk/7FE00010"},"00091010":{"vr":"OB","BulkDataURI":"` + BulkPlaceholder + c.path + `/bulk/00091010"}}`
		if got != want {
			t.Errorf("appendBaseFree(%q, %q, %q):\n got %q\nwant %q", c.study, c.series, c.sop, got, want)
		}
	}
	if got := string(appendBaseFree(nil, []byte(`{"00100010":{"vr":"PN"}}`), "1", "2", "3")); got != `{"00100010":{"vr":"PN"}}` {
		t.Errorf("without placeholders: %q", got)
	}
}
