package sqliteindex_test

import (
	"path/filepath"
	"testing"

	"github.com/cloudpacs/pacs/internal/storage"
	"github.com/cloudpacs/pacs/internal/storage/sqliteindex"
	"github.com/cloudpacs/pacs/internal/storage/storagetest"
)

func newIndex(t testing.TB) *sqliteindex.Index {
	t.Helper()
	// synchronous(NORMAL): tests do not need power-loss durability.
	x, err := sqliteindex.Open(t.Context(), "file:"+filepath.Join(t.TempDir(), "index.db")+"?_pragma=synchronous(NORMAL)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.Close() })
	return x
}

func TestConformance(t *testing.T) {
	storagetest.TestIndex(t, func(t *testing.T) storage.Index { return newIndex(t) })
}

func TestConformance_memory(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	storagetest.TestIndex(t, func(t *testing.T) storage.Index {
		x, err := sqliteindex.Open(t.Context(), ":memory:")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { x.Close() })
		return x
	})
}

func TestOpen_reopenKeepsData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "index.db")
	x, err := sqliteindex.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	inst := &storage.Instance{StudyInstanceUID: "1.2", SeriesInstanceUID: "1.2.3", SOPInstanceUID: "1.2.3.4", BlobKey: "instances/00/00/x.dcm", SHA256: "00"}
	if _, err := x.PutInstance(t.Context(), inst, false); err != nil {
		t.Fatal(err)
	}
	x.Close()
	x, err = sqliteindex.Open(t.Context(), path) // migrations run again: no-op
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	if _, err := x.Instance(t.Context(), "1.2", "", "1.2.3.4"); err != nil {
		t.Fatal(err)
	}
}
