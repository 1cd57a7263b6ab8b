package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/labstack/echo/v4"
	"github.com/suyashkumar/dicom"
	"github.com/suyashkumar/dicom/pkg/tag"

	"github.com/cloudpacs/pacs/internal/dicomweb"
	"github.com/cloudpacs/pacs/internal/storage"
	"github.com/cloudpacs/pacs/internal/storage/memblob"
	"github.com/cloudpacs/pacs/internal/storage/sqliteindex"
	"github.com/cloudpacs/pacs/internal/testenv"
	"github.com/cloudpacs/pacs/viewer"
)

const corpus = "../../testdata/dicom"

// Corpus UIDs (testdata/dicom/MANIFEST.tsv).
const (
	studyUID     = "2.25.282492203790397027926792421891334355820" // PET-CT study with an SR
	ctSeriesUID  = "2.25.28303200511232364795636824614043687605"
	pdfStudyUID  = "2.25.179250665257641141314505816538365443888" // same patient, encapsulated PDF
	patientName  = "DOE^JANE"
	srText       = "No evidence of metabolically active disease (synthetic)."
	pdfDocTitle  = "Discharge summary (test)"
	reportsSRUID = "2.25.283204341737067358087471157913575984638" // reports/sr_basic_text_utf8.dcm study
)

// pacsServer is the DICOMweb API plus the viewer, in process, as
// cmd/pacs serves them.
type pacsServer struct {
	*httptest.Server
	Root string // DICOMweb root URL
}

func startPACS(t testing.TB) *pacsServer {
	t.Helper()
	idx, err := sqliteindex.Open(t.Context(), filepath.Join(t.TempDir(), "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	a := &storage.Archive{Blobs: memblob.New(), Index: idx, Logger: log}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	dw := dicomweb.New(dicomweb.Config{Archive: a, Logger: log})
	dw.Register(e)
	viewer.Register(e)
	s := httptest.NewServer(e)
	t.Cleanup(func() {
		s.Close()
		dw.Close()
		idx.Close()
	})
	return &pacsServer{Server: s, Root: s.URL + dicomweb.Root}
}

// corpusFiles lists files of the corpus by glob, relative to testdata/dicom.
func corpusFiles(t testing.TB, globs ...string) [][]byte {
	t.Helper()
	var out [][]byte
	for _, g := range globs {
		names, err := filepath.Glob(filepath.Join(corpus, g))
		if err != nil || len(names) == 0 {
			t.Fatalf("corpus %s: %v (no files)", g, err)
		}
		for _, n := range names {
			b, err := os.ReadFile(n)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, b)
		}
	}
	return out
}

// stow stores instances with one STOW-RS request.
func stow(t testing.TB, root string, objs [][]byte) {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for _, o := range objs {
		pw, err := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {"application/dicom"}})
		if err != nil {
			t.Fatal(err)
		}
		pw.Write(o)
	}
	mw.Close()
	req, _ := http.NewRequest(http.MethodPost, root+"/studies", &body)
	req.Header.Set("Content-Type", `multipart/related; type="application/dicom"; boundary=`+mw.Boundary())
	req.Header.Set("Accept", "application/dicom+json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("STOW: %d %s", res.StatusCode, b)
	}
}

// storeCorpusStudy stores the PET-CT study, the reports and the PDF.
func storeCorpusStudy(t testing.TB, root string) {
	stow(t, root, corpusFiles(t, "study/*/*.dcm", "reports/*.dcm"))
}

// --- browser -----------------------------------------------------------------

