package dicomweb

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cloudpacs/pacs/internal/storage"
	"github.com/cloudpacs/pacs/internal/storage/memblob"
	"github.com/cloudpacs/pacs/internal/storage/sqliteindex"
	"github.com/cloudpacs/pacs/internal/testenv"
)

// testBackends picks the storage the black-box suite runs on.
// PACS_TEST_DICOMWEB_BACKENDS is a comma-separated list: "s3" puts blobs
// on the S3 test server, "postgres" the index on the PostgreSQL test
// server; empty means memblob + SQLite. `make test` runs the suite both
// ways, so every DICOMweb test also proves the scale-out backends.
func testBackends(t testing.TB) (storage.BlobStore, storage.Index) {
	t.Helper()
	want := map[string]bool{}
	for _, b := range strings.Split(os.Getenv("PACS_TEST_DICOMWEB_BACKENDS"), ",") {
		if b = strings.TrimSpace(b); b != "" {
			want[b] = true
		}
	}
	var blobs storage.BlobStore = memblob.New()
	if want["s3"] {
		blobs = testenv.S3Store(t)
	}
	var idx storage.Index
	if want["postgres"] {
		idx = testenv.PostgresIndex(t)
	} else {
		sq, err := sqliteindex.Open(t.Context(), filepath.Join(t.TempDir(), "index.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { sq.Close() })
		idx = sq
	}
	return blobs, idx
}
