// Package reports turns report instances into documents a referring
// physician can read: Structured Reports (the SR SOP classes, PS3.3
// A.35) as self-contained HTML or plain text, and Encapsulated PDF
// (PS3.3 A.45.1) as the PDF bytes.
//
// SRs are rendered from the instance's DICOM JSON metadata (recorded at
// ingest, storage.Instance.Metadata): it holds the whole content tree,
// so no stored object is re-read. The PDF is read from the stored object
// by byte range (a bulk value) or decoded from the metadata (InlineBinary,
// documents under dcm.BulkThreshold bytes).
//
// The package knows nothing about HTTP; internal/dicomweb serves it.
package reports