func chromiumPath() string {
	for _, c := range []string{os.Getenv("PACS_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"} {
		if c == "" {
			continue
		}
		if p, err := exec.LookPath(c); err == nil {
			return p
		}
	}
	return ""
}

// browser is one headless Chromium tab with its problems recorded:
// console errors, uncaught exceptions, log entries of level error, and
// HTTP responses >= 400 / failed loads.
type browser struct {
	ctx context.Context
	t   testing.TB

	mu       sync.Mutex
	problems []string // console errors and exceptions
	failed   []string // network responses >= 400 and failed loads
	requests map[network.RequestID]string
}

func newBrowser(t testing.TB, w, h int) *browser {
	t.Helper()
	path := chromiumPath()
	if path == "" {
		testenv.Missing(t, "chromium not found (scripts/browser.sh install)")
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("mute-audio", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(w, h),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	b := &browser{t: t, requests: map[network.RequestID]string{}}
	ctx, cancelC := chromedp.NewContext(actx, chromedp.WithListener(b.event))
	b.ctx = ctx
	t.Cleanup(func() {
		cancelC()
		cancelA()
	})
	if err := chromedp.Do(ctx,
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			if _, err := cdp.Call(ctx, tg, network.Enable, network.EnableParams{}); err != nil {
				return err
			}
			if _, err := cdp.Call(ctx, tg, cdplog.Enable, cdp.Empty{}); err != nil {
				return err
			}
			_, err := cdp.Call(ctx, tg, runtime.Enable, cdp.Empty{})
			return err
		}),
	); err != nil {
		t.Fatalf("starting chromium %s: %v", path, err)
	}
	return b
}

func (b *browser) event(ev any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch ev := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeAssert {
			var parts []string
			for _, a := range ev.Args {
				if a.Value != nil {
					parts = append(parts, string(a.Value))
				} else {
					parts = append(parts, a.Description)
				}
			}
			b.problems = append(b.problems, "console."+string(ev.Type)+": "+strings.Join(parts, " "))
		}
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		msg := d.Text
		if d.Exception != nil {
			msg += " " + d.Exception.Description
		}
		b.problems = append(b.problems, fmt.Sprintf("exception: %s (%s:%d)", msg, d.URL, d.LineNumber))
	case *cdplog.EventEntryAdded:
		if ev.Entry.Level == cdplog.EntryLevelError {
			b.problems = append(b.problems, fmt.Sprintf("log %s: %s %s", ev.Entry.Source, ev.Entry.Text, ev.Entry.URL))
		}
	case *network.EventRequestWillBeSent:
		b.requests[ev.RequestID] = ev.Request.Method + " " + ev.Request.URL
	case *network.EventResponseReceived:
		if ev.Response.Status >= 400 {
			b.failed = append(b.failed, fmt.Sprintf("%d %s %s", ev.Response.Status, b.requests[ev.RequestID], acceptOf(ev.Response.RequestHeaders)))
		}
	case *network.EventLoadingFailed:
		if !ev.Canceled {
			b.failed = append(b.failed, fmt.Sprintf("failed (%s) %s", ev.ErrorText, b.requests[ev.RequestID]))
		}
	}
}

func acceptOf(h network.Headers) string {
	for k, v := range h {
		if strings.EqualFold(k, "accept") {
			return fmt.Sprintf("[Accept: %v]", v)
		}
	}
	return ""
}

func (b *browser) Problems() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.problems...)
}

func (b *browser) Failed() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.failed...)
}

// run runs actions with a timeout.
func (b *browser) run(timeout time.Duration, actions ...chromedp.Action[chromedp.Void]) error {
	ctx, cancel := context.WithTimeout(b.ctx, timeout)
	defer cancel()
	return chromedp.Do(ctx, actions...)
}

func (b *browser) must(timeout time.Duration, what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := b.run(timeout, actions...); err != nil {
		b.screenshot("failed-" + strings.ReplaceAll(what, " ", "-"))
		b.t.Fatalf("%s: %v\nconsole problems: %q\nfailed requests: %q", what, err, b.Problems(), b.Failed())
	}
}

// eval evaluates a JS expression (promises awaited) into out (JSON).
func (b *browser) eval(what, js string, out any) {
	b.t.Helper()
	b.must(30*time.Second, what, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		v, err := chromedp.Evaluate[[]byte](js, chromedp.EvalAwaitPromise)(ctx, tg)
		if err != nil {
			return err
		}
		return json.Unmarshal(v, out)
	}))
}

// poll waits until a JS expression is truthy.
func poll(js string, timeout time.Duration) chromedp.Action[chromedp.Void] {
	return chromedp.Poll[chromedp.Void](js, chromedp.WithPollingInterval(20*time.Millisecond), chromedp.WithPollingTimeout(timeout))
}

// waitJS polls a JS expression until it is true.
func (b *browser) waitJS(what, js string, timeout time.Duration) {
	b.t.Helper()
	b.must(timeout+time.Second, "waiting for "+what, poll(js, timeout))
}

