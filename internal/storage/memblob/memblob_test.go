package memblob_test

import (
	"testing"

	"github.com/cloudpacs/pacs/internal/storage"
	"github.com/cloudpacs/pacs/internal/storage/memblob"
	"github.com/cloudpacs/pacs/internal/storage/storagetest"
)

func TestConformance(t *testing.T) {
	storagetest.TestBlobStore(t, func(t *testing.T) storage.BlobStore { return memblob.New() })
}
