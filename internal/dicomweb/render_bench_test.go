package dicomweb

import (
	"bytes"
	"encoding/binary"
	"image"
	"image/png"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/cloudpacs/pacs/internal/thumbs"
)

// Benchmarks of the rendered resources over HTTP (in-process server,
// memblob + SQLite, keep-alive client) for a 512×512 16-bit CT frame:
//
//	go test -tags cgocodecs -run '^$' -bench 'BenchmarkHTTP(Rendered|Thumbnail)' -benchtime 200x ./internal/dicomweb
//
// p50-ms / p99-ms are per-request latencies (client to full body); B/op
// and allocs/op count the client and the server (same process).
// docs/rendering.md has the figures.

// syntheticCTPart10 is a 512×512 CT instance, Explicit VR Little Endian:
// BitsAllocated 16, BitsStored 12, unsigned, rescale -1024, window
// 40/400; air around a body ellipse of soft tissue (40 ± 20 HU noise)
// with fat, a spine of bone (300–1000 HU) and two lungs (−850 HU).
func syntheticCTPart10(study, series, sop string) []byte {
	const n = 512
	r := rand.New(rand.NewPCG(5, 12))
	px := make([]byte, 2*n*n)
	for y := range n {
		for x := range n {
			ex, ey := float64(x-n/2)/220, float64(y-n/2)/170
			hu := -1000 + 10*r.NormFloat64()
			switch body := ex*ex + ey*ey; {
			case body < 1:
				hu = 40 + 20*r.NormFloat64()
				if body > 0.85 {
					hu = -100 + 15*r.NormFloat64() // subcutaneous fat
				}
				for _, cx := range []float64{-0.45, 0.45} {
					lx, ly := (float64(x-n/2)/220-cx)/0.3, float64(y-n/2)/170/0.6
					if lx*lx+ly*ly < 1 {
						hu = -850 + 40*r.NormFloat64()
					}
				}
				if sx, sy := float64(x-n/2)/30, float64(y-n/2-100)/30; sx*sx+sy*sy < 1 {
					hu = 300 + 700*r.Float64()
				}
			}
			v := int(math.Round(hu)) + 1024
			binary.LittleEndian.PutUint16(px[2*(y*n+x):], uint16(min(max(v, 0), 4095)))
		}
	}
	var ds []byte
	el := func(group, elem uint16, vr string, val []byte) {
		if len(val)%2 == 1 {
			pad := byte(' ')
			if vr == "UI" || vr == "OB" {
				pad = 0
			}
			val = append(val, pad)
		}
		ds = binary.LittleEndian.AppendUint16(ds, group)
		ds = binary.LittleEndian.AppendUint16(ds, elem)
		ds = append(ds, vr...)
		switch vr {
		case "OB", "OW", "SQ", "UN", "UT":
			ds = append(ds, 0, 0)
			ds = binary.LittleEndian.AppendUint32(ds, uint32(len(val)))
		default:
			ds = binary.LittleEndian.AppendUint16(ds, uint16(len(val)))
		}
		ds = append(ds, val...)
	}
	us := func(v uint16) []byte { return binary.LittleEndian.AppendUint16(nil, v) }
	const ctImage, explicitLE = "1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.1.2.1"
	// File meta information.
	el(0x0002, 0x0001, "OB", []byte{0, 1})
	el(0x0002, 0x0002, "UI", []byte(ctImage))
	el(0x0002, 0x0003, "UI", []byte(sop))
	el(0x0002, 0x0010, "UI", []byte(explicitLE))
	meta := ds
	ds = nil
	el(0x0002, 0x0000, "UL", binary.LittleEndian.AppendUint32(nil, uint32(len(meta))))
	ds = append(ds, meta...)
	// Data set, ascending tags.
	el(0x0008, 0x0016, "UI", []byte(ctImage))
	el(0x0008, 0x0018, "UI", []byte(sop))
	el(0x0008, 0x0020, "DA", []byte("20260115"))
	el(0x0008, 0x0060, "CS", []byte("CT"))
	el(0x0010, 0x0010, "PN", []byte("BENCH^CT"))
	el(0x0010, 0x0020, "LO", []byte("BENCH0001"))
	el(0x0018, 0x0050, "DS", []byte("1.25"))
	el(0x0018, 0x0060, "DS", []byte("120"))
	el(0x0020, 0x000D, "UI", []byte(study))
	el(0x0020, 0x000E, "UI", []byte(series))
	el(0x0020, 0x0013, "IS", []byte("1"))
	el(0x0028, 0x0002, "US", us(1))
	el(0x0028, 0x0004, "CS", []byte("MONOCHROME2"))
	el(0x0028, 0x0010, "US", us(n))
	el(0x0028, 0x0011, "US", us(n))
	el(0x0028, 0x0100, "US", us(16))
	el(0x0028, 0x0101, "US", us(12))
	el(0x0028, 0x0102, "US", us(11))
	el(0x0028, 0x0103, "US", us(0))
	el(0x0028, 0x1050, "DS", []byte("40"))
	el(0x0028, 0x1051, "DS", []byte("400"))
	el(0x0028, 0x1052, "DS", []byte("-1024"))
	el(0x0028, 0x1053, "DS", []byte("1"))
	el(0x7FE0, 0x0010, "OW", px)
	return append(append(make([]byte, 128), "DICM"...), ds...)
}

