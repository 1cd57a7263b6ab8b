//go:build cgo && cgocodecs

package codec

// cgoBuild: the CharLS and OpenJPEG decoders are compiled in.
const cgoBuild = true
