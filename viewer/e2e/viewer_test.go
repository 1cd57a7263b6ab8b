package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// JS helpers evaluated in the page.
const (
	// canvasStats: mean, variance and a signature of the active viewport's
	// canvas (red channel; the images are grey).
	jsCanvasStats = `(() => {
		const vp = pacsViewer.viewports[%d], c = vp.canvas;
		const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
		let n = 0, s = 0, s2 = 0, sig = 0;
		for (let i = 0; i < d.length; i += 4) { const v = d[i]; s += v; s2 += v * v; n++; sig = (sig * 31 + v) %% 1000000007; }
		const m = s / n;
		return { mean: m, variance: s2 / n - m * m, sig, w: c.width, h: c.height, index: vp.index,
			shown: vp.shown ? vp.shown.url : '', current: vp.currentURL() };
	})()`
	// jsCompareURL draws a reference image (the JS expression %[2]s, with
	// vp the viewport) the way the viewport draws its image, and compares
	// it with the canvas.
	jsCompareURL = `(async () => {
		const vp = pacsViewer.viewports[%[1]d];
		const res = await fetch(%[2]s);
		if (!res.ok) throw new Error('reference: ' + res.status);
		const ref = await createImageBitmap(await res.blob());
		const c2 = new OffscreenCanvas(vp.canvas.width, vp.canvas.height);
		vp.paintInto(c2.getContext('2d'), ref);
		const a = vp.canvas.getContext('2d').getImageData(0, 0, vp.canvas.width, vp.canvas.height).data;
		const b = c2.getContext('2d').getImageData(0, 0, c2.width, c2.height).data;
		let sum = 0, max = 0, n = 0, big = 0;
		for (let i = 0; i < a.length; i += 4) for (let k = 0; k < 3; k++) {
			const d = Math.abs(a[i + k] - b[i + k]); sum += d; n++; if (d > max) max = d; if (d > 24) big++;
		}
		return { meanAbs: sum / n, max, bigFraction: big / n, refW: ref.width, refH: ref.height };
	})()`
	// refCurrent is the server's PNG of the viewport's current frame with
	// the viewport's window.
	refCurrent = `vp.currentURL('png')`
)

// jsCompare compares viewport vp's canvas with the reference URL (a JS
// expression).
func jsCompare(vp int, ref string) string { return fmt.Sprintf(jsCompareURL, vp, ref) }

type canvasStats struct {
	Mean, Variance float64
	Sig            float64
	W, H, Index    int
	Shown, Current string
}

type compareResult struct {
	MeanAbs, Max, BigFraction float64
	RefW, RefH                int
}

func (b *browser) stats(vp int) canvasStats {
	b.t.Helper()
	var s canvasStats
	b.eval("canvas stats", fmt.Sprintf(jsCanvasStats, vp), &s)
	return s
}

// waitShown waits until viewport vp shows its current image.
func (b *browser) waitShown(vp int) canvasStats {
	b.t.Helper()
	b.waitJS("the current image on screen", fmt.Sprintf(`(() => { const vp = window.pacsViewer && pacsViewer.viewports[%d]; return !!(vp && vp.shown && vp.shown.url === vp.currentURL()); })()`, vp), 20*time.Second)
	return b.stats(vp)
}

