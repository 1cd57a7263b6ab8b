package storage_test

import (
	"context"
	"testing"

	"github.com/cloudpacs/pacs/internal/storage"
)

// countingIndex counts LocateInstance calls that reach the index.
type countingIndex struct {
	storage.Index
	locates int
	row     *storage.Instance
}

func (c *countingIndex) LocateInstance(ctx context.Context, study, series, sop string, withBulk bool) (*storage.Instance, error) {
	c.locates++
	if c.row == nil || c.row.SOPInstanceUID != sop {
		return nil, storage.ErrNotFound
	}
	return c.row, nil
}

func (c *countingIndex) LocateInstances(ctx context.Context, study, series string) ([]*storage.Instance, error) {
	return []*storage.Instance{c.row}, nil
}

func (c *countingIndex) Delete(ctx context.Context, study, series, sop string) ([]string, error) {
	c.row = nil
	return nil, nil
}

// LocationCache answers repeated look-ups from memory, never keeps a
// miss, and forgets what it holds when the archive deletes.
func TestArchive_LocationCache(t *testing.T) {
	ix := &countingIndex{row: &storage.Instance{StudyInstanceUID: "1", SeriesInstanceUID: "1.1", SOPInstanceUID: "1.1.1", SHA256: "aa"}}
	a := &storage.Archive{Blobs: nil, Index: ix, LocationCache: 4, MetadataRebuildDelay: -1}
	ctx := t.Context()
	for range 3 {
		if in, err := a.LocateInstance(ctx, "1", "1.1", "1.1.1", false); err != nil || in.SHA256 != "aa" {
			t.Fatalf("locate: %v %v", in, err)
		}
	}
	if ix.locates != 1 {
		t.Errorf("3 look-ups reached the index %d times, want 1", ix.locates)
	}
	for range 2 {
		if _, err := a.LocateInstance(ctx, "1", "1.1", "9", false); err == nil {
			t.Fatal("unknown instance found")
		}
	}
	if ix.locates != 3 {
		t.Errorf("misses reached the index %d times in all, want 3", ix.locates)
	}
	a.LocateInstance(ctx, "1", "1.1", "1.1.1", true) // with Bulk: never cached
	if ix.locates != 4 {
		t.Errorf("a look-up with Bulk did not reach the index")
	}
	ix.row = &storage.Instance{StudyInstanceUID: "1", SeriesInstanceUID: "1.1", SOPInstanceUID: "1.1.1", SHA256: "bb"}
	if err := a.Delete(ctx, "1", "1.1", "1.1.1"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.LocateInstance(ctx, "1", "1.1", "1.1.1", false); err == nil {
		t.Error("deleted instance still located")
	}
}
