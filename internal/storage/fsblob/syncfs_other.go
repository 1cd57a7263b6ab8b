//go:build !linux

package fsblob

import (
	"errors"
	"os"
)

// Without syncfs(2) the store falls back to an fsync of every object and
// folder (haveSyncfs is false, so groupSync is never used).
func syncfs(*os.File) error { return errors.New("syncfs: not on this platform") }

const haveSyncfs = false