func TestViewer(t *testing.T) {
	srv := startPACS(t)
	storeCorpusStudy(t, srv.Root)
	b := newBrowser(t, 1366, 900)

	// --- study list ---------------------------------------------------------
	b.must(20*time.Second, "study list",
		chromedp.Navigate(srv.URL+"/"),
		poll(`document.querySelectorAll('#studies tbody tr').length >= 3`, 15*time.Second),
	)
	var rows []string
	b.eval("rows", `[...document.querySelectorAll('#studies tbody tr')].map(r => r.dataset.study + '|' + r.innerText.replace(/\s+/g, ' '))`, &rows)
	var row string
	for _, r := range rows {
		if strings.HasPrefix(r, studyUID+"|") {
			row = r
		}
	}
	if row == "" {
		t.Fatalf("study %s not in the list: %q", studyUID, rows)
	}
	for _, want := range []string{"DOE, JANE", "PACSTEST0001", "PET-CT WHOLE BODY FDG", "ACC20240315001", " 3 20"} {
		if !strings.Contains(row, want) {
			t.Errorf("study row %q lacks %q", row, want)
		}
	}
	b.screenshot("list")

	// Search by accession: one row.
	b.must(20*time.Second, "search by accession",
		chromedp.SendKeys(chromedp.CSS(`#search input[name=acc]`), "ACC20240315001"),
		chromedp.Click(chromedp.CSS(`#search button[type=submit]`)),
		poll(`document.querySelectorAll('#studies tbody tr').length === 1 && document.querySelector('#studies tbody tr').dataset.study === '`+studyUID+`'`, 15*time.Second),
	)
	// Sort by instances: clicking the header twice sorts descending.
	b.must(20*time.Second, "clear and sort",
		chromedp.Click(chromedp.CSS(`#search button[type=reset]`)),
		poll(`document.querySelectorAll('#studies tbody tr').length >= 3`, 15*time.Second),
		chromedp.Click(chromedp.CSS(`th[data-key=inst]`)),
		chromedp.Click(chromedp.CSS(`th[data-key=inst]`)),
		poll(`document.querySelector('#studies tbody tr').dataset.study === '`+studyUID+`'`, 15*time.Second),
	)

	// --- open the study -----------------------------------------------------
	b.must(20*time.Second, "open the study",
		chromedp.Click(chromedp.CSS(`tr[data-study="`+studyUID+`"]`)),
		chromedp.WaitVisible(chromedp.CSS(`.viewport canvas`)),
	)
	var loc string
	b.eval("location", `location.pathname + location.search`, &loc)
	if loc != "/viewer?StudyInstanceUIDs="+studyUID {
		t.Errorf("study URL %q", loc)
	}
	s0 := b.waitShown(0)
	var stats map[string]float64
	b.eval("timing", `({ first: pacsViewer.viewports[0].stats.first })`, &stats)
	t.Logf("first image %.0f ms after navigation start; canvas %dx%d mean %.1f variance %.1f", stats["first"], s0.W, s0.H, s0.Mean, s0.Variance)
	if s0.Variance < 100 {
		t.Errorf("canvas looks blank: variance %.1f (mean %.1f)", s0.Variance, s0.Mean)
	}
	if !strings.Contains(s0.Current, ctSeriesUID) {
		t.Errorf("first viewport shows %s, want the CT series", s0.Current)
	}
	b.compare(0, "first image")
	b.screenshot("study")

	// --- scrolling ----------------------------------------------------------
	b.must(5*time.Second, "arrow down", chromedp.KeyEvent(kb.ArrowDown))
	s1 := b.waitShown(0)
	if s1.Index != 1 || s1.Sig == s0.Sig {
		t.Errorf("ArrowDown: index %d (want 1), pixels changed %v", s1.Index, s1.Sig != s0.Sig)
	}
	x, y := b.nodeCenter(".viewport")
	b.must(5*time.Second, "wheel", wheel(x, y, 100))
	s2 := b.waitShown(0)
	if s2.Index <= 1 || s2.Sig == s1.Sig {
		t.Errorf("wheel: index %d (want > 1), pixels changed %v", s2.Index, s2.Sig != s1.Sig)
	}
	b.must(5*time.Second, "end", chromedp.KeyEvent(kb.End))
	if s := b.waitShown(0); s.Index != 10 {
		t.Errorf("End: index %d, want 10 (11 CT images)", s.Index)
	}
	b.must(5*time.Second, "home", chromedp.KeyEvent(kb.Home))
	b.waitShown(0)

	// --- window/level -------------------------------------------------------
	before := b.waitShown(0)
	b.must(10*time.Second, "right-drag",
		mouse(input.DispatchMouseEventTypeMousePressed, x, y, input.MouseButtonRight, 2),
		mouse(input.DispatchMouseEventTypeMouseMoved, x+40, y+20, input.MouseButtonRight, 2),
		mouse(input.DispatchMouseEventTypeMouseMoved, x+120, y+60, input.MouseButtonRight, 2),
		mouse(input.DispatchMouseEventTypeMouseReleased, x+120, y+60, input.MouseButtonRight, 0),
	)
	after := b.waitShown(0)
	if after.Current == before.Current || after.Sig == before.Sig {
		t.Errorf("W/L drag changed nothing: %s", after.Current)
	}
	var overlay string
	b.eval("overlay", `document.querySelector('.viewport .br').innerText`, &overlay)
	t.Logf("after W/L drag: %q", overlay)
	b.compare(0, "after W/L drag")

	// Presets and reset.
	b.must(5*time.Second, "lung preset", chromedp.KeyEvent("2"))
	lung := b.waitShown(0)
	if !strings.Contains(lung.Current, "window=-600,1500") {
		t.Errorf("lung preset: %s", lung.Current)
	}
	b.must(5*time.Second, "reset", chromedp.KeyEvent("r"))
	b.waitShown(0)

	// --- layout: 1x2 compares the CT and the PET --------------------------
	b.must(10*time.Second, "layout 1x2", chromedp.Click(chromedp.CSS(`[data-layout="1x2"]`)))
	b.waitJS("second viewport", `pacsViewer.viewports.length === 2 && !!pacsViewer.viewports[1].stack`, 10*time.Second)
	pt := b.waitShown(1)
	// The PET's own window (from its metadata) leaves it dark: the
	// comparison with the server's rendering is the check here.
	if pt.Variance <= 0 || strings.Contains(pt.Current, ctSeriesUID) {
		t.Errorf("second viewport: variance %.1f, %s", pt.Variance, pt.Current)
	}
	b.compare(1, "PET viewport")

	// --- reports ------------------------------------------------------------
	b.waitJS("SR text", fmt.Sprintf(`(document.querySelector('.report-view') || {}).innerText?.includes(%q)`, srText), 10*time.Second)
	b.screenshot("sr")
	b.must(10*time.Second, "open the PDF",
		chromedp.Click(chromedp.CSS(`.report-item[data-kind=pdf]`)),
		chromedp.WaitVisible(chromedp.CSS(`iframe.pdf`)),
	)
	var pdf struct {
		Magic, Title string
		Size         int
	}
	b.eval("PDF bytes", `(async () => { const f = document.querySelector('iframe.pdf'); const b = new Uint8Array(await (await fetch(f.src)).arrayBuffer());
		return { magic: String.fromCharCode(...b.slice(0, 5)), size: b.length, title: document.querySelector('.report-view h3').innerText }; })()`, &pdf)
	if pdf.Magic != "%PDF-" || pdf.Size < 900 || pdf.Title != pdfDocTitle {
		t.Errorf("PDF panel: %+v", pdf)
	}
	time.Sleep(300 * time.Millisecond) // let the PDF plugin paint for the screenshot
	b.screenshot("pdf")

	if p := b.Problems(); len(p) > 0 {
		t.Errorf("console errors: %q", p)
	}
	if f := b.Failed(); len(f) > 0 {
		t.Errorf("failed requests: %q", f)
	}
}

