package codec_test

import (
	"math/rand"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cloudpacs/pacs/internal/codec"
	"github.com/cloudpacs/pacs/internal/codec/codectest"
)

// TestDecode_mutationsFailFast feeds deterministic mutations (byte
// changes, bit flips, truncation) of corpus codestreams to each compressed
// decoder: every decode must return (error or not) within a bound, never
// panic or hang. This found CharLS 2.4 spending seconds on truncated
// streams (now refused before CharLS sees them: no EOI marker). The
// fuzz targets of fuzz_test.go explore further.
func TestDecode_mutationsFailFast(t *testing.T) {
	type seed struct {
		ts    string
		frame []byte
		info  codec.PixelInfo
	}
	var seeds []seed
	for _, p := range []string{
		"ts/mr_jpeg_extended_12bit_lossy.dcm", "ts/mr_jpeg_lossless_sv1.dcm", "ts/mr_rle.dcm",
		"ts/mr_jpegls_lossless.dcm", "ts/mr_j2k_lossless.dcm", "ts/mr_j2k_lossy.dcm", "ts/ct_signed_j2k_lossless.dcm",
	} {
		f := codectest.Load(t, p)
		seeds = append(seeds, seed{f.Header.TransferSyntaxUID, f.Frames[0], f.Info})
	}
	mr := codectest.Load(t, "ts/mr_jpegls_lossless.dcm").Info
	if b, err := os.ReadFile(filepath.Join("testdata", "mr_htj2k_lossless.j2c")); err == nil {
		seeds = append(seeds, seed{codec.HTJ2KLossless, b, mr})
	}
	const perSeed = 400
	limit := 5 * time.Second // generous: the machine is shared
	for _, s := range seeds {
		if _, ok := codec.Lookup(s.ts); !ok {
			continue
		}
		r := rand.New(rand.NewSource(1))
		var worst time.Duration
		for i := 0; i < perSeed; i++ {
			b := append([]byte(nil), s.frame...)
			for k := r.Intn(8) + 1; k > 0; k-- {
				switch r.Intn(3) {
				case 0:
					b[r.Intn(len(b))] = byte(r.Intn(256))
				case 1:
					b = b[:r.Intn(len(b))+1]
				case 2:
					b[r.Intn(len(b))] ^= 1 << uint(r.Intn(8))
				}
			}
			done := make(chan struct{})
			start := time.Now()
			go func() {
				defer close(done)
				_, _ = codec.Decode(s.ts, b, s.info) // errors are expected
			}()
			select {
			case <-done:
			case <-time.After(limit):
				t.Fatalf("%s: mutation %d still decoding after %v", codec.Name(s.ts), i, limit)
			}
			worst = max(worst, time.Since(start))
		}
		t.Logf("%s (%s): slowest of %d mutations %v", codec.Name(s.ts), s.ts, perSeed, worst)
	}
}
