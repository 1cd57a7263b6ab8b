package main

import (
	"bufio"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// pacsbench static serves the saved bodies with the Content-Type each
// response had.
func TestStaticServesSavedBodies(t *testing.T) {
	dir := t.TempDir()
	path := "/studies/1/series/2/instances/3/frames/1"
	file := filepath.Join(dir, "files", filepath.FromSlash(path))
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		t.Fatal(err)
	}
	body := "--b\r\nContent-Type: application/octet-stream\r\n\r\nxyz\r\n--b--\r\n"
	if err := os.WriteFile(file, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	ct := `multipart/related; type="application/octet-stream"; boundary=b`
	types := filepath.Join(dir, "types.json")
	if err := writeJSON(types, map[string]string{path: ct}); err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	go cmdStatic([]string{"--dir", filepath.Join(dir, "files"), "--types", types}, pw) //nolint:errcheck // serves until the test ends
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	go io.Copy(io.Discard, pr) //nolint:errcheck
	resp, err := http.Get(strings.TrimSpace(line) + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(got) != body || resp.Header.Get("Content-Type") != ct {
		t.Errorf("GET: %d %q %q", resp.StatusCode, resp.Header.Get("Content-Type"), got)
	}
	if err := cmdStatic([]string{"--dir", dir, "--listen", "0.0.0.0:0"}, io.Discard); err == nil {
		t.Error("a listener beyond loopback was accepted")
	}
}

// procCPU reads this process's CPU time, which grows with work.
func TestProcCPU(t *testing.T) {
	before, err := procCPU(os.Getpid())
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	for end := time.Now().Add(50 * time.Millisecond); time.Now().Before(end); {
	}
	after, err := procCPU(os.Getpid())
	if err != nil || after < before || after == 0 {
		t.Errorf("CPU %v then %v (%v)", before, after, err)
	}
}