// compare checks the viewport's canvas against the server's PNG of the
// same frame and window. The viewer loads JPEG (quality 90): small
// differences only.
func (b *browser) compare(vp int, what string) {
	b.t.Helper()
	var c compareResult
	b.eval("compare with the server PNG", jsCompare(vp, refCurrent), &c)
	b.t.Logf("%s vs server PNG (%dx%d): mean |diff| %.2f, max %.0f, >24: %.4f%%", what, c.RefW, c.RefH, c.MeanAbs, c.Max, 100*c.BigFraction)
	if c.MeanAbs > 2.5 || c.BigFraction > 0.005 {
		b.t.Errorf("%s: canvas differs from the server rendering: %+v", what, c)
	}
}

// TestViewerTablet opens a study on a tablet-sized screen (portrait).
func TestViewerTablet(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	srv := startPACS(t)
	storeCorpusStudy(t, srv.Root)
	b := newBrowser(t, 820, 1180)
	b.must(20*time.Second, "open", chromedp.Navigate(srv.URL+"/viewer?StudyInstanceUIDs="+studyUID+"&render=png"))
	s := b.waitShown(0)
	if s.Variance < 100 || s.W < 400 {
		t.Errorf("tablet viewport %dx%d variance %.1f", s.W, s.H, s.Variance)
	}
	var c compareResult
	b.eval("compare", jsCompare(0, refCurrent), &c)
	if c.Max != 0 {
		t.Errorf("PNG rendering drawn differs from the server's PNG: %+v", c)
	}
	b.screenshot("tablet")
	if p := b.Problems(); len(p) > 0 {
		t.Errorf("console errors: %q", p)
	}
}

// Corpus files of the cine and default-window tests (MANIFEST.tsv).
const (
	cineFile     = "ts/us_cine_rgb_12f_jpeg_baseline.dcm" // US, 12 frames, Frame Time 40 ms
	cineStudyUID = "1.2.840.113619.2.21.848.246800003.0.1952805748.3"
	noWindowCT   = "images/ct_small_signed_no_window.dcm" // CT without Window Center/Width
	noWindowUID  = "1.3.6.1.4.1.5962.1.2.1.20040119072730.12322"
)