// ctBenchServer stores the synthetic CT through the archive and returns
// the server and the instance URL.
func ctBenchServer(b testing.TB) (*testServer, string) {
	ts := newTestServer(b, nil)
	const study, series, sop = "1.2.826.0.1.3680043.99.1", "1.2.826.0.1.3680043.99.1.1", "1.2.826.0.1.3680043.99.1.1.1"
	res, err := ts.archive.Store(b.Context(), bytes.NewReader(syntheticCTPart10(study, series, sop)), "")
	if err != nil {
		b.Fatal(err)
	}
	if in := res.Instance; in.Instance.Rows != 512 || len(in.Frames) != 1 {
		b.Fatalf("stored synthetic CT: %d rows, %d frames", in.Instance.Rows, len(in.Frames))
	}
	return ts, ts.URL + Root + "/studies/" + study + "/series/" + series + "/instances/" + sop
}

// latencies collects per-request durations and reports p50/p99.
type latencies []time.Duration

func (l latencies) report(b *testing.B) {
	if len(l) == 0 {
		return
	}
	slices.Sort(l)
	ms := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }
	b.ReportMetric(ms(l[len(l)/2]), "p50-ms")
	b.ReportMetric(ms(l[min(len(l)-1, len(l)*99/100)]), "p99-ms")
}

// get fetches url and returns the status and body length.
func benchGet(b *testing.B, c *http.Client, url, accept, etag string) (int, int64) {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	res, err := c.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	n, err := io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if err != nil {
		b.Fatal(err)
	}
	return res.StatusCode, n
}

// BenchmarkHTTPRendered: GET .../instances/{uid}/rendered of the 512×512
// CT (default window 40/400 from the data set). /rendered has no server
// cache, so every request decodes, windows and encodes; "first" is a
// fresh server's first request (cold: index, allocator), "repeated" the
// steady state; "etag-304" is a revalidation with If-None-Match.
func BenchmarkHTTPRendered(b *testing.B) {
	c := &http.Client{}
	for _, bc := range []struct{ name, query, accept string }{
		{"jpeg", "", "image/jpeg"},
		{"png", "", "image/png"},
		{"jpeg-viewport256", "?viewport=256,256", "image/jpeg"},
		{"jpeg-annotated", "?annotation=patient,technique", "image/jpeg"},
	} {
		b.Run(bc.name+"/repeated", func(b *testing.B) {
			_, inst := ctBenchServer(b)
			url := inst + "/rendered" + bc.query
			if st, _ := benchGet(b, c, url, bc.accept, ""); st != 200 {
				b.Fatalf("status %d", st)
			}
			b.ReportAllocs()
			var lat latencies
			var size int64
			for b.Loop() {
				t0 := time.Now()
				st, n := benchGet(b, c, url, bc.accept, "")
				lat = append(lat, time.Since(t0))
				if st != 200 {
					b.Fatalf("status %d", st)
				}
				size = n
			}
			lat.report(b)
			b.ReportMetric(float64(size), "resp-bytes")
		})
	}
	b.Run("jpeg/first", func(b *testing.B) {
		var lat latencies
		b.ReportAllocs()
		for b.Loop() {
			b.StopTimer()
			ts, inst := ctBenchServer(b)
			b.StartTimer()
			t0 := time.Now()
			st, _ := benchGet(b, c, inst+"/rendered", "image/jpeg", "")
			lat = append(lat, time.Since(t0))
			b.StopTimer()
			if st != 200 {
				b.Fatalf("status %d", st)
			}
			ts.Close()
			b.StartTimer()
		}
		lat.report(b)
	})
	b.Run("etag-304", func(b *testing.B) {
		_, inst := ctBenchServer(b)
		res, err := c.Get(inst + "/rendered")
		if err != nil {
			b.Fatal(err)
		}
		res.Body.Close()
		etag := res.Header.Get("ETag")
		var lat latencies
		b.ReportAllocs()
		for b.Loop() {
			t0 := time.Now()
			st, _ := benchGet(b, c, inst+"/rendered", "", etag)
			lat = append(lat, time.Since(t0))
			if st != http.StatusNotModified {
				b.Fatalf("status %d", st)
			}
		}
		lat.report(b)
	})
}

