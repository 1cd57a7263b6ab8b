package dcm

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func benchParse(b *testing.B, file string) {
	data, err := os.ReadFile(filepath.Join(corpus, file))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParse(b *testing.B) {
	b.Run("CT", func(b *testing.B) { benchParse(b, "study/s02_ct/ct_0001.dcm") })
	b.Run("MultiFrameNative", func(b *testing.B) { benchParse(b, "images/ct_enhanced_perfusion_2f_native.dcm") })
	b.Run("MultiFrameJPEG", func(b *testing.B) { benchParse(b, "ts/us_cine_rgb_12f_jpeg_baseline.dcm") })
	b.Run("Huge300MiB", func(b *testing.B) {
		_, size := hugeInstance(600, 512, 512)
		b.SetBytes(size)
		b.ReportAllocs()
		for b.Loop() {
			r, _ := hugeInstance(600, 512, 512)
			if _, err := Parse(r); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkAppendJSON(b *testing.B) {
	h := parseFile(b, filepath.Join(corpus, "study/s02_ct/ct_0001.dcm"))
	buf := AppendJSON(nil, h)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendJSON(buf[:0], h)
	}
}

func BenchmarkToExplicitLE(b *testing.B) {
	data, err := os.ReadFile(filepath.Join(corpus, "ts/mr_explicit_be.dcm"))
	if err != nil {
		b.Fatal(err)
	}
	var out bytes.Buffer
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		out.Reset()
		if err := ToExplicitLE(&out, bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
}
