package render_test

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"sort"
	"testing"
	"time"

	"github.com/cloudpacs/pacs/internal/codec"
	"github.com/cloudpacs/pacs/internal/render"
)

// syntheticCT is a 512x512 signed 16-bit CT-like frame: air, a body
// disc of soft tissue with noise, and bone, in HU+1024 stored values.
func syntheticCT() []byte {
	const n = 512
	r := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 2*n*n)
	for y := 0; y < n; y++ {
		for x := 0; x < n; x++ {
			dx, dy := float64(x-n/2), float64(y-n/2)
			d := dx*dx + dy*dy
			hu := -1000.0
			switch {
			case d < 60*60:
				hu = 700 + 300*r.Float64()
			case d < 220*220:
				hu = 40 + 30*r.NormFloat64()
			}
			binary.LittleEndian.PutUint16(buf[2*(y*n+x):], uint16(int16(hu+1024)))
		}
	}
	return buf
}

var ctInfo = codec.PixelInfo{Rows: 512, Columns: 512, BitsAllocated: 16, BitsStored: 16, HighBit: 15, PixelRepresentation: 1, PhotometricInterpretation: "MONOCHROME2"}

func renderCT(b testing.TB, frame []byte, a *render.Attrs, o render.Options) int {
	px, err := codec.Decode(codec.ExplicitVRLittleEndian, frame, ctInfo)
	if err != nil {
		b.Fatal(err)
	}
	img, err := render.Render(px, a, o)
	if err != nil {
		b.Fatal(err)
	}
	var buf bytes.Buffer
	if err := render.Encode(&buf, img, render.MediaJPEG, 90); err != nil {
		b.Fatal(err)
	}
	return buf.Len()
}

// BenchmarkRenderCT512JPEG: decode + window + JPEG encode of a 512x512
// 16-bit CT frame; reports p50/p99 over the iterations.
func BenchmarkRenderCT512JPEG(b *testing.B) {
	frame := syntheticCT()
	a := &render.Attrs{Pixel: ctInfo, RescaleSlope: 1, RescaleIntercept: -1024, Windows: []render.Window{{Center: 40, Width: 400}}}
	for _, c := range []struct {
		name string
		o    render.Options
	}{
		{"full", render.Options{}},
		{"viewport256", render.Options{Viewport: &render.Viewport{VW: 256, VH: 256}}},
	} {
		b.Run(c.name, func(b *testing.B) {
			var lat []time.Duration
			for b.Loop() {
				t0 := time.Now()
				renderCT(b, frame, a, c.o)
				lat = append(lat, time.Since(t0))
			}
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
		})
	}
}
