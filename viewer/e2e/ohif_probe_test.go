package e2e

import (
	"bytes"
	"context"
	"image/png"
	"math"
	"regexp"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// ohifProbe runs in OHIF's page before its scripts. OHIF sets
// window.cornerstone (the Cornerstone3D core) at start-up; the probe hooks
// that assignment to record, from navigation start (performance.now()):
//   - loaded: every image loaded and decoded (IMAGE_LOADED on
//     cornerstone.eventTarget), with its time;
//   - first: the first IMAGE_RENDERED of a viewport whose current image
//     is loaded (an image on screen, not an empty viewport);
//   - renders: the count of IMAGE_RENDERED events (the tests wait for a
//     render after an interaction).
//
// __pacsProbe.vp() describes the first stack viewport.
const ohifProbe = `(() => {
	const p = window.__pacsProbe = { loaded: new Map(), failed: 0, first: 0, renders: 0 };
	let cs;
	Object.defineProperty(window, 'cornerstone', { configurable: true, enumerable: true,
		get() { return cs; },
		set(v) {
			cs = v;
			v.eventTarget.addEventListener(v.EVENTS.IMAGE_LOADED, (e) => {
				const id = e.detail && e.detail.image && e.detail.image.imageId;
				if (id && !p.loaded.has(id)) p.loaded.set(id, performance.now());
			});
			v.eventTarget.addEventListener(v.EVENTS.IMAGE_LOAD_FAILED, () => { p.failed++; });
		} });
	document.addEventListener('CORNERSTONE_IMAGE_RENDERED', (e) => {
		p.renders++;
		if (p.first || !cs) return;
		const ee = cs.getEnabledElement(e.target);
		const id = ee && ee.viewport && ee.viewport.getCurrentImageId && ee.viewport.getCurrentImageId();
		if (id && p.loaded.has(id)) p.first = performance.now();
	}, true); // capture: the event does not bubble
	// loadedTimes: the load times of the images whose id contains s, sorted.
	p.loadedTimes = (s) => [...p.loaded].filter(([id]) => id.includes(s)).map(([, t]) => t).sort((a, b) => a - b);
	p.vp = () => {
		if (!cs) return null;
		const e = cs.getEnabledElements().find((e) => e.viewport && typeof e.viewport.getCurrentImageIdIndex === 'function');
		if (!e) return null;
		const v = e.viewport, r = v.element.getBoundingClientRect(), pr = v.getProperties ? v.getProperties() : {};
		const id = v.getCurrentImageId() || '';
		return { index: v.getCurrentImageIdIndex(), n: v.getImageIds().length, imageId: id, loaded: p.loaded.has(id),
			voi: pr.voiRange ? [pr.voiRange.lower, pr.voiRange.upper] : null, rect: [r.x, r.y, r.width, r.height], renders: p.renders };
	};
})()`

// ohifViewport is __pacsProbe.vp().
type ohifViewport struct {
	Index, N int
	ImageID  string
	Loaded   bool
	VOI      []float64
	Rect     []float64
	Renders  int
}

// addInitScript runs js in every new document of the tab, before the
// page's own scripts.
func (b *browser) addInitScript(js string) {
	b.t.Helper()
	b.must(10*time.Second, "init script", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		if _, err := cdp.Call(ctx, tg, page.Enable, page.EnableParams{}); err != nil {
			return err
		}
		_, err := cdp.Call(ctx, tg, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: js})
		return err
	}))
}

func (b *browser) ohifViewport() ohifViewport {
	b.t.Helper()
	var v ohifViewport
	b.eval("OHIF viewport", `__pacsProbe.vp()`, &v)
	return v
}

// greyRegion is a screenshot of a page rectangle (CSS px) in grey levels
// (OHIF draws with WebGL: the page is read back, not the canvas).
type greyRegion struct {
	W, H int
	Pix  []float64
}

func (b *browser) region(r []float64) greyRegion {
	b.t.Helper()
	var data []byte
	b.must(20*time.Second, "region screenshot", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		res, err := cdp.Call(ctx, tg, page.CaptureScreenshot, page.CaptureScreenshotParams{
			Format: page.CaptureScreenshotFormatPng,
			Clip:   &page.Viewport{X: math.Round(r[0]), Y: math.Round(r[1]), Width: math.Round(r[2]), Height: math.Round(r[3]), Scale: 1},
		})
		data = res.Data
		return err
	}))
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		b.t.Fatal(err)
	}
	bd := img.Bounds()
	g := greyRegion{W: bd.Dx(), H: bd.Dy()}
	for y := bd.Min.Y; y < bd.Max.Y; y++ {
		for x := bd.Min.X; x < bd.Max.X; x++ {
			cr, cg, cb, _ := img.At(x, y).RGBA()
			g.Pix = append(g.Pix, float64(cr+cg+cb)/3/257)
		}
	}
	return g
}

func (g greyRegion) variance() float64 {
	var s, s2 float64
	for _, v := range g.Pix {
		s += v
		s2 += v * v
	}
	n := float64(len(g.Pix))
	if n == 0 {
		return 0
	}
	m := s / n
	return s2/n - m*m
}

// meanAbsDiff is the mean |a-b| of two regions of the same size.
func (g greyRegion) meanAbsDiff(o greyRegion) float64 {
	if len(g.Pix) != len(o.Pix) || len(g.Pix) == 0 {
		return math.Inf(1)
	}
	var s float64
	for i := range g.Pix {
		s += math.Abs(g.Pix[i] - o.Pix[i])
	}
	return s / float64(len(g.Pix))
}

// inner is the middle of a viewport rectangle: the image, without the
// corner overlays that OHIF draws over it.
func inner(r []float64) []float64 {
	return []float64{r[0] + r[2]*0.25, r[1] + r[3]*0.2, r[2] * 0.5, r[3] * 0.6}
}

// ohifNoise is the allowlist of OHIF console messages that are not
// failures of the flows under test: each entry is a pattern and the reason
// it is unrelated; anything else fails the test. It is empty because OHIF
// 3.13.2 logs no error in these flows (favicon.ico is in the dist; in a
// page, the dist's init-service-worker.js only unregisters workers). Never
// add a DICOMweb request here. Example of the form:
//
//	{regexp.MustCompile(`/favicon\.ico`), "the browser's own favicon request, not OHIF's"},
var ohifNoise = []struct {
	re  *regexp.Regexp
	why string
}{}

// ohifCheckClean fails the test on OHIF console errors outside
// ohifNoise and on any request answered >= 400 or failed (DICOMweb or
// OHIF's own assets).
func (b *browser) ohifCheckClean() {
	b.t.Helper()
	for _, p := range b.Problems() {
		allowed := ""
		for _, n := range ohifNoise {
			if n.re.MatchString(p) {
				allowed = n.why
				break
			}
		}
		if allowed != "" {
			b.t.Logf("OHIF console (allowed: %s): %s", allowed, p)
			continue
		}
		b.t.Errorf("OHIF console error: %s", p)
	}
	for _, f := range b.Failed() {
		b.t.Errorf("OHIF request failed: %s", f)
	}
}
