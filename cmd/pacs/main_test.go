package main

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
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
	data := filepath.Join(t.TempDir(), "data")
	// A temporary file a crashed upload left behind: serve sweeps it at startup.
	staleTmp := filepath.Join(data, "blobs", "instances", "00", "00", ".tmp-1.partial")
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
	srv := startServer(t, []string{"PACS_ALLOWED_ORIGINS=*"}, "--data", data)
	if _, err := os.Stat(staleTmp); !os.IsNotExist(err) {
		t.Errorf("stale temporary blob file not swept at startup: %v", err)
	}
	if code, b := srv.get(t, "/healthz"); code != 200 || string(b) != "ok" {
		t.Fatalf("healthz %d %s", code, b)
	}
	files := append(corpus(t, "study/s02_ct/*.dcm"), corpus(t, "study/s03_pt/*.dcm")...)
	files = append(files, corpus(t, "study/s100_sr/*.dcm")...)
	if code, resp := srv.stow(t, files...); code != 200 || len(files) != 20 || seqLen(resp, "00081199") != 20 {
		t.Fatalf("STOW: %d (%d files) %v", code, len(files), resp)
	}
	code, b := srv.get(t, "/dicom-web/studies?PatientName=DOE*&StudyDate=20240101-20241231")
	if code != 200 || !strings.Contains(string(b), studyUID) {
		t.Fatalf("QIDO: %d %s", code, b)
	}
	code, b = srv.get(t, "/dicom-web/studies/"+studyUID+"/metadata", "Accept", "application/dicom+json")
	var md []any
	if code != 200 || json.Unmarshal(b, &md) != nil || len(md) != 20 {
		t.Fatalf("metadata: %d, %d instances", code, len(md))
	}
	code, b = srv.get(t, "/dicom-web/studies/"+studyUID, "Accept", `multipart/related; type="application/dicom"`)
	if code != 200 || bytes.Count(b, []byte("Content-Type: application/dicom")) != 20 {
		t.Fatalf("WADO study: %d", code)
	}
	srv.stop(t)
	logs := srv.logText()
	if strings.Contains(logs, "DOE") {
		t.Error("patient name in the logs")
	}
	if !strings.Contains(logs, `"msg":"stopped"`) {
		t.Errorf("no clean stop in logs:\n%s", logs)
	}
}
