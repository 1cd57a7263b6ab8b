package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudpacs/pacs/internal/storage"
	"github.com/cloudpacs/pacs/internal/storage/fsblob"
	"github.com/cloudpacs/pacs/internal/storage/sqliteindex"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
	binDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// pacsBinary builds the pacs binary once per test run.
func pacsBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "pacs-test-bin-")
		if binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "pacs")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binErr = errors.New("go build: " + err.Error() + "\n" + string(out))
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// populate stores corpus files into the embedded storage under data, as
// `pacs serve --data data` would, and returns the stored instances.
func populate(t *testing.T, data string, files ...string) []storage.Instance {
	t.Helper()
	blobs, err := fsblob.New(filepath.Join(data, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	idx, err := sqliteindex.Open(t.Context(), filepath.Join(data, "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer idx.Close()
	a := &storage.Archive{Blobs: blobs, Index: idx}
	var out []storage.Instance
	for _, f := range files {
		r, err := os.Open(filepath.Join("../../testdata/dicom", f))
		if err != nil {
			t.Fatal(err)
		}
		res, err := a.Store(t.Context(), r, "")
		r.Close()
		if err != nil {
			t.Fatalf("store %s: %v", f, err)
		}
		out = append(out, res.Instance)
	}
	return out
}

// runTool runs the binary and returns its exit code and output.
func runTool(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, pacsBinary(t), args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, stdout.String(), stderr.String()
	case errors.As(err, &ee):
		return ee.ExitCode(), stdout.String(), stderr.String()
	}
	t.Fatalf("%v: %v", args, err)
	return 0, "", ""
}

func TestVerify(t *testing.T) {
	data := t.TempDir()
	insts := populate(t, data, "images/ct_small_signed_no_window.dcm", "images/mr_small_signed_window.dcm", "reports/sr_basic_text_utf8.dcm")
	if code, out, errOut := runTool(t, nil, "verify", "--data", data); code != 0 {
		t.Fatalf("verify of intact data: exit %d\n%s%s", code, out, errOut)
	}
	// Damage one blob (a byte in the middle), remove another; the env
	// variable locates the data like the flag.
	damaged, missing := insts[0], insts[2]
	p := filepath.Join(data, "blobs", filepath.FromSlash(damaged.BlobKey))
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x01
	if err := os.WriteFile(p, b, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(data, "blobs", filepath.FromSlash(missing.BlobKey))); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runTool(t, []string{"PACS_DATA=" + data}, "verify")
	if code != 1 {
		t.Fatalf("verify of damaged data: exit %d, want 1\n%s%s", code, out, errOut)
	}
	for _, in := range []storage.Instance{damaged, missing} {
		if !strings.Contains(out, in.SOPInstanceUID) {
			t.Errorf("verify output does not name %s:\n%s", in.SOPInstanceUID, out)
		}
	}
	if strings.Contains(out, insts[1].SOPInstanceUID) {
		t.Errorf("verify names the intact instance %s:\n%s", insts[1].SOPInstanceUID, out)
	}
	if !strings.Contains(out, "checksum mismatch") || !strings.Contains(out, "not found") {
		t.Errorf("verify output does not say what is wrong:\n%s", out)
	}
}

func TestSweep(t *testing.T) {
	data := t.TempDir()
	insts := populate(t, data, "images/ct_small_signed_no_window.dcm", "images/mr_small_signed_window.dcm")
	blobs := filepath.Join(data, "blobs")
	old := time.Now().Add(-2 * time.Hour)
	// Every file is old: only the index decides what is an orphan.
	for _, in := range insts {
		if err := os.Chtimes(filepath.Join(blobs, filepath.FromSlash(in.BlobKey)), old, old); err != nil {
			t.Fatal(err)
		}
	}
	write := func(rel string, mtime time.Time) string {
		p := filepath.Join(blobs, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("orphan"), 0o640); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
		return p
	}
	orphan := write("instances/ab/cd/abcd0000000000000000000000000000.dcm", old)
	young := write("instances/ab/cd/abcd0000000000000000000000000001.dcm", time.Now())
	staleTmp := write("instances/ab/cd/.tmp-123.partial", old)
	youngTmp := write("instances/ab/cd/.tmp-456.partial", time.Now())

	code, out, errOut := runTool(t, nil, "sweep", "--data", data, "--older-than", "3h")
	if code != 0 || !strings.Contains(out, "removed 0 orphan blob(s) and 0 temporary") {
		t.Fatalf("sweep --older-than 3h: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = runTool(t, nil, "sweep", "--data", data)
	if code != 0 || !strings.Contains(out, "removed 1 orphan blob(s) and 1 temporary") {
		t.Fatalf("sweep: exit %d\n%s%s", code, out, errOut)
	}
	for _, p := range []string{orphan, staleTmp} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s survived the sweep (%v)", p, err)
		}
	}
	for _, p := range []string{young, youngTmp} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("young file %s removed: %v", p, err)
		}
	}
	for _, in := range insts {
		if _, err := os.Stat(filepath.Join(blobs, filepath.FromSlash(in.BlobKey))); err != nil {
			t.Errorf("indexed blob of %s removed: %v", in.SOPInstanceUID, err)
		}
	}
	if code, out, errOut := runTool(t, nil, "verify", "--data", data); code != 0 {
		t.Errorf("verify after sweep: exit %d\n%s%s", code, out, errOut)
	}
	if code, _, errOut := runTool(t, nil, "sweep", "--data", data, "--older-than", "0s"); code == 0 {
		t.Errorf("sweep --older-than 0s accepted: %s", errOut)
	}
}
