package dcm

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// FuzzRewriteExplicitLE: malformed input gives an error, never a panic or
// a hang, and a successful rewrite parses again.
func FuzzRewriteExplicitLE(f *testing.F) {
	files, _ := filepath.Glob("../../testdata/dicom/*/*.dcm")
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil && len(b) < 1<<20 {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var out bytes.Buffer
		err := RewriteExplicitLE(&out, bytes.NewReader(data), Rewrite{
			Set:    map[Tag]Value{0x00080016: {VR: "UI", Bytes: []byte("1.2.3")}},
			Delete: []Tag{0x7FE00001},
			PixelData: func(w io.Writer) error {
				_, err := w.Write(make([]byte, 4))
				return err
			},
			PixelDataVR:     "OB",
			PixelDataLength: 4,
		})
		if err != nil {
			return
		}
		if _, err := Parse(bytes.NewReader(out.Bytes())); err != nil && !errors.Is(err, ErrInvalid) {
			t.Fatalf("rewritten output does not parse: %v", err)
		}
	})
}
