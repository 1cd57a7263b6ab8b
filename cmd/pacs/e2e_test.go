package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cloudpacs/pacs/internal/testenv"
)

// server is one running `pacs serve` process.
type server struct {
	base string // http://127.0.0.1:port
	cmd  *exec.Cmd
	done chan struct{}
	mu   sync.Mutex
	logs bytes.Buffer
}

// startServer runs the built binary with args (after "serve") on a free
// loopback port and waits until /readyz answers 200.
func startServer(t *testing.T, env []string, args ...string) *server {
	t.Helper()
	bin := pacsBinary(t)
	cmd := exec.Command(bin, append([]string{"serve", "--listen", "127.0.0.1:0"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &server{cmd: cmd, done: make(chan struct{})}
	addrc := make(chan string, 1)
	go func() {
		defer close(s.done)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			s.mu.Lock()
			s.logs.WriteString(sc.Text() + "\n")
			s.mu.Unlock()
			var l struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &l) == nil && l.Msg == "listening" {
				addrc <- l.Addr
			}
		}
	}()
	t.Cleanup(func() { s.stop(t) })
	select {
	case a := <-addrc:
		s.base = "http://" + a
	case <-time.After(60 * time.Second):
		t.Fatalf("server did not start:\n%s", s.logText())
	}
	for i := 0; ; i++ {
		if code, _ := s.get(t, "/readyz"); code == 200 {
			return s
		}
		if i > 200 {
			t.Fatalf("never ready:\n%s", s.logText())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *server) logText() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logs.String()
}

// stop sends SIGTERM and waits for a clean exit.
func (s *server) stop(t *testing.T) {
	if s.cmd.ProcessState != nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		t.Errorf("server did not stop on SIGTERM")
	}
	if err := s.cmd.Wait(); err != nil {
		t.Errorf("server exit: %v\n%s", err, s.logText())
	}
}

func (s *server) get(t *testing.T, path string, hdr ...string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest("GET", s.base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, b
}

// stow posts files as one multipart/related request and returns the
// status and the decoded response.
func (s *server) stow(t *testing.T, files ...string) (int, map[string]any) {
	t.Helper()
	body, ctype := stowBody(t, files...)
	res, err := http.Post(s.base+"/dicom-web/studies", ctype, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out map[string]any
	b, _ := io.ReadAll(res.Body)
	if len(b) > 0 {
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatalf("STOW response %d: %v: %s", res.StatusCode, err, b)
		}
	}
	return res.StatusCode, out
}

func stowBody(t *testing.T, files ...string) ([]byte, string) {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		w, _ := mw.CreatePart(map[string][]string{"Content-Type": {"application/dicom"}})
		w.Write(b)
	}
	mw.Close()
	return body.Bytes(), `multipart/related; type="application/dicom"; boundary=` + mw.Boundary()
}

func corpus(t *testing.T, pattern string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("../../testdata/dicom", pattern))
	if err != nil || len(files) == 0 {
		t.Fatalf("no corpus files for %s", pattern)
	}
	return files
}

// seqLen is the number of items in a sequence of a STOW response.
func seqLen(resp map[string]any, tag string) int {
	el, _ := resp[tag].(map[string]any)
	v, _ := el["Value"].([]any)
	return len(v)
}

// qidoInt reads an IS/US value of the first QIDO result.
func qidoInt(t *testing.T, body []byte, tag string) int {
	t.Helper()
	var rows []map[string]map[string]any
	if err := json.Unmarshal(body, &rows); err != nil || len(rows) == 0 {
		t.Fatalf("QIDO: %v: %s", err, body)
	}
	v, _ := rows[0][tag]["Value"].([]any)
	if len(v) == 0 {
		t.Fatalf("QIDO: no %s in %s", tag, body)
	}
	n, _ := v[0].(float64)
	return int(n)
}

const (
	studyUID = "2.25.282492203790397027926792421891334355820"
	ctSeries = "2.25.28303200511232364795636824614043687605"
)

