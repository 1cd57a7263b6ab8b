package render_test

import (
	"github.com/cloudpacs/pacs/internal/testenv"

	"bytes"
	"errors"
	"fmt"
	"image"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cloudpacs/pacs/internal/codec"
	"github.com/cloudpacs/pacs/internal/codec/codectest"
	"github.com/cloudpacs/pacs/internal/dcm"
	"github.com/cloudpacs/pacs/internal/render"
)

func corpusImages(t testing.TB) []string {
	t.Helper()
	var out []string
	for _, dir := range []string{"images", "ts", "study/s02_ct", "charset"} {
		ents, err := os.ReadDir(filepath.Join(codectest.Corpus, dir))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			if strings.HasSuffix(e.Name(), ".dcm") {
				out = append(out, filepath.Join(dir, e.Name()))
			}
		}
	}
	return out
}

// attrsOf goes through the DICOM JSON, the path the HTTP layer takes.
func attrsOf(t testing.TB, f *codectest.File) *render.Attrs {
	t.Helper()
	a, err := render.AttrsFromJSON(dcm.AppendJSON(nil, f.Header), nil)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// dcmj2pnm renders frame 1 of path with dcmtk and returns it as 8-bit
// samples (1 or 3 per pixel).
func dcmj2pnm(t *testing.T, path string, args ...string) image.Image {
	t.Helper()
	tool := codectest.RequireTool(t, "dcmj2pnm", "dcmtk")
	out := filepath.Join(t.TempDir(), "ref.png")
	codectest.Run(t, tool, append(append([]string{"+on"}, args...), path, out)...)
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// compare returns the mean and max absolute difference per sample.
func compare(t *testing.T, got, want image.Image) (float64, int) {
	t.Helper()
	if got.Bounds() != want.Bounds() {
		t.Fatalf("size %v, reference %v", got.Bounds(), want.Bounds())
	}
	var sum float64
	var n, mx int
	b := got.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r1, g1, b1, _ := got.At(x, y).RGBA()
			r2, g2, b2, _ := want.At(x, y).RGBA()
			for _, d := range []int{int(r1>>8) - int(r2>>8), int(g1>>8) - int(g2>>8), int(b1>>8) - int(b2>>8)} {
				if d < 0 {
					d = -d
				}
				sum += float64(d)
				mx = max(mx, d)
				n++
			}
		}
	}
	return sum / float64(n), mx
}

// TestRender_matchesDcmj2pnm renders frame 1 of every decodable corpus
// image the way dcmtk does with the same VOI settings: mean absolute
// difference at most 1 grey level.
func TestRender_matchesDcmj2pnm(t *testing.T) {
	for _, path := range corpusImages(t) {
		t.Run(path, func(t *testing.T) {
			f := codectest.Load(t, path)
			if len(f.Frames) == 0 {
				t.Skip("no pixel data")
			}
			px, err := f.Decode(0)
			if errors.Is(err, codec.ErrUnsupported) {
				testenv.Missing(t, err.Error())
			}
			if err != nil {
				t.Fatal(err)
			}
			base := attrsOf(t, f)
			a := base.ForFrame(1)
			full := codectest.ForDcmtk(t, path, f.Header.TransferSyntaxUID)
			type tc struct {
				name string
				args []string
				win  *render.Window
				keep bool // keep the data set's windows
			}
			var cases []tc
			if px.SamplesPerPixel == 3 {
				cases = append(cases, tc{name: "colour"})
			} else {
				noWin := *a
				noWin.Windows, noWin.VOILUT = nil, nil
				if _, err := render.BuildGreyLUT(px, &noWin, nil); err != nil {
					t.Fatal(err)
				}
				mm := minMax(px, a)
				c, w := mm[0]+0.3*(mm[1]-mm[0]), 0.5*(mm[1]-mm[0])+1
				cases = append(cases,
					tc{name: "minmax", args: []string{"+Wm"}},
					tc{name: "window", args: []string{"+Ww", fmt.Sprint(c), fmt.Sprint(w)}, win: &render.Window{Center: c, Width: w}},
					tc{name: "sigmoid", args: []string{"+Ww", fmt.Sprint(c), fmt.Sprint(w), "+Wfs"}, win: &render.Window{Center: c, Width: w, Function: "SIGMOID"}},
				)
				if len(base.Windows) > 0 {
					cases = append(cases, tc{name: "file-window", args: []string{"+Wi", "1"}, keep: true})
				}
			}
			for _, c := range cases {
				aa := *a
				if !c.keep {
					aa.Windows, aa.VOILUT = nil, nil
				}
				got, err := render.Render(px, &aa, render.Options{Window: c.win})
				if err != nil {
					t.Fatalf("%s: %v", c.name, err)
				}
				want := dcmj2pnm(t, full, c.args...)
				mad, mx := compare(t, got, want)
				t.Logf("%s: mean abs diff %.3f, max %d", c.name, mad, mx)
				if mad > 1 {
					t.Errorf("%s: mean absolute difference %.3f > 1 grey level (max %d)", c.name, mad, mx)
				}
			}
		})
	}
}

// minMax returns the smallest and largest modality value of the frame.
func minMax(px *codec.Pixels, a *render.Attrs) [2]float64 {
	mn, mx := math.Inf(1), math.Inf(-1)
	slope := a.RescaleSlope
	for _, v := range px.Data {
		m := float64(v)*slope + a.RescaleIntercept
		mn, mx = math.Min(mn, m), math.Max(mx, m)
	}
	return [2]float64{mn, mx}
}
