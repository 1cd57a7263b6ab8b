package e2e

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"

	"github.com/cloudpacs/pacs/internal/testenv"
)

// ohifDist finds the prebuilt OHIF (scripts/ohif.sh fetch).
func ohifDist(t testing.TB) string {
	t.Helper()
	d := os.Getenv("PACS_OHIF_DIST")
	if d == "" {
		out, err := exec.Command("bash", "../../scripts/ohif.sh", "dist").Output()
		if err != nil {
			testenv.Missing(t, "OHIF dist not fetched (scripts/ohif.sh fetch)")
		}
		d = strings.TrimSpace(string(out))
	}
	if st, err := os.Stat(filepath.Join(d, "index.html")); err != nil || st.IsDir() {
		testenv.Missing(t, fmt.Sprintf("OHIF dist %q has no index.html (scripts/ohif.sh fetch)", d))
	}
	return d
}

// OHIFConfig is the app-config.js that points OHIF's DICOMweb data source
// at a pacs server; docs/ohif.md shows the same configuration.
func OHIFConfig(root string) string {
	origin := strings.TrimSuffix(root, "/dicom-web")
	return fmt.Sprintf(`window.config = {
  routerBasename: '/',
  extensions: [],
  modes: [],
  showStudyList: true,
  maxNumberOfWebWorkers: 2,
  showWarningMessageForCrossOrigin: false,
  showCPUFallbackMessage: false,
  showLoadingIndicator: true,
  strictZSpacingForVolumeViewport: true,
  investigationalUseDialog: { option: 'never' },
  defaultDataSourceName: 'pacs',
  dataSources: [
    {
      namespace: '@ohif/extension-default.dataSourcesModule.dicomweb',
      sourceName: 'pacs',
      configuration: {
        friendlyName: 'cloudpacs',
        name: 'pacs',
        qidoRoot: '%[1]s',
        wadoRoot: '%[1]s',
        wadoUriRoot: '%[2]s/wado',
        qidoSupportsIncludeField: true,
        supportsReject: false,
        imageRendering: 'wadors',
        thumbnailRendering: 'thumbnail',
        enableStudyLazyLoad: true,
        supportsFuzzyMatching: true,
        supportsWildcard: true,
        staticWado: false,
        singlepart: 'bulkdata,video',
        bulkDataURI: { enabled: true, relativeResolution: 'studies' },
        omitQuotationForMultipartRequest: true,
      },
    },
  ],
};
`, root, origin)
}

