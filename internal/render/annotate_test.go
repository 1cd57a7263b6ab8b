package render_test

import (
	"errors"
	"image"
	"image/png"
	"os"
	"slices"
	"testing"

	"github.com/cloudpacs/pacs/internal/codec/codectest"
	"github.com/cloudpacs/pacs/internal/render"
)

func TestAnnotationLines(t *testing.T) {
	f := codectest.Load(t, "study/s02_ct/ct_0001.dcm")
	a := attrsOf(t, f)
	top, bottom := render.AnnotationLines(a, []string{render.AnnotatePatient, render.AnnotateTechnique}, 3, 10, &render.Window{Center: 40, Width: 400}, false)
	wantTop := []string{"DOE, JANE", "ID PACSTEST0001", "1968-04-12 F"}
	if !slices.Equal(top, wantTop) {
		t.Errorf("patient lines %q, want %q", top, wantTop)
	}
	if len(bottom) != 3 || bottom[1] != "WC 40 WW 400" || bottom[2] != "Frame 3/10" ||
		(bottom[0] != "CT  120 kVp  ST 5 mm" && bottom[0] != "CT  120 kVp  ST 5.0 mm") {
		t.Errorf("technique lines %q", bottom)
	}
	// Without kVp or slice thickness, with a VOI LUT, one frame.
	a.Text.KVP, a.Text.SliceThickness = "", ""
	_, bottom = render.AnnotationLines(a, []string{render.AnnotateTechnique}, 1, 1, nil, true)
	if want := []string{"CT", "VOI LUT", "Frame 1"}; !slices.Equal(bottom, want) {
		t.Errorf("technique lines %q, want %q", bottom, want)
	}

	for _, bad := range []string{"", "patient,", "physician", "patient technique"} {
		if _, err := render.ParseAnnotation(bad); !errors.Is(err, render.ErrBadParam) {
			t.Errorf("ParseAnnotation(%q): %v, want ErrBadParam", bad, err)
		}
	}
	if g, err := render.ParseAnnotation("Technique", "patient,technique"); err != nil || !slices.Equal(g, []string{"patient", "technique"}) {
		t.Errorf("ParseAnnotation: %q %v", g, err)
	}
}

// TestAnnotate_render: the burned-in text changes only its boxes; long
// lines are clipped to the image.
func TestAnnotate_render(t *testing.T) {
	f := codectest.Load(t, "study/s02_ct/ct_0001.dcm")
	px, err := f.Decode(0)
	if err != nil {
		t.Fatal(err)
	}
	a := attrsOf(t, f)
	o := render.Options{Window: &render.Window{Center: 40, Width: 400}, Viewport: &render.Viewport{VW: 512, VH: 512}}
	plain, err := render.Render(px, a, o)
	if err != nil {
		t.Fatal(err)
	}
	o.Annotation, o.Frame, o.Frames = []string{"patient", "technique"}, 1, 1
	ann, err := render.Render(px, a, o)
	if err != nil {
		t.Fatal(err)
	}
	top, bottom := render.AnnotationLines(a, o.Annotation, 1, 1, o.Window, false)
	b := plain.Bounds()
	boxes := []image.Rectangle{render.AnnotationBox(b, top, true), render.AnnotationBox(b, bottom, false)}
	p, q := plain.(*image.Gray), ann.(*image.Gray)
	for y := 0; y < b.Dy(); y++ {
		for x := 0; x < b.Dx(); x++ {
			in := image.Pt(x, y).In(boxes[0]) || image.Pt(x, y).In(boxes[1])
			if !in && p.GrayAt(x, y) != q.GrayAt(x, y) {
				t.Fatalf("pixel %d,%d outside the annotation boxes %v changed", x, y, boxes)
			}
		}
	}
	if dir := os.Getenv("ANNOTATE_OUT"); dir != "" {
		w, _ := os.Create(dir + "/ct.png")
		png.Encode(w, ann)
		w.Close()
	}
	// A tiny image: the text is clipped, nothing panics.
	small, err := render.Render(px, a, render.Options{Viewport: &render.Viewport{VW: 16, VH: 16}, Annotation: o.Annotation})
	if err != nil || small.Bounds().Dx() != 16 {
		t.Fatalf("16x16 annotated: %v %v", small, err)
	}
}
