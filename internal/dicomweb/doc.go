// Package dicomweb serves the DICOMweb API (PS3.18) under /dicom-web with
// echo v4: STOW-RS, QIDO-RS, WADO-RS (instances, metadata, frames, bulk
// data), WADO-URI and DELETE.
//
// Handlers are thin: they parse the request, negotiate the media type,
// call storage.Archive (which reads the stored bytes: instances, frame
// sets, bulk values; and reaches the index) and write the answer. Nothing here parses DICOM except
// through package dcm, and nothing imports a concrete storage backend.
//
// Decisions where PS3.18 leaves room (the conformance notes):
//
//   - STOW-RS: an instance whose Study Instance UID differs from the one
//     in the path (or that is already indexed under another study) fails
//     with Failure Reason 0xA900; a part that is not DICOM or not
//     application/dicom fails with 0xC000; different bytes under a known
//     SOP Instance UID fail with 0x0111 (reject policy); a storage error
//     is 0x0110, the upload limit 0xA700. The same instance sent twice
//     with the same bytes is a plain success (no warning). Status: 200 all
//     stored, 202 some stored and some failed, 409 none stored, 415 when
//     no part was application/dicom, 413 when the first instance already
//     broke the size limit, 503 when every failure was the storage being
//     unavailable, 400 for a malformed or empty multipart body.
//   - QIDO-RS: no match is 200 with an empty array (current PS3.18; 204 is
//     no longer used). What the server does not support is ignored, as
//     PS3.18 8.3 has origin servers do (viewers and proxies add their own
//     parameters, e.g. a cache-busting "_=…"): a parameter that names no
//     attribute, a matching key the index cannot match on at that level
//     (treated like an optional key a C-FIND SCP does not support:
//     universal matching), a sequence path, an unknown includefield value,
//     emptyvaluematching and multiplevaluematching. The answer says so in
//     a Warning header: `299 pacs "The following query parameters are not
//     supported and were ignored: …"`, and for emptyvaluematching=true /
//     multiplevaluematching=true the texts of PS3.18 8.3.4.5 and 8.3.4.6.
//     A malformed value of a supported parameter (a bad date range, limit,
//     offset or fuzzymatching, a UID list that is not UIDs, a matching key
//     given twice) stays 400. fuzzymatching=true makes person-name
//     matching case-insensitive and prefix-based per name component (see
//     storage.Query); it is accepted on every route.
//   - WADO-RS: Accept absent or */* means "any representation", answered
//     with the stored transfer syntax. application/dicom without a
//     transfer-syntax parameter means Explicit VR Little Endian: implicit
//     VR, big endian and deflated objects are converted on the fly;
//     compressed objects get 406 until transcoding lands. Frames of an
//     image media type (image/jpeg …) accept any stored transfer syntax of
//     that media type when no transfer-syntax parameter is given. A frame
//     number past the end, or frames of an instance without pixel data, is
//     404; a malformed frame list is 400.
//   - Stored pixel data that do not decode (attributes that contradict
//     the pixel data, bytes that are not in the transfer syntax they are
//     labelled with: codec.ErrCorrupt) answer 422 Unprocessable Content on
//     every request that must decode them (rendered, thumbnail, WADO-URI
//     images, frames or instances asked for in a representation that is
//     not stored), never 500, with a message naming the problem and the
//     way to the stored bytes (Accept: application/dicom;
//     transfer-syntax=*), which stay retrievable. Not 406: PS3.18 (Table
//     10.4.3-1) keeps 406 for "does not support any of the Acceptable
//     Media Types", which is a capability of the server (a syntax without
//     decoder in this build, still 406); here the server supports the
//     type and this instance's data cannot yield it, for any Accept. Not
//     400 or 404: the request is well formed and the instance exists. 422
//     (RFC 9110 15.5.21: understood, well formed, cannot be processed) is
//     the 4xx that says so; PS3.18 lists common codes per transaction and
//     refers to HTTP for the rest (8.5).
//   - DELETE removes the index rows first (the commit point), then the
//     blobs no row references any more.
package dicomweb