// serveOHIF serves the dist on another origin (port) than the pacs server,
// with our app-config.js and the single-page-app fallback.
func serveOHIF(t testing.TB, dist, root string) *httptest.Server {
	cfg := []byte(OHIFConfig(root))
	fs := http.FileServer(http.Dir(dist))
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/app-config.js" {
			w.Header().Set("Content-Type", "text/javascript")
			w.Write(cfg)
			return
		}
		if st, err := os.Stat(filepath.Join(dist, filepath.FromSlash(r.URL.Path))); err != nil || st.IsDir() {
			if !strings.Contains(filepath.Base(r.URL.Path), ".") {
				http.ServeFile(w, r, filepath.Join(dist, "index.html"))
				return
			}
		}
		fs.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func TestOHIF(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	dist := ohifDist(t)
	b := newBrowser(t, 1366, 900)
	b.addInitScript(ohifProbe)
	srv := startPACS(t)
	storeCorpusStudy(t, srv.Root)
	ohif := serveOHIF(t, dist, srv.Root)

	// Study list (QIDO with OHIF's parameters).
	start := time.Now()
	b.must(60*time.Second, "OHIF study list",
		chromedp.Navigate(ohif.URL+"/"),
		poll(`document.body && document.body.innerText.includes('PET-CT WHOLE BODY FDG')`, 50*time.Second),
	)
	t.Logf("OHIF study list shows the patient after %v", time.Since(start).Round(time.Millisecond))
	b.screenshot("ohif-list")

	// Viewer route: the first image on screen, not blank.
	b.must(90*time.Second, "OHIF viewer",
		chromedp.Navigate(ohif.URL+"/viewer?StudyInstanceUIDs="+studyUID),
		poll(`!!(window.__pacsProbe && __pacsProbe.first && __pacsProbe.vp() && __pacsProbe.vp().loaded)`, 80*time.Second),
	)
	var first float64
	b.eval("first image", `__pacsProbe.first`, &first)
	v0 := b.ohifViewport()
	b.settle()
	g0 := b.region(inner(v0.Rect))
	t.Logf("OHIF first image %.0f ms after navigation start; image %d/%d, region variance %.1f", first, v0.Index+1, v0.N, g0.variance())
	b.screenshot("ohif-viewer")
	if g0.variance() <= 50 {
		t.Errorf("OHIF viewport looks blank: variance %.1f in %v", g0.variance(), v0.Rect)
	}
	if v0.N != 11 || !strings.Contains(v0.ImageID, ctSeriesUID) {
		t.Errorf("OHIF viewport shows %d images (%s), want the 11 CT slices", v0.N, v0.ImageID)
	}

	// Scroll: the wheel moves to another slice, and the pixels change.
	cx, cy := v0.Rect[0]+v0.Rect[2]/2, v0.Rect[1]+v0.Rect[3]/2
	b.must(5*time.Second, "wheel", wheel(cx, cy, 100))
	b.waitJS("another slice on screen", fmt.Sprintf(`(() => { const v = __pacsProbe.vp(); return v.index !== %d && v.loaded; })()`, v0.Index), 10*time.Second)
	v1 := b.ohifViewport()
	b.settle()
	g1 := b.region(inner(v1.Rect))
	d := g1.meanAbsDiff(g0)
	t.Logf("OHIF wheel: image %d -> %d, mean |diff| %.2f grey levels", v0.Index+1, v1.Index+1, d)
	if v1.ImageID == v0.ImageID || d < 1 {
		t.Errorf("OHIF wheel: image %s -> %s, pixels mean |diff| %.2f", v0.ImageID, v1.ImageID, d)
	}
	b.screenshot("ohif-scrolled")

	// Window/level: OHIF's primary-button tool; the VOI and the pixels change.
	b.must(10*time.Second, "W/L drag",
		mouse(input.DispatchMouseEventTypeMouseMoved, cx, cy, input.MouseButtonNone, 0),
		mouse(input.DispatchMouseEventTypeMousePressed, cx, cy, input.MouseButtonLeft, 1),
		mouse(input.DispatchMouseEventTypeMouseMoved, cx+20, cy+10, input.MouseButtonLeft, 1),
		mouse(input.DispatchMouseEventTypeMouseMoved, cx+60, cy+40, input.MouseButtonLeft, 1),
		mouse(input.DispatchMouseEventTypeMouseMoved, cx+100, cy+80, input.MouseButtonLeft, 1),
		mouse(input.DispatchMouseEventTypeMouseReleased, cx+100, cy+80, input.MouseButtonLeft, 0),
	)
	b.waitJS("a render after the drag", fmt.Sprintf(`__pacsProbe.vp().renders > %d`, v1.Renders), 10*time.Second)
	v2 := b.ohifViewport()
	b.settle()
	g2 := b.region(inner(v2.Rect))
	d = g2.meanAbsDiff(g1)
	t.Logf("OHIF W/L drag: VOI %v -> %v, mean |diff| %.2f grey levels", v1.VOI, v2.VOI, d)
	if fmt.Sprint(v1.VOI) == fmt.Sprint(v2.VOI) || d < 1 || v2.Index != v1.Index {
		t.Errorf("OHIF W/L drag: VOI %v -> %v, slice %d -> %d, pixels mean |diff| %.2f", v1.VOI, v2.VOI, v1.Index, v2.Index, d)
	}
	b.screenshot("ohif-wl")
	b.ohifCheckClean()
}

// settle waits until OHIF has rendered nothing for 200 ms (the last
// render of an interaction is on screen).
func (b *browser) settle() {
	b.t.Helper()
	var last, n int
	for i := 0; i < 50; i++ {
		b.eval("renders", `__pacsProbe.renders`, &n)
		if i > 0 && n == last {
			return
		}
		last = n
		time.Sleep(200 * time.Millisecond)
	}
}
