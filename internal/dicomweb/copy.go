package dicomweb

import (
	"bufio"
	"io"
	"net/textproto"
	"strconv"
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

// bodyBufs buffer STOW request bodies (stow.go).
var bodyBufs = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 64<<10) }}

// resBufs buffer multipart responses. Without one, each part's header,
// each 32 KiB copy and each boundary reach the connection as separate
// writes (and chunks): a small instance or frame took four or five
// write calls; behind 64 KiB it is one or two.
var resBufs = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 64<<10) }}

// bufferedResponse puts a pooled 64 KiB buffer in front of w. flush
// writes out what is buffered; release (deferred by the caller, safe
// after flush) returns the buffer to the pool, dropping anything not
// flushed (an aborted response).
func bufferedResponse(w io.Writer) (bw *bufio.Writer, flush func() error, release func()) {
	bw = resBufs.Get().(*bufio.Writer)
	bw.Reset(w)
	done := false
	release = func() {
		if !done {
			done = true
			bw.Reset(nil)
			resBufs.Put(bw)
		}
	}
	return bw, bw.Flush, release
}

// multipartLength is the length of a multipart body with the given
// boundary and part headers, when every part states its Content-Length:
// the framing as mime/multipart writes it ("--boundary" lines, each
// header as "Key: value", blank lines, the closing "--boundary--"),
// counted rather than written, plus the bodies. A response with a length
// is sent as is, not in chunks.
func multipartLength(boundary string, hdrs []textproto.MIMEHeader) (int64, bool) {
	var n int64
	for i, h := range hdrs {
		body, err := strconv.ParseInt(h.Get("Content-Length"), 10, 64)
		if err != nil || body < 0 {
			return 0, false
		}
		if i > 0 {
			n += 2 // the CRLF that ends the previous part
		}
		n += 2 + int64(len(boundary)) + 2 // --boundary CRLF
		for k, vs := range h {
			for _, v := range vs {
				n += int64(len(k)) + 2 + int64(len(v)) + 2 // Key: value CRLF
			}
		}
		n += 2 + body // CRLF, body
	}
	return n + 4 + int64(len(boundary)) + 4, true // CRLF --boundary-- CRLF
}
