package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestParseServeFlags(t *testing.T) {
	env := map[string]string{"PACS_LISTEN": ":9000", "PACS_DATA": "/d", "PACS_ON_CONFLICT": "replace", "PACS_ALLOWED_ORIGINS": "https://a, https://b"}
	cfg, err := parseServeFlags([]string{"--listen", ":9999"}, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != ":9999" || cfg.Blob != "file:///d/blobs" || cfg.Index != "sqlite:///d/index.db" || cfg.OnConflict != "replace" || len(cfg.AllowedOrigins) != 2 {
		t.Fatalf("%+v", cfg)
	}
	for _, args := range [][]string{{"--on-conflict", "merge"}, {"--max-upload", "0"}, {"--public-url", "ftp://x"}, {"extra"}} {
		if _, err := parseServeFlags(args, func(string) string { return "" }, io.Discard); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
	if _, err := openBlobs(t.Context(), "ftp://bucket"); err == nil || !strings.Contains(err.Error(), "unknown scheme") {
		t.Errorf("ftp blob URL: %v", err)
	}
	if _, err := openBlobs(t.Context(), "s3://bucket?nonsense=1"); err == nil {
		t.Errorf("s3 URL with an unknown option: no error")
	}
	if _, err := openIndex(t.Context(), "mysql://x"); err == nil || !strings.Contains(err.Error(), "unknown scheme") {
		t.Errorf("mysql index URL: %v", err)
	}
}

// TestServe runs the real binary: STOW the study folder, QIDO, WADO,
// then SIGTERM and a clean exit.
func TestServe(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "pacs")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	// A temporary file a crashed upload left behind: serve sweeps it at startup.
	staleTmp := filepath.Join(dir, "data", "blobs", "instances", "00", "00", ".tmp-1.partial")
	if err := os.MkdirAll(filepath.Dir(staleTmp), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(staleTmp, []byte("partial"), 0o640); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(staleTmp, old, old); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", "--listen", "127.0.0.1:0", "--data", filepath.Join(dir, "data"))
	cmd.Env = append(os.Environ(), "PACS_ALLOWED_ORIGINS=*")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	addrc := make(chan string, 1)
	var logs bytes.Buffer
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logs.WriteString(sc.Text() + "\n")
			var l struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &l) == nil && l.Msg == "listening" {
				addrc <- l.Addr
			}
		}
	}()
	var base string
	select {
	case a := <-addrc:
		base = "http://" + a
	case <-time.After(30 * time.Second):
		t.Fatal("server did not start")
	}
	get := func(path string, hdr ...string) (int, []byte) {
		req, _ := http.NewRequest("GET", base+path, nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, b
	}
	for i := 0; ; i++ {
		if code, _ := get("/readyz"); code == 200 {
			break
		}
		if i > 100 {
			t.Fatal("never ready")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := os.Stat(staleTmp); !os.IsNotExist(err) {
		t.Errorf("stale temporary blob file not swept at startup: %v", err)
	}
	if code, b := get("/healthz"); code != 200 || string(b) != "ok" {
		t.Fatalf("healthz %d %s", code, b)
	}

	// STOW the study folder.
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	var n int
	for _, sub := range []string{"s02_ct", "s03_pt", "s100_sr"} {
		files, _ := filepath.Glob(filepath.Join("../../testdata/dicom/study", sub, "*.dcm"))
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			w, _ := mw.CreatePart(map[string][]string{"Content-Type": {"application/dicom"}})
			w.Write(b)
			n++
		}
	}
	mw.Close()
	res, err := http.Post(base+"/dicom-web/studies", `multipart/related; type="application/dicom"; boundary=`+mw.Boundary(), &body)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 || n != 20 {
		t.Fatalf("STOW: %d (%d files)", res.StatusCode, n)
	}
	study := "2.25.282492203790397027926792421891334355820"
	code, b := get("/dicom-web/studies?PatientName=DOE*&StudyDate=20240101-20241231")
	if code != 200 || !strings.Contains(string(b), study) {
		t.Fatalf("QIDO: %d %s", code, b)
	}
	code, b = get("/dicom-web/studies/"+study+"/metadata", "Accept", "application/dicom+json")
	var md []any
	if code != 200 || json.Unmarshal(b, &md) != nil || len(md) != 20 {
		t.Fatalf("metadata: %d, %d instances", code, len(md))
	}
	code, b = get("/dicom-web/studies/"+study, "Accept", `multipart/related; type="application/dicom"`)
	if code != 200 || bytes.Count(b, []byte("Content-Type: application/dicom")) != 20 {
		t.Fatalf("WADO study: %d", code)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-done
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit: %v\n%s", err, logs.String())
	}
	if strings.Contains(logs.String(), "DOE") {
		t.Error("patient name in the logs")
	}
	if !strings.Contains(logs.String(), `"msg":"stopped"`) {
		t.Errorf("no clean stop in logs:\n%s", logs.String())
	}
}
