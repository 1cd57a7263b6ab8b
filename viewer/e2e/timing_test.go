package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/suyashkumar/dicom/pkg/tag"
)

// TestViewerTiming measures, on one server holding a generated 100-slice
// CT series, the time from navigation start to the first image and to the
// whole series loaded (every frame fetched and decoded in the browser):
// our viewer (JPEG and PNG renderings) and OHIF (WADO-RS frames decoded
// by Cornerstone3D). Figures in docs/viewer.md.
func TestViewerTiming(t *testing.T) {
	if testing.Short() {
		t.Skip("browser timing")
	}
	srv := startPACS(t)
	study := "2.25.1" + strings.Repeat("7", 30)
	series := study + ".1"
	stow(t, srv.Root, makeSeries(t, study, 100))

	t.Run("viewer", func(t *testing.T) {
		b := newBrowser(t, 1280, 900)
		for _, format := range []string{"jpeg", "png", "jpeg"} {
			b.must(20*time.Second, "open", chromedp.Navigate(srv.URL+"/viewer?StudyInstanceUIDs="+study+"&render="+format))
			b.waitJS("all 100 loaded", `!!(window.pacsViewer && pacsViewer.viewports[0] && pacsViewer.viewports[0].stats.allLoaded)`, 60*time.Second)
			var st struct{ First, AllLoaded, N float64 }
			b.eval("stats", `({ first: pacsViewer.viewports[0].stats.first, allLoaded: pacsViewer.viewports[0].stats.allLoaded, n: pacsViewer.viewports[0].length })`, &st)
			if st.N != 100 {
				t.Fatalf("stack has %v images", st.N)
			}
			t.Logf("viewer %s: first image %.0f ms, 100 slices %.0f ms after navigation start", format, st.First, st.AllLoaded)
		}
		if s := b.waitShown(0); s.Variance < 100 {
			t.Errorf("canvas looks blank: variance %.1f", s.Variance)
		}
		b.checkClean()
	})

	t.Run("OHIF", func(t *testing.T) {
		dist := ohifDist(t)
		ohif := serveOHIF(t, dist, srv.Root)
		b := newBrowser(t, 1280, 900)
		b.addInitScript(ohifProbe)
		for _, run := range []string{"cold", "warm"} {
			b.must(90*time.Second, "OHIF viewer",
				chromedp.Navigate(ohif.URL+"/viewer?StudyInstanceUIDs="+study),
				poll(fmt.Sprintf(`!!(window.__pacsProbe && __pacsProbe.first && __pacsProbe.loadedTimes(%q).length >= 100)`, series), 80*time.Second),
			)
			var st struct {
				First  float64
				Loaded []float64
			}
			b.eval("OHIF stats", fmt.Sprintf(`({ first: __pacsProbe.first, loaded: __pacsProbe.loadedTimes(%q) })`, series), &st)
			if len(st.Loaded) != 100 {
				t.Fatalf("OHIF loaded %d images of the series", len(st.Loaded))
			}
			t.Logf("OHIF %s: first image %.0f ms, 100 slices %.0f ms after navigation start (first frame decoded at %.0f ms)", run, st.First, st.Loaded[99], st.Loaded[0])
		}
		v := b.ohifViewport()
		b.settle()
		if g := b.region(inner(v.Rect)); v.N != 100 || g.variance() < 50 {
			t.Errorf("OHIF viewport: %d images, region variance %.1f", v.N, g.variance())
		}
		b.screenshot("ohif-100")
		b.ohifCheckClean()
	})
}

// makeSeries writes n CT slices of one series from the corpus CT template
// with new UIDs, instance numbers and positions.
func makeSeries(t testing.TB, study string, n int) [][]byte {
	t.Helper()
	tpl := loadTemplate(t, "study/s02_ct/ct_0001.dcm")
	series := study + ".1"
	var out [][]byte
	for i := 1; i <= n; i++ {
		tpl.setUIDs(study, series, fmt.Sprintf("%s.%d", series, i))
		tpl.set(tag.InstanceNumber, fmt.Sprint(i))
		tpl.set(tag.SliceLocation, fmt.Sprintf("%.1f", float64(i)*5))
		tpl.set(tag.ImagePositionPatient, "-158.1358", "-179.0358", fmt.Sprintf("%.1f", float64(i)*5))
		tpl.set(tag.PatientID, "PACSPERF01")
		out = append(out, tpl.bytes())
	}
	return out
}
