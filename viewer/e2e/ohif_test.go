package e2e

import (
	"bytes"
	"fmt"
	"image"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/cloudpacs/pacs/internal/testenv"
)

// ohifDist finds the prebuilt OHIF (scripts/ohif.sh fetch).
func ohifDist(t testing.TB) string {
	t.Helper()
	if d := os.Getenv("PACS_OHIF_DIST"); d != "" {
		return d
	}
	out, err := exec.Command("bash", "../../scripts/ohif.sh", "dist").Output()
	d := strings.TrimSpace(string(out))
	if err != nil || d == "" {
		testenv.Missing(t, "OHIF dist not fetched (scripts/ohif.sh fetch)")
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

// regionVariance screenshots the page and returns the grey-level variance
// inside the CSS-pixel rectangle (OHIF draws with WebGL: the canvas
// cannot be read back from JS, the screenshot can).
func (b *browser) regionVariance(x, y, w, h float64) (float64, []byte) {
	b.t.Helper()
	png0 := b.screenshotBytes()
	img, err := png.Decode(bytes.NewReader(png0))
	if err != nil {
		b.t.Fatal(err)
	}
	r := image.Rect(int(x), int(y), int(x+w), int(y+h)).Intersect(img.Bounds())
	var n, s, s2 float64
	for yy := r.Min.Y; yy < r.Max.Y; yy += 2 {
		for xx := r.Min.X; xx < r.Max.X; xx += 2 {
			cr, cg, cb, _ := img.At(xx, yy).RGBA()
			v := float64(cr+cg+cb) / 3 / 257
			n++
			s += v
			s2 += v * v
		}
	}
	if n == 0 {
		return 0, png0
	}
	m := s / n
	return s2/n - m*m, png0
}

func (b *browser) screenshotBytes() []byte {
	b.t.Helper()
	p := b.screenshot(fmt.Sprintf("probe-%d", time.Now().UnixNano()%1000))
	if p == "" {
		b.t.Fatal("screenshot failed")
	}
	data, err := os.ReadFile(p)
	if err != nil {
		b.t.Fatal(err)
	}
	os.Remove(p)
	return data
}

func TestOHIF(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	dist := ohifDist(t)
	srv := startPACS(t)
	storeCorpusStudy(t, srv.Root)
	ohif := serveOHIF(t, dist, srv.Root)
	b := newBrowser(t, 1366, 900)

	// Study list (QIDO with OHIF's parameters).
	start := time.Now()
	b.must(60*time.Second, "OHIF study list",
		chromedp.Navigate(ohif.URL+"/"),
		poll(`document.body && document.body.innerText.includes('PET-CT WHOLE BODY FDG')`, 50*time.Second),
	)
	t.Logf("OHIF study list shows the patient after %v", time.Since(start).Round(time.Millisecond))
	b.screenshot("ohif-list")

	// Viewer route: the cornerstone canvas shows a non-blank image.
	start = time.Now()
	b.must(90*time.Second, "OHIF viewer",
		chromedp.Navigate(ohif.URL+"/viewer?StudyInstanceUIDs="+studyUID),
		poll(`!!document.querySelector('canvas.cornerstone-canvas, .cornerstone-viewport-element canvas, .viewport-element canvas')`, 80*time.Second),
	)
	var rect []float64
	var variance float64
	deadline := time.Now().Add(60 * time.Second)
	for {
		b.eval("canvas rect", `(() => { const c = document.querySelector('canvas.cornerstone-canvas, .cornerstone-viewport-element canvas, .viewport-element canvas'); const r = c.getBoundingClientRect(); return [r.x, r.y, r.width, r.height]; })()`, &rect)
		variance, _ = b.regionVariance(rect[0], rect[1], rect[2], rect[3])
		if variance > 50 || time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Logf("OHIF first image (canvas variance %.1f) %v after navigation", variance, time.Since(start).Round(time.Millisecond))
	b.screenshot("ohif-viewer")
	if variance <= 50 {
		t.Errorf("OHIF viewport looks blank: variance %.1f in %v", variance, rect)
	}
	for _, f := range b.Failed() {
		t.Logf("OHIF request failed: %s", f)
	}
	for _, p := range b.Problems() {
		t.Logf("OHIF console: %s", p)
	}
	if os.Getenv("PACS_OHIF_STRICT") == "1" && len(b.Failed()) > 0 {
		t.Errorf("%d OHIF requests failed", len(b.Failed()))
	}
}
