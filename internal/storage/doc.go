// Package storage holds the archive's contracts (BlobStore, Index, the
// Instance row, QIDO queries, sentinel errors) and the Archive, which
// stores, retrieves and deletes instances over any BlobStore + Index.
// Backends live in subpackages and import this one, never the reverse.
//
// Blob key tree (keys are random, never UIDs, which can carry patient
// data):
//
//	instances/
//	  ab/<32 hex>.dcm      one stored Part 10 object, byte-exact as received
//
// Commit order: blob written and committed (durable) first, index row
// second; the row is the commit point. A blob no row references is
// garbage that Archive.Sweep removes.
package storage
