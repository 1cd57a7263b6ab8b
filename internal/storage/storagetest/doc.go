// Package storagetest holds the conformance suites every BlobStore and
// Index backend runs from its own tests:
//
//	func TestConformance(t *testing.T) {
//		storagetest.TestBlobStore(t, func(t *testing.T) storage.BlobStore { return memblob.New() })
//	}
//
// Each subtest gets a fresh, empty backend from the constructor.
package storagetest
