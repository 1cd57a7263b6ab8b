package httpserver

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"
)

// HeaderRequestID names the request ID header, on requests (a caller's
// or a proxy's ID, kept when well formed) and on every response.
const HeaderRequestID = "X-Request-ID"

// maxRequestIDLen bounds a propagated request ID; longer ones are
// replaced. 128 fits a UUID, a W3C trace ID and most proxies' formats.
const maxRequestIDLen = 128

// An early refusal (a response of status >= 400 sent while the request
// body is still arriving) first discards up to drainBytes of the body,
// for at most drainWait; a body longer or slower than that is left
// unread and the connection closes after the answer.
const (
	drainBytes = 1 << 20
	drainWait  = 5 * time.Second
)

// Wrap puts next behind the per-request bounds:
//
//   - the response carries X-Request-ID: the request's own when it is
//     at most 128 characters of letters, digits and -_.:+/=, else a new
//     random one; loggers read it back from the response header
//     (RequestID);
//   - a read of the request body that delivers no byte for uploadIdle
//     fails (the read deadline moves forward before each read), which
//     ends the request and closes the connection; UploadStalled reports
//     it afterwards. uploadIdle <= 0: no limit;
//   - a response of status >= 400 written before the body was read to
//     its end first discards up to 1 MiB of the rest (for at most 5 s),
//     so that a client still sending reads the answer, not a reset;
//     when more is left, the answer says Connection: close.
//
// Requests without a body pass through untouched but for the header.
func Wrap(next http.Handler, uploadIdle time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(HeaderRequestID)
		if !validRequestID(id) {
			id = newRequestID()
		}
		w.Header().Set(HeaderRequestID, id)
		if r.Body == nil || r.Body == http.NoBody {
			next.ServeHTTP(w, r)
			return
		}
		b := &body{rc: r.Body, ctl: http.NewResponseController(w), idle: uploadIdle}
		r = r.WithContext(context.WithValue(r.Context(), bodyKey{}, b)) // a copy: the server keeps its own r.Body
		r.Body = b
		next.ServeHTTP(&drainWriter{ResponseWriter: w, b: b}, r)
	})
}

// RequestID is the ID Wrap gave the response whose header is h.
func RequestID(h http.Header) string { return h.Get(HeaderRequestID) }

// UploadStalled reports whether the body of the request of ctx was cut
// by the idle timeout of Wrap.
func UploadStalled(ctx context.Context) bool {
	b, _ := ctx.Value(bodyKey{}).(*body)
	return b != nil && b.stalled.Load()
}

func validRequestID(s string) bool {
	if s == "" || len(s) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-_.:+/=", c) >= 0) {
			return false
		}
	}
	return true
}

func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand since Go 1.24)
	return hex.EncodeToString(b[:])
}

type bodyKey struct{}

// body is a request body whose reads have an idle deadline.
type body struct {
	rc   io.ReadCloser // the server's body
	ctl  *http.ResponseController
	idle time.Duration

	eof     atomic.Bool // read to the end
	failed  atomic.Bool // a read failed: what is left on the wire is unknown
	stalled atomic.Bool // ... because no byte came for idle
}

func (b *body) Read(p []byte) (int, error) {
	if b.idle > 0 && !b.eof.Load() {
		_ = b.ctl.SetReadDeadline(time.Now().Add(b.idle))
	}
	n, err := b.rc.Read(p)
	switch {
	case err == io.EOF:
		b.sawEOF()
	case err != nil:
		b.failed.Store(true)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			b.stalled.Store(true)
		}
	}
	return n, err
}

func (b *body) Close() error { return b.rc.Close() }

// sawEOF clears the read deadline once the body is read: the server
// reads on in the background (to notice a hang-up) while the handler
// answers, and a deadline passing then would cancel the request.
func (b *body) sawEOF() {
	if !b.eof.Swap(true) && b.idle > 0 {
		_ = b.ctl.SetReadDeadline(time.Time{})
	}
}

// drain discards what is left of the body, within drainBytes and
// drainWait; when something may be left, it asks for Connection: close
// in h.
func (b *body) drain(h http.Header) {
	if b.eof.Load() {
		return
	}
	if b.failed.Load() {
		h.Set("Connection", "close")
		return
	}
	_ = b.ctl.SetReadDeadline(time.Now().Add(drainWait))
	_, err := io.CopyN(io.Discard, b.rc, drainBytes+1) // the server's body: no idle extension
	if err == io.EOF {
		b.eof.Store(true)
		_ = b.ctl.SetReadDeadline(time.Time{})
		return
	}
	h.Set("Connection", "close")
}

// drainWriter drains the request body before an error status goes out.
type drainWriter struct {
	http.ResponseWriter
	b       *body
	started bool
}

func (w *drainWriter) WriteHeader(code int) {
	if !w.started && code >= 200 { // 1xx are interim
		w.started = true
		if code >= 400 {
			w.b.drain(w.Header())
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *drainWriter) Write(p []byte) (int, error) {
	w.started = true
	return w.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController (echo's Flush) reach the server's
// writer.
func (w *drainWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
