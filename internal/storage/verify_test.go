package storage_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cloudpacs/pacs/internal/storage"
	"github.com/cloudpacs/pacs/internal/storage/memblob"
	"github.com/cloudpacs/pacs/internal/storage/sqliteindex"
	"github.com/cloudpacs/pacs/internal/storage/storagetest"
)

// verifyArchive is an archive over memblob and SQLite holding n
// instances (not DICOM: Verify only hashes bytes) of 100+i bytes each,
// put concurrently so that the writer commits them in groups.
func verifyArchive(t *testing.T, n int) (*storage.Archive, []*storage.Instance) {
	t.Helper()
	idx, err := sqliteindex.Open(t.Context(), "file:"+filepath.Join(t.TempDir(), "index.db")+"?_pragma=synchronous(OFF)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { idx.Close() })
	a := &storage.Archive{Blobs: memblob.New(), Index: idx}
	insts := make([]*storage.Instance, n)
	for i := range n {
		in := storagetest.NewTestInstance("7.1", fmt.Sprintf("7.1.%d", i%4), fmt.Sprintf("7.1.%d.%05d", i%4, i))
		body := make([]byte, 100+i)
		for j := range body {
			body[j] = byte(i + j)
		}
		w, err := a.Blobs.Create(t.Context(), in.BlobKey)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(body); err != nil {
			t.Fatal(err)
		}
		if _, err := w.Commit(); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(body)
		in.SHA256, in.Size = hex.EncodeToString(sum[:]), int64(len(body))
		insts[i] = in
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < n; i += 8 {
				if _, err := idx.PutInstance(t.Context(), insts[i], false); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return a, insts
}

func TestArchive_VerifyWith_stats(t *testing.T) {
	a, insts := verifyArchive(t, 10)
	var want storage.VerifyStats
	for _, in := range insts {
		want.Instances++
		want.Bytes += in.Size
	}
	damaged, missing := insts[3], insts[7]
	w, err := a.Blobs.Create(t.Context(), damaged.BlobKey)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(make([]byte, damaged.Size)) // same size, other bytes
	if _, err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := a.Blobs.Delete(t.Context(), missing.BlobKey); err != nil {
		t.Fatal(err)
	}
	want.Bytes -= missing.Size
	want.Damaged, want.Missing = 1, 1

	problems := map[string]error{}
	var progress []int
	got, err := a.VerifyWith(t.Context(), storage.VerifyOptions{
		Problem:  func(in *storage.Instance, err error) error { problems[in.SOPInstanceUID] = err; return nil },
		Progress: func(s storage.VerifyStats) { progress = append(progress, s.Instances) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("stats (-want +got):\n%s", diff)
	}
	if got.Problems() != 2 || len(problems) != 2 || !errors.Is(problems[damaged.SOPInstanceUID], storage.ErrChecksum) ||
		!errors.Is(problems[missing.SOPInstanceUID], storage.ErrNotFound) {
		t.Errorf("problems = %v", problems)
	}
	if len(progress) != 10 || progress[9] != 10 {
		t.Errorf("progress calls = %v, want 1..10", progress)
	}

	stop := errors.New("stop")
	n := 0
	if _, err := a.VerifyWith(t.Context(), storage.VerifyOptions{Problem: func(*storage.Instance, error) error { n++; return stop }}); !errors.Is(err, stop) || n != 1 {
		t.Errorf("VerifyWith with a failing Problem = %v after %d calls; want stop after 1", err, n)
	}
}

// Deleting instances while Verify walks (more than one page of the index)
// neither makes it skip an instance nor reports a deleted one: those
// deleted before the walk reaches them are not checked; none is missing.
func TestArchive_VerifyWith_deletesDuringWalk(t *testing.T) {
	const n = 1300 // two pages
	a, insts := verifyArchive(t, n)
	// insts are in UID order. Delete, at the 500th instance checked, two
	// already checked (an OFFSET walk would skip two) and two ahead, one
	// on each page.
	checkedBefore := []*storage.Instance{insts[10], insts[499]}
	ahead := []*storage.Instance{insts[700], insts[1200]}
	var checked int
	got, err := a.VerifyWith(t.Context(), storage.VerifyOptions{
		Problem: func(in *storage.Instance, err error) error {
			t.Errorf("problem reported for %s: %v", in.SOPInstanceUID, err)
			return nil
		},
		Progress: func(s storage.VerifyStats) {
			checked = s.Instances
			if s.Instances == 500 {
				for _, in := range append(checkedBefore, ahead...) {
					if err := a.Delete(t.Context(), in.StudyInstanceUID, in.SeriesInstanceUID, in.SOPInstanceUID); err != nil {
						t.Fatal(err)
					}
				}
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got.Instances != n-len(ahead) || got.Problems() != 0 || checked != got.Instances {
		t.Errorf("stats = %+v, want %d instances and no problem", got, n-len(ahead))
	}
}

// An instance deleted after its page was listed and before its blob is
// read is not reported missing: the index no longer holds it.
func TestArchive_VerifyWith_deletedAfterListing(t *testing.T) {
	a, insts := verifyArchive(t, 5)
	next := insts[2]
	got, err := a.VerifyWith(t.Context(), storage.VerifyOptions{
		Problem: func(in *storage.Instance, err error) error {
			t.Errorf("problem reported for %s: %v", in.SOPInstanceUID, err)
			return nil
		},
		Progress: func(s storage.VerifyStats) {
			if s.Instances == 2 { // insts[2] is listed, not read yet
				if err := a.Delete(t.Context(), next.StudyInstanceUID, next.SeriesInstanceUID, next.SOPInstanceUID); err != nil {
					t.Fatal(err)
				}
			}
		},
	})
	if err != nil || got.Instances != 4 || got.Problems() != 0 {
		t.Errorf("VerifyWith = %+v, %v; want 4 instances, no problem", got, err)
	}
}
