// Package httpserver bounds what one HTTP client can hold of the server
// and labels every exchange, whichever route it takes:
//
//   - Listener counts open connections and marks those beyond a cap
//     (OverCap finds the mark in a request's context), and gives every
//     write to a connection a deadline, moved forward before each write:
//     a response whose reader stopped is cut, one that makes progress is not.
//   - Wrap gives every response an X-Request-ID, fails a request body
//     read that delivers nothing for an idle timeout, and lets a client
//     that is still sending read an early refusal (4xx) by discarding a
//     bounded amount of the unread body first.
//
// It knows nothing of DICOM; cmd/pacs wires it around the echo router.
package httpserver
