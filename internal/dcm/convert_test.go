package dcm

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestToExplicitLE converts each uncompressed syntax and checks the
// result against dcmtk: dcmdump reads it, and its PixelData bytes equal
// those of `dcmconv +te` on the same input.
func TestToExplicitLE(t *testing.T) {
	_, err1 := exec.LookPath("dcmconv")
	_, err2 := exec.LookPath("dcmdump")
	needTool(t, err1 == nil && err2 == nil, "dcmconv/dcmdump (dcmtk)")
	for _, f := range []string{"ts/mr_implicit_le.dcm", "ts/mr_explicit_be.dcm", "ts/mr_deflated.dcm",
		"ts/us_rgb_planar_explicit_be_real.dcm", "ts/sc_gray8_deflated_real.dcm",
		"images/cr_chest_mono1_10bit_small.dcm", "images/pt_acrin_flt_breast_icon.dcm", "reports/sr_comprehensive_dcmtk_real.dcm"} {
		t.Run(f, func(t *testing.T) {
			in := filepath.Join(corpus, f)
			src, err := os.Open(in)
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			var out bytes.Buffer
			if err := ToExplicitLE(&out, src); err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			ours := filepath.Join(dir, "ours.dcm")
			if err := os.WriteFile(ours, out.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			if b, err := exec.Command("dcmdump", "-E", ours).CombinedOutput(); err != nil {
				t.Fatalf("dcmdump: %v\n%s", err, b)
			}
			ref := filepath.Join(dir, "ref.dcm")
			if b, err := exec.Command("dcmconv", "+te", in, ref).CombinedOutput(); err != nil {
				t.Fatalf("dcmconv: %v\n%s", err, b)
			}
			h, err := Parse(bytes.NewReader(out.Bytes()))
			if err != nil {
				t.Fatalf("re-parse: %v", err)
			}
			orig := parseFile(t, in)
			if h.TransferSyntaxUID != tsExplicitLE || h.SOPInstanceUID != orig.SOPInstanceUID {
				t.Errorf("TS %s, SOP %s", h.TransferSyntaxUID, h.SOPInstanceUID)
			}
			refData, err := os.ReadFile(ref)
			if err != nil {
				t.Fatal(err)
			}
			rh, err := Parse(bytes.NewReader(refData))
			if err != nil {
				t.Fatal(err)
			}
			if len(h.Frames) != len(rh.Frames) {
				t.Fatalf("%d frames, dcmconv %d", len(h.Frames), len(rh.Frames))
			}
			for i := range h.Frames {
				if !bytes.Equal(frameBytes(t, out.Bytes(), h, i), frameBytes(t, refData, rh, i)) {
					t.Errorf("frame %d differs from dcmconv +te", i)
				}
			}
			// Same attributes as dcmconv's output, by JSON.
			if a, b := jsonOf(t, h), jsonOf(t, rh); !bytes.Equal(a, b) {
				t.Errorf("JSON differs from dcmconv +te output:\n%s\n%s", a, b)
			}
		})
	}
}

func TestToExplicitLE_encapsulated(t *testing.T) {
	src, err := os.Open(filepath.Join(corpus, "ts/mr_rle.dcm"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var out bytes.Buffer
	if err := ToExplicitLE(&out, src); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("err = %v, want ErrUnsupported", err)
	}
}

func TestToExplicitLE_bad(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(corpus, "bad/*"))
	for _, f := range files {
		data, _ := os.ReadFile(f)
		var out bytes.Buffer
		err := ToExplicitLE(&out, bytes.NewReader(data))
		if filepath.Base(f) == "no_sop_instance_uid.dcm" {
			continue // converts fine: not a structural problem
		}
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", f, err)
		}
	}
}
