package dicomweb

import (
	"testing"
)

// BenchmarkRetrieve measures the two hot retrieve paths over loopback
// HTTP: one frame of a stored CT instance (a ranged read at its recorded
// offset) and the whole instance, each as multipart/related. Run with
// -benchmem: allocations per request set how often the collector runs,
// which shows in the p99 of `make bench`.
func BenchmarkRetrieve(b *testing.B) {
	s := newTestServer(b, nil)
	const file = "study/s02_ct/ct_0001.dcm"
	s.store(b, file)
	rw := row(b, file)
	base := "/dicom-web/studies/" + rw.Study + "/series/" + rw.Series + "/instances/" + rw.SOP
	for _, c := range []struct{ name, path, accept string }{
		{"frame", base + "/frames/1", `multipart/related; type="application/octet-stream"; transfer-syntax=*`},
		{"instance", base, `multipart/related; type="application/dicom"; transfer-syntax=*`},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				r := s.do(b, "GET", c.path, map[string]string{"Accept": c.accept}, nil)
				if r.status != 200 {
					b.Fatal(r.status, string(r.body))
				}
				b.SetBytes(int64(len(r.body)))
			}
		})
	}
}
