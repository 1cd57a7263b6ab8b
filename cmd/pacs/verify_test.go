package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The summary of an intact archive counts every instance and byte.
func TestVerify_summary(t *testing.T) {
	data := t.TempDir()
	insts := populate(t, data, "images/ct_small_signed_no_window.dcm", "images/mr_small_signed_window.dcm", "reports/sr_basic_text_utf8.dcm")
	var size int64
	for _, in := range insts {
		size += in.Size
	}
	code, out, errOut := runTool(t, nil, "verify", "--data", data)
	if code != 0 {
		t.Fatalf("verify of intact data: exit %d\n%s%s", code, out, errOut)
	}
	want := fmt.Sprintf("verify: 3 instances checked, %d bytes (", size)
	if !strings.Contains(out, want) || !strings.Contains(out, ": 0 damaged, 0 missing, 0 unreadable\n") {
		t.Errorf("summary: want %q… 0 damaged, 0 missing, 0 unreadable; got:\n%s", want, out)
	}
	if errOut != "" { // not a terminal: no progress line
		t.Errorf("stderr of a run without a terminal: %q", errOut)
	}
}

// A damaged and a missing blob: one line each naming the instance, a
// summary that counts them (the missing blob's bytes are not read), and
// exit status 1.
func TestVerify_summaryCountsDamagedAndMissing(t *testing.T) {
	data := t.TempDir()
	insts := populate(t, data, "images/ct_small_signed_no_window.dcm", "images/mr_small_signed_window.dcm", "reports/sr_basic_text_utf8.dcm")
	damaged, missing := insts[1], insts[2]
	p := filepath.Join(data, "blobs", filepath.FromSlash(damaged.BlobKey))
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b = b[:len(b)-1] // truncated: the size differs too
	if err := os.WriteFile(p, b, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(data, "blobs", filepath.FromSlash(missing.BlobKey))); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runTool(t, nil, "verify", "--data", data)
	if code != 1 {
		t.Fatalf("verify of damaged data: exit %d, want 1\n%s%s", code, out, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("want two problem lines and the summary, got:\n%s", out)
	}
	for _, c := range []struct {
		uid, what string
	}{{damaged.SOPInstanceUID, "checksum mismatch"}, {missing.SOPInstanceUID, "not found"}} {
		found := false
		for _, l := range lines[:2] {
			if strings.HasPrefix(l, c.uid+" ") && strings.Contains(l, c.what) {
				found = true
			}
		}
		if !found {
			t.Errorf("no line names %s with %q:\n%s", c.uid, c.what, out)
		}
	}
	want := fmt.Sprintf("verify: 3 instances checked, %d bytes (", insts[0].Size+damaged.Size-1)
	if !strings.HasPrefix(lines[2], want) || !strings.HasSuffix(lines[2], ": 1 damaged, 1 missing, 0 unreadable") {
		t.Errorf("summary = %q, want %q… 1 damaged, 1 missing, 0 unreadable", lines[2], want)
	}
	if !strings.Contains(errOut, "2 damaged, missing or unreadable") {
		t.Errorf("stderr does not give the reason of the exit status: %q", errOut)
	}
}

func TestNewVerifyBar_onlyOnATerminal(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, w := range []io.Writer{f, &bytes.Buffer{}} {
		if bar := newVerifyBar(w); bar != nil {
			t.Errorf("progress bar on %T", w)
		}
	}
}
