package dicomweb

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// abortResponse ends a response that failed after its status line and
// headers were sent, such as a multipart retrieve whose next instance was
// deleted (or whose store failed) while the parts before it streamed.
// An error status is no longer possible, and returning would let net/http
// end the body properly: a chunked body would get its last chunk and
// look complete to every client that does not parse the multipart
// framing. So it logs err and panics with http.ErrAbortHandler, which
// net/http (and echo's Recover, which re-panics it) answers by closing
// the connection (HTTP/2: resetting the stream) on the spot: a declared
// Content-Length is not reached, a chunked body has no last chunk, and
// any HTTP client reports a truncated response (Go's: io.ErrUnexpectedEOF)
// instead of a short but well-formed one. docs/dicomweb.md says so.
//
// flush, when not nil, first sends what the response buffered, so that
// the parts before the failure reach the client whole.
func (h *Handler) abortResponse(c echo.Context, flush func() error, err error) {
	if flush != nil {
		_ = flush()
	}
	req := c.Request()
	if req.Context().Err() != nil {
		h.log.Info("client closed request", "method", req.Method, "path", req.URL.Path, "status", StatusClientClosedRequest)
	} else {
		h.log.Error("response failed after the first byte; connection closed", "method", req.Method, "path", req.URL.Path, "err", err)
	}
	panic(http.ErrAbortHandler)
}
