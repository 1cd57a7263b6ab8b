package dcmtest

import (
	"bytes"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cloudpacs/pacs/internal/dcm"
	"github.com/cloudpacs/pacs/internal/testenv"
)

// What the builder writes parses with package dcm and, independently,
// with pydicom: attributes, frame count and pixel bytes agree.
func TestObject_parses(t *testing.T) {
	px := bytes.Repeat([]byte{1, 2, 3, 4}, 2*3*4/4)
	for _, c := range []struct {
		name string
		obj  *Object
	}{
		{"explicit", Image(ExplicitVRLittleEndian, "1.2.3", "1.2.3.4", "1.2.3.4.5", 3, 4, 1, 8, 2).Native(px)},
		{"implicit", func() *Object {
			o := Image(ImplicitVRLittleEndian, "1.2.3", "1.2.3.4", "1.2.3.4.5", 3, 4, 1, 8, 2).Native(px)
			o.Implicit = true
			return o
		}()},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := c.obj.Bytes()
			h, err := dcm.Parse(bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			if h.SOPInstanceUID != "1.2.3.4.5" || h.Int(TagRows) != 3 || h.Text(TagNumberOfFrames) != "2" || len(h.Frames) != 2 || h.Encapsulated {
				t.Fatalf("parsed %+v, %d frames", h, len(h.Frames))
			}
			if _, err := os.Stat("/usr/bin/python3"); err != nil {
				testenv.Missing(t, "/usr/bin/python3 with pydicom")
			}
			path := filepath.Join(t.TempDir(), "x.dcm")
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command("/usr/bin/python3", "-c", `
import sys, pydicom
ds = pydicom.dcmread(sys.argv[1])
print(ds.SOPInstanceUID, ds.Rows, ds.Columns, ds.NumberOfFrames, ds.PixelData.hex(), ds.file_meta.TransferSyntaxUID)
`, path).CombinedOutput()
			if err != nil {
				if strings.Contains(string(out), "No module named") {
					testenv.Missing(t, "/usr/bin/python3 with pydicom")
				}
				t.Fatalf("pydicom: %v: %s", err, out)
			}
			want := "1.2.3.4.5 3 4 2 " + hex.EncodeToString(px) + " " + c.obj.TransferSyntaxUID
			if got := strings.TrimSpace(string(out)); got != want {
				t.Errorf("pydicom read %q, want %q", got, want)
			}
		})
	}
}

func TestObject_encapsulated(t *testing.T) {
	b := Image(RLELossless, "1.2.3", "1.2.3.4", "1.2.3.4.6", 2, 2, 1, 8, 1).Encapsulated([]byte{9, 9, 9, 9}).Bytes()
	h, err := dcm.Parse(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if !h.Encapsulated || len(h.Frames) != 1 || len(h.Frames[0]) != 1 || h.Frames[0][0].Length != 4 {
		t.Fatalf("frames %+v, encapsulated %v", h.Frames, h.Encapsulated)
	}
	if got := b[h.Frames[0][0].Offset : h.Frames[0][0].Offset+4]; !bytes.Equal(got, []byte{9, 9, 9, 9}) {
		t.Errorf("fragment bytes %v", got)
	}
}
