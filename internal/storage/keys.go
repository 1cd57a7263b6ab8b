package storage

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
)

// InstancePrefix is the key prefix of every stored instance object.
const InstancePrefix = "instances/"

// newInstanceKey returns a fresh random instance key with a two-level
// fan-out: "instances/ab/cd/<32 hex>.dcm". Keys never carry UIDs, which
// can hold patient data.
func newInstanceKey() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	h := hex.EncodeToString(b[:])
	return InstancePrefix + h[0:2] + "/" + h[2:4] + "/" + h + ".dcm"
}

// CheckKey reports whether key is acceptable to every BlobStore: a
// relative, slash-separated path without empty, "." or ".." segments,
// without backslashes or NUL bytes. Errors wrap ErrInvalidKey.
func CheckKey(key string) error {
	if key == "" || strings.HasPrefix(key, "/") || strings.ContainsAny(key, "\\\x00") {
		return fmt.Errorf("%w: %q", ErrInvalidKey, key)
	}
	for seg := range strings.SplitSeq(key, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("%w: %q", ErrInvalidKey, key)
		}
	}
	if len(key) >= 2 && key[1] == ':' { // Windows drive letter: absolute
		return fmt.Errorf("%w: %q", ErrInvalidKey, key)
	}
	return nil
}