// BenchmarkHTTPThumbnail: GET .../instances/{uid}/thumbnail (128×128
// JPEG). "first" renders and writes the blob-store cache (the cached
// thumbnail is deleted before each iteration, outside the timer);
// "cached" reads it back; "study" is the study-level thumbnail
// (representative instance chosen from the index, then the cache).
func BenchmarkHTTPThumbnail(b *testing.B) {
	c := &http.Client{}
	b.Run("first", func(b *testing.B) {
		ts, inst := ctBenchServer(b)
		r := thumbs.New(ts.archive)
		in, err := ts.handler.index.Instance(b.Context(), "", "", "1.2.826.0.1.3680043.99.1.1.1")
		if err != nil {
			b.Fatal(err)
		}
		var lat latencies
		b.ReportAllocs()
		for b.Loop() {
			b.StopTimer()
			if err := r.DeleteFor(b.Context(), in.SHA256); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			t0 := time.Now()
			st, _ := benchGet(b, c, inst+"/thumbnail", "", "")
			lat = append(lat, time.Since(t0))
			if st != 200 {
				b.Fatalf("status %d", st)
			}
		}
		lat.report(b)
	})
	for _, level := range []string{"cached", "study-cached"} {
		b.Run(level, func(b *testing.B) {
			_, inst := ctBenchServer(b)
			url := inst + "/thumbnail"
			if level == "study-cached" {
				url = inst[:len(inst)-len("/series/1.2.826.0.1.3680043.99.1.1/instances/1.2.826.0.1.3680043.99.1.1.1")] + "/thumbnail"
			}
			if st, _ := benchGet(b, c, url, "", ""); st != 200 {
				b.Fatalf("status %d", st)
			}
			var lat latencies
			var size int64
			b.ReportAllocs()
			for b.Loop() {
				t0 := time.Now()
				st, n := benchGet(b, c, url, "", "")
				lat = append(lat, time.Since(t0))
				if st != 200 {
					b.Fatalf("status %d", st)
				}
				size = n
			}
			lat.report(b)
			b.ReportMetric(float64(size), "resp-bytes")
		})
	}
}

// TestRenderBench_syntheticCT keeps the benchmarks' instance honest: it
// stores, and renders with the data set's window (air black, bone white,
// soft tissue mid-grey).
func TestRenderBench_syntheticCT(t *testing.T) {
	_, inst := ctBenchServer(t)
	res, body := renderedGet(t, inst+"/rendered", "image/png")
	if res.StatusCode != 200 {
		t.Fatalf("%d %s", res.StatusCode, body)
	}
	img, err := png.Decode(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	g, ok := img.(*image.Gray)
	if !ok || g.Rect.Dx() != 512 || g.Rect.Dy() != 512 {
		t.Fatalf("rendered %T %v, want 512x512 grey", img, img.Bounds())
	}
	air, bone, tissue := g.GrayAt(5, 5).Y, g.GrayAt(256, 356).Y, g.GrayAt(256, 200).Y
	if air != 0 || bone < 200 || tissue < 100 || tissue > 180 {
		t.Errorf("air %d, bone %d, soft tissue %d: want 0, >= 200, about 140", air, bone, tissue)
	}
}