// mouse dispatches a mouse event with the buttons held.
func mouse(typ input.DispatchMouseEventType, x, y float64, button input.MouseButton, buttons int64) chromedp.Action[chromedp.Void] {
	return chromedp.MouseEvent(typ, x, y, func(p *input.DispatchMouseEventParams) {
		p.Button = button
		p.Buttons = buttons
		if typ == input.DispatchMouseEventTypeMousePressed || typ == input.DispatchMouseEventTypeMouseReleased {
			p.ClickCount = 1
		}
	})
}

// wheel dispatches a wheel event.
func wheel(x, y, dy float64) chromedp.Action[chromedp.Void] {
	return chromedp.MouseEvent(input.DispatchMouseEventTypeMouseWheel, x, y, func(p *input.DispatchMouseEventParams) {
		p.DeltaY = dy
		p.DeltaX = 1e-6 // the protocol requires deltaX, and the zero value is omitted
	})
}

var (
	artifactsOnce sync.Once
	artifactsDir  string
)

func artifacts(t testing.TB) string {
	artifactsOnce.Do(func() {
		artifactsDir = os.Getenv("PACS_E2E_ARTIFACTS")
		if artifactsDir == "" {
			d, err := os.MkdirTemp("", "pacs-e2e-")
			if err != nil {
				t.Fatal(err)
			}
			artifactsDir = d
		}
		os.MkdirAll(artifactsDir, 0o755)
	})
	return artifactsDir
}

// screenshot saves the page as <artifacts>/<test>-<name>.png.
func (b *browser) screenshot(name string) string {
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return ""
	}
	p := filepath.Join(artifacts(b.t), strings.ReplaceAll(b.t.Name(), "/", "_")+"-"+name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return ""
	}
	b.t.Logf("screenshot: %s", p)
	return p
}

// nodeCenter returns the centre of the first node matching sel, in CSS px.
func (b *browser) nodeCenter(sel string) (float64, float64) {
	b.t.Helper()
	var box []float64
	b.eval("box of "+sel, fmt.Sprintf(`(() => { const r = document.querySelector(%q).getBoundingClientRect(); return [r.x + r.width/2, r.y + r.height/2]; })()`, sel), &box)
	return box[0], box[1]
}

func decodeDataURL(s string) []byte {
	i := strings.IndexByte(s, ',')
	b, _ := base64.StdEncoding.DecodeString(s[i+1:])
	return b
}

// --- generated DICOM ---------------------------------------------------------

// dicomTemplate is a parsed corpus file that tests copy with rewritten
// UIDs and attributes (the pixel data stay the template's).
type dicomTemplate struct {
	t  testing.TB
	ds dicom.Dataset
}

func loadTemplate(t testing.TB, rel string) *dicomTemplate {
	t.Helper()
	ds, err := dicom.ParseFile(filepath.Join(corpus, rel), nil)
	if err != nil {
		t.Fatal(err)
	}
	return &dicomTemplate{t: t, ds: ds}
}

// set replaces the value of an element the template has.
func (d *dicomTemplate) set(tg tag.Tag, v ...string) {
	d.t.Helper()
	e, err := d.ds.FindElementByTag(tg)
	if err != nil {
		d.t.Fatalf("template lacks %v", tg)
	}
	if e.Value, err = dicom.NewValue(v); err != nil {
		d.t.Fatal(err)
	}
}

// setUIDs sets the study, series and instance UIDs (and the file meta's
// copy of the instance UID).
func (d *dicomTemplate) setUIDs(study, series, sop string) {
	d.t.Helper()
	d.set(tag.StudyInstanceUID, study)
	d.set(tag.SeriesInstanceUID, series)
	d.set(tag.SOPInstanceUID, sop)
	d.set(tag.MediaStorageSOPInstanceUID, sop)
}

// bytes writes the current dataset as a DICOM file.
func (d *dicomTemplate) bytes() []byte {
	d.t.Helper()
	var buf bytes.Buffer
	if err := dicom.Write(&buf, d.ds, dicom.SkipVRVerification(), dicom.SkipValueTypeVerification()); err != nil {
		d.t.Fatal(err)
	}
	return buf.Bytes()
}