// TestViewerCine plays the multi-frame US instance: with cine on, the
// frame index and the canvas change over time; paused, they stay.
func TestViewerCine(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	b := newBrowser(t, 1024, 768)
	srv := startPACS(t)
	stow(t, srv.Root, corpusFiles(t, cineFile))
	b.must(20*time.Second, "open", chromedp.Navigate(srv.URL+"/viewer?StudyInstanceUIDs="+cineStudyUID))
	first := b.waitShown(0)
	var st struct {
		N   int
		FPS float64
	}
	b.eval("stack", `({ n: pacsViewer.viewports[0].length, fps: pacsViewer.viewports[0].stack.fps })`, &st)
	if st.N != 12 || st.FPS != 25 {
		t.Fatalf("stack: %d frames at %v fps, want 12 at 25 (Frame Time 40 ms)", st.N, st.FPS)
	}
	if first.Variance < 100 {
		t.Errorf("first frame looks blank: variance %.1f", first.Variance)
	}

	// Play: sample the canvas for ~1.2 s.
	b.must(5*time.Second, "play (C)", chromedp.KeyEvent("c"))
	indices, sigs := map[int]bool{}, map[float64]bool{}
	for i := 0; i < 12; i++ {
		time.Sleep(100 * time.Millisecond)
		s := b.stats(0)
		indices[s.Index] = true
		sigs[s.Sig] = true
	}
	var overlay string
	b.eval("overlay", `document.querySelector('.viewport .br').innerText`, &overlay)
	t.Logf("playing: %d distinct frames, %d distinct canvases in 1.2 s; overlay %q", len(indices), len(sigs), overlay)
	if len(indices) < 4 || len(sigs) < 4 {
		t.Errorf("cine does not advance: %d frame indices, %d canvases", len(indices), len(sigs))
	}
	if !strings.Contains(overlay, "Cine 25 fps") {
		t.Errorf("overlay %q lacks the cine rate", overlay)
	}
	b.screenshot("cine")

	// Pause: the frame and the pixels stay (wait for the frame in flight).
	b.must(5*time.Second, "pause (C)", chromedp.KeyEvent("c"))
	paused := b.waitShown(0)
	time.Sleep(500 * time.Millisecond) // > 12 frame periods
	still := b.stats(0)
	if still.Index != paused.Index || still.Sig != paused.Sig {
		t.Errorf("paused cine still moves: frame %d -> %d", paused.Index, still.Index)
	}
	var on bool
	b.eval("cine state", `!!pacsViewer.viewports[0].cineTimer || document.querySelector('#cine').classList.contains('on')`, &on)
	if on {
		t.Error("cine still on after pause")
	}
	// The toolbar button plays too.
	b.must(5*time.Second, "cine button", chromedp.Click(chromedp.CSS(`#cine`)))
	b.waitJS("cine button advances", fmt.Sprintf(`pacsViewer.viewports[0].index !== %d`, still.Index), 5*time.Second)
	b.must(5*time.Second, "cine button off", chromedp.Click(chromedp.CSS(`#cine`)))
	b.checkClean()
}

// TestViewerCTDefaultWindow opens a CT without a window in its metadata:
// it opens at soft tissue (40/400), pixel for pixel the server's PNG with
// window=40,400, not at the server's min/max default.
func TestViewerCTDefaultWindow(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	b := newBrowser(t, 1024, 768)
	srv := startPACS(t)
	stow(t, srv.Root, corpusFiles(t, noWindowCT))
	b.must(20*time.Second, "open", chromedp.Navigate(srv.URL+"/viewer?StudyInstanceUIDs="+noWindowUID+"&render=png"))
	s := b.waitShown(0)
	if !strings.Contains(s.Current, "window=40,400") {
		t.Errorf("CT without a window opens with %s, want window=40,400", s.Current)
	}
	var overlay string
	b.eval("overlay", `document.querySelector('.viewport .br').innerText`, &overlay)
	if !strings.Contains(overlay, "W 400 L 40") {
		t.Errorf("overlay %q, want W 400 L 40", overlay)
	}
	// The reference URL is built here, not by the viewer.
	frame := func(q string) string {
		return fmt.Sprintf("`%s/studies/${vp.stack.study}/series/${vp.stack.series}/instances/${vp.image.sop}/frames/1/rendered?%s`", srv.Root, q)
	}
	var soft, auto compareResult
	b.eval("compare with window=40,400", jsCompare(0, frame("window=40,400&accept=image/png")), &soft)
	b.eval("compare with the server default", jsCompare(0, frame("accept=image/png")), &auto)
	t.Logf("canvas vs server PNG window=40,400: mean |diff| %.2f max %.0f; vs server default (min/max): mean |diff| %.2f", soft.MeanAbs, soft.Max, auto.MeanAbs)
	if soft.Max != 0 {
		t.Errorf("canvas differs from the server's PNG with window=40,400: %+v", soft)
	}
	if auto.MeanAbs < 10 {
		t.Errorf("soft tissue and min/max look alike (mean |diff| %.2f): the test proves nothing", auto.MeanAbs)
	}
	// Reset and the default key keep the soft-tissue default.
	b.must(5*time.Second, "lung then default", chromedp.KeyEvent("2"), chromedp.KeyEvent("0"))
	if s := b.waitShown(0); !strings.Contains(s.Current, "window=40,400") {
		t.Errorf("after preset 0: %s", s.Current)
	}
	b.screenshot("ct-default-window")
	b.checkClean()
}

// checkClean fails the test on console errors, exceptions and requests
// answered >= 400.
func (b *browser) checkClean() {
	b.t.Helper()
	if p := b.Problems(); len(p) > 0 {
		b.t.Errorf("console errors: %q", p)
	}
	if f := b.Failed(); len(f) > 0 {
		b.t.Errorf("failed requests: %q", f)
	}
}
