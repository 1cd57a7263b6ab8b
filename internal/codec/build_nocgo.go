//go:build !cgo || !cgocodecs

package codec

// cgoBuild: built without cgo or without -tags cgocodecs; JPEG-LS, JPEG 2000 and HTJ2K have
// no decoder and give ErrUnsupported naming the syntax.
const cgoBuild = false