// TestScaleOut runs two replicas over one PostgreSQL and one S3 bucket:
// what one stores, the other finds and serves at once, and concurrent
// uploads through both end in one consistent study.
func TestScaleOut(t *testing.T) {
	blob := testenv.S3URL(t)
	index := testenv.PostgresDSN(t)
	a := startServer(t, nil, "--blob", blob, "--index", index, "--data", t.TempDir())
	b := startServer(t, nil, "--blob", blob, "--index", index, "--data", t.TempDir())

	ct := corpus(t, "study/s02_ct/*.dcm")
	if code, resp := a.stow(t, ct[:5]...); code != 200 || seqLen(resp, "00081199") != 5 {
		t.Fatalf("STOW via A: %d %v", code, resp)
	}
	// Immediately visible through B: search, metadata, instances, frames.
	code, body := b.get(t, "/dicom-web/studies?StudyInstanceUID="+studyUID)
	if code != 200 || qidoInt(t, body, "00201208") != 5 {
		t.Fatalf("QIDO via B: %d %s", code, body)
	}
	code, body = b.get(t, "/dicom-web/studies/"+studyUID+"/series/"+ctSeries+"/metadata")
	var md []any
	if code != 200 || json.Unmarshal(body, &md) != nil || len(md) != 5 {
		t.Fatalf("series metadata via B: %d, %d instances", code, len(md))
	}
	// Store one more through A: B's metadata (cached in the shared index)
	// must include it right after A's response.
	if code, _ := a.stow(t, ct[5]); code != 200 {
		t.Fatalf("STOW via A: %d", code)
	}
	code, body = b.get(t, "/dicom-web/studies/"+studyUID+"/series/"+ctSeries+"/metadata")
	if code != 200 || json.Unmarshal(body, &md) != nil || len(md) != 6 {
		t.Fatalf("series metadata via B after a second STOW via A: %d, %d instances", code, len(md))
	}
	// Byte-identical retrieval through B of what A stored.
	want, err := os.ReadFile(ct[0])
	if err != nil {
		t.Fatal(err)
	}
	sop := sopUIDOf(t, a, ct[0])
	code, got := b.get(t, "/dicom-web/studies/"+studyUID+"/series/"+ctSeries+"/instances/"+sop, "Accept", "application/dicom; transfer-syntax=*")
	if code != 200 || !bytes.Equal(got, want) {
		t.Fatalf("instance via B: %d, %d bytes, identical %v", code, len(got), bytes.Equal(got, want))
	}

	// Concurrent uploads through both replicas: the rest of the study, with
	// overlaps (the same instances sent through both at once).
	rest := append(corpus(t, "study/s02_ct/*.dcm")[6:], corpus(t, "study/s03_pt/*.dcm")...)
	rest = append(rest, corpus(t, "study/s100_sr/*.dcm")...)
	var wg sync.WaitGroup
	errs := make(chan string, 2*len(rest))
	for _, srv := range []*server{a, b} {
		for _, f := range rest {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if code, resp := srv.stow(t, f); code != 200 {
					errs <- fmt.Sprintf("%s via %s: %d %v", filepath.Base(f), srv.base, code, resp)
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	for _, srv := range []*server{a, b} {
		code, body := srv.get(t, "/dicom-web/studies?StudyInstanceUID="+studyUID)
		if code != 200 || qidoInt(t, body, "00201208") != 20 || qidoInt(t, body, "00201206") != 3 {
			t.Fatalf("after concurrent STOW via %s: %d %s", srv.base, code, body)
		}
		code, body = srv.get(t, "/dicom-web/studies/"+studyUID+"/instances")
		var rows []any
		if code != 200 || json.Unmarshal(body, &rows) != nil || len(rows) != 20 {
			t.Fatalf("instances via %s: %d, %d rows", srv.base, code, len(rows))
		}
		code, body = srv.get(t, "/dicom-web/studies/"+studyUID+"/metadata")
		if code != 200 || json.Unmarshal(body, &md) != nil || len(md) != 20 {
			t.Fatalf("study metadata via %s: %d, %d instances", srv.base, code, len(md))
		}
	}
	// Delete through B, gone through A.
	req, _ := http.NewRequest("DELETE", b.base+"/dicom-web/studies/"+studyUID, nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 204 {
		t.Fatalf("DELETE via B: %d", res.StatusCode)
	}
	if code, _ := a.get(t, "/dicom-web/studies/"+studyUID+"/metadata"); code != 404 {
		t.Fatalf("metadata via A after DELETE via B: %d, want 404", code)
	}
}

// sopUIDOf finds the SOP Instance UID of a stored corpus file by its
// position in the CT series (QIDO by InstanceNumber would need the file's
// number; the manifest is simpler).
func sopUIDOf(t *testing.T, s *server, file string) string {
	t.Helper()
	m, err := os.ReadFile("../../testdata/dicom/MANIFEST.tsv")
	if err != nil {
		t.Fatal(err)
	}
	rel := strings.TrimPrefix(filepath.ToSlash(file), "../../testdata/dicom/")
	for _, line := range strings.Split(string(m), "\n") {
		f := strings.Split(line, "\t")
		if len(f) > 14 && f[0] == rel {
			return f[14]
		}
	}
	t.Fatalf("%s not in MANIFEST.tsv", rel)
	return ""
}

// versitygw is a private S3 server a test can stop and restart.
type versitygw struct {
	bin, dir, addr string
	cmd            *exec.Cmd
}

func startVersitygw(t *testing.T) *versitygw {
	t.Helper()
	bin := os.Getenv("PACS_TEST_VERSITYGW")
	if bin == "" {
		testenv.Missing(t, `PACS_TEST_VERSITYGW not set; eval "$(scripts/s3.sh start)" prints it`)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	g := &versitygw{bin: bin, dir: t.TempDir(), addr: addr}
	if err := os.MkdirAll(filepath.Join(g.dir, "pacs"), 0o750); err != nil { // the posix backend: a folder is a bucket
		t.Fatal(err)
	}
	g.start(t)
	t.Cleanup(func() { g.kill() })
	return g
}

func (g *versitygw) start(t *testing.T) {
	t.Helper()
	g.cmd = exec.Command(g.bin, "--port", g.addr, "--region", "us-east-1", "--health", "/health", "--keep-alive", "--quiet", "posix", g.dir)
	g.cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+os.Getenv("AWS_ACCESS_KEY_ID"), "ROOT_SECRET_KEY="+os.Getenv("AWS_SECRET_ACCESS_KEY"))
	if err := g.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		res, err := http.Get("http://" + g.addr + "/health")
		if err == nil {
			res.Body.Close()
			return
		}
		if i > 200 {
			t.Fatalf("versitygw not ready: %v", err)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func (g *versitygw) kill() {
	if g.cmd != nil && g.cmd.Process != nil {
		_ = g.cmd.Process.Kill()
		_ = g.cmd.Wait()
		g.cmd = nil
	}
}

// TestS3Fault stops the S3 server in the middle of a streamed STOW: the
// response reports what stored and what failed, /readyz says the store
// is down, and after a restart the index and the bucket agree.
func TestS3Fault(t *testing.T) {
	g := startVersitygw(t)
	blob := "s3://pacs/fault?endpoint=http://" + g.addr + "&path_style=true&region=us-east-1&max_attempts=2"
	data := t.TempDir()
	srv := startServer(t, nil, "--blob", blob, "--data", data)

	files := append(corpus(t, "study/s02_ct/*.dcm"), corpus(t, "study/s03_pt/*.dcm")...)
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	resc := make(chan *http.Response, 1)
	errc := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(context.Background(), "POST", srv.base+"/dicom-web/studies", pr)
		req.Header.Set("Content-Type", `multipart/related; type="application/dicom"; boundary=`+mw.Boundary())
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			errc <- err
			return
		}
		resc <- res
	}()
	half := len(files) / 2
	for i, f := range files {
		if i == half {
			time.Sleep(time.Second) // let the server store the first half
			g.kill()
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		w, _ := mw.CreatePart(map[string][]string{"Content-Type": {"application/dicom"}})
		if _, err := w.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	mw.Close()
	pw.Close()
	var res *http.Response
	select {
	case res = <-resc:
	case err := <-errc:
		t.Fatal(err)
	case <-time.After(2 * time.Minute):
		t.Fatal("STOW did not answer")
	}
	var resp map[string]any
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if err := json.Unmarshal(b, &resp); err != nil {
		t.Fatalf("STOW %d: %s", res.StatusCode, b)
	}
	stored, failed := seqLen(resp, "00081199"), seqLen(resp, "00081198")
	t.Logf("STOW with the store stopped half-way: status %d, %d stored, %d failed", res.StatusCode, stored, failed)
	if stored+failed != len(files) || failed == 0 || stored == 0 || res.StatusCode != 202 {
		t.Fatalf("want 202 with some stored and some failed: %d, %d stored, %d failed: %s", res.StatusCode, stored, failed, b)
	}
	for _, it := range resp["00081198"].(map[string]any)["Value"].([]any) {
		reason := it.(map[string]any)["00081197"].(map[string]any)["Value"].([]any)[0].(float64)
		if reason != 0x0110 {
			t.Errorf("failure reason %#x, want 0x0110 (processing failure)", int(reason))
		}
	}
	if code, body := srv.get(t, "/readyz"); code != 503 {
		t.Errorf("/readyz with the store down: %d %s", code, body)
	}

	g.start(t)
	if code, body := srv.get(t, "/readyz"); code != 200 {
		t.Errorf("/readyz after restart: %d %s", code, body)
	}
	// Every indexed instance has its object, byte-identical; nothing failed
	// was indexed.
	code, body := srv.get(t, "/dicom-web/instances?limit=1000")
	var rows []map[string]map[string]any
	if code != 200 || json.Unmarshal(body, &rows) != nil {
		t.Fatalf("QIDO instances: %d %s", code, body)
	}
	if len(rows) != stored {
		t.Fatalf("index holds %d instances, STOW reported %d stored", len(rows), stored)
	}
	sums := map[string]bool{}
	for _, f := range files {
		b, _ := os.ReadFile(f)
		s := sha256.Sum256(b)
		sums[hex.EncodeToString(s[:])] = true
	}
	for _, r := range rows {
		url := r["00081190"]["Value"].([]any)[0].(string)
		code, got := srv.get(t, strings.TrimPrefix(url, srv.base), "Accept", "application/dicom; transfer-syntax=*")
		s := sha256.Sum256(got)
		if code != 200 || !sums[hex.EncodeToString(s[:])] {
			t.Errorf("%s: %d, %d bytes, not one of the sent files", url, code, len(got))
		}
	}
	srv.stop(t)
	code2, out, errOut := runTool(t, []string{"PACS_BLOB=" + blob}, "verify", "--data", data)
	if code2 != 0 {
		t.Errorf("pacs verify after the fault: exit %d\n%s%s", code2, out, errOut)
	}
}

// TestMigrate applies the schema alone, on SQLite and on PostgreSQL, twice
// (the second run finds nothing to do), and a server then starts on it.
func TestMigrate(t *testing.T) {
	data := t.TempDir()
	for _, index := range []string{"sqlite://" + filepath.Join(data, "index.db"), testenv.PostgresDSN(t)} {
		for range 2 {
			code, out, errOut := runTool(t, nil, "migrate", "--data", data, "--index", index)
			if code != 0 || !strings.Contains(out, "up to date") {
				t.Fatalf("migrate %s: exit %d\n%s%s", strings.SplitN(index, ":", 2)[0], code, out, errOut)
			}
		}
		srv := startServer(t, nil, "--data", data, "--index", index)
		if code, body := srv.get(t, "/dicom-web/studies"); code != 200 || string(body) != "[]" {
			t.Fatalf("QIDO on a migrated, empty index: %d %s", code, body)
		}
		srv.stop(t)
	}
}
