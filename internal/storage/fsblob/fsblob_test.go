package fsblob_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cloudpacs/pacs/internal/storage"
	"github.com/cloudpacs/pacs/internal/storage/fsblob"
	"github.com/cloudpacs/pacs/internal/storage/storagetest"
)

func newStore(t *testing.T) *fsblob.Store {
	t.Helper()
	s, err := fsblob.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storagetest.TestBlobStore(t, func(t *testing.T) storage.BlobStore { return newStore(t) })
}

func TestStore_invalidKeys(t *testing.T) {
	s := newStore(t)
	for _, key := range []string{"", "/etc/passwd", "../x", "instances/../../x", `instances\ab`, "a//b", "a/./b", "instances/ab/.tmp-1.partial"} {
		if _, err := s.Create(t.Context(), key); !errors.Is(err, storage.ErrInvalidKey) {
			t.Errorf("Create(%q) error = %v, want ErrInvalidKey", key, err)
		}
		if _, err := s.Open(t.Context(), key, 0, -1); !errors.Is(err, storage.ErrInvalidKey) {
			t.Errorf("Open(%q) error = %v, want ErrInvalidKey", key, err)
		}
	}
}

func TestStore_tempFilesHiddenAndSwept(t *testing.T) {
	s := newStore(t)
	w, err := s.Create(t.Context(), "instances/ab/cd/x.dcm")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("half")); err != nil {
		t.Fatal(err)
	}
	// Never committed nor aborted: a crash.
	n := 0
	if err := s.List(t.Context(), "", func(storage.BlobInfo) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("List saw %d entries, want 0 (temp files hidden)", n)
	}
	if got, err := s.Sweep(t.Context(), time.Hour); err != nil || got != 0 {
		t.Fatalf("Sweep(1h) = %d, %v; want 0 (file is fresh)", got, err)
	}
	tmps, _ := filepath.Glob(filepath.Join(s.Root(), "instances", "ab", "cd", ".tmp-*"))
	if len(tmps) != 1 {
		t.Fatalf("temp files = %v, want 1", tmps)
	}
	old := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(tmps[0], old, old); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Sweep(t.Context(), time.Hour); err != nil || got != 1 {
		t.Fatalf("Sweep(1h) = %d, %v; want 1", got, err)
	}
	if err := w.Abort(); err != nil { // file already gone: still fine
		t.Fatalf("Abort after sweep: %v", err)
	}
}
