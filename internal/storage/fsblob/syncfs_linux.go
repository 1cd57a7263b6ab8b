package fsblob

import (
	"os"

	"golang.org/x/sys/unix"
)

// syncfs flushes the whole filesystem that f lives on.
func syncfs(f *os.File) error { return unix.Syncfs(int(f.Fd())) }

const haveSyncfs = true
