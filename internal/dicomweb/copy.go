package dicomweb

import (
	"io"
	"sync"
)

// copyBufs holds the buffers of the retrieve paths' copies. io.Copy
// allocates 32 KiB for every call whose ends offer no ReadFrom/WriteTo
// (a multipart part and a blob reader do not), which at a few thousand
// frame GETs a second is most of what the collector has to reclaim.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// copyN copies n bytes from r to w through a pooled buffer.
func copyN(w io.Writer, r io.Reader, n int64) (int64, error) {
	written, err := copyAll(w, io.LimitReader(r, n))
	if err == nil && written < n {
		err = io.EOF
	}
	return written, err
}

// copyAll is io.Copy through a pooled buffer.
func copyAll(w io.Writer, r io.Reader) (int64, error) {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	return io.CopyBuffer(w, r, *bp)
}
