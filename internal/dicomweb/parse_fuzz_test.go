package dicomweb

import (
	"testing"
)

// FuzzParseAccept: any Accept header parses to media ranges without a
// panic, with q values in [0, 1].
func FuzzParseAccept(f *testing.F) {
	for _, s := range []string{
		"", "*/*", "application/dicom+json",
		`multipart/related; type="application/dicom"; transfer-syntax=*`,
		`multipart/related; type=application/octet-stream; transfer-syntax=*`,
		`image/jpeg;q=0.5, image/png;q=0.9, */*;q=0.1`,
		`multipart/related; type="image/jls"; transfer-syntax="1.2.840.10008.1.2.4.80", application/octet-stream`,
		`;;;=,,"`, `a/b; q=nan`, `a/b; q=-1`, `a/b; q=2`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, m := range parseAccept(s) {
			if m.q < 0 || m.q > 1 {
				t.Fatalf("%q: q = %v", s, m.q)
			}
			_ = m.partType()
		}
		parseContentType(s)
	})
}

// FuzzParseFrameList: a frame list is either rejected or a list of
// frame numbers >= 1.
func FuzzParseFrameList(f *testing.F) {
	for _, s := range []string{"1", "1,3,5", "0", "-1", "1,,2", "+1", " 2 ", "99999999999999999999", "1,a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		list, err := parseFrameList(s)
		if err != nil {
			return
		}
		if len(list) == 0 {
			t.Fatalf("%q: no error and no frames", s)
		}
		for _, n := range list {
			if n < 1 {
				t.Fatalf("%q: frame %d", s, n)
			}
		}
	})
}
