package dicomweb

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"syscall"

	"github.com/labstack/echo/v4"
)

// internalPrefixes start the messages of the storage layer and its
// backends (STYLE: "pkg: op key: cause") and of the SDKs beneath them;
// whatever follows one may name a file path, a bucket, a blob key, a
// host or SQL. The request-level kinds of this package, storage's
// sentinels and dcm's parse errors are worded for clients and come
// without such a prefix.
var internalPrefixes = []string{
	"storage:", "fsblob:", "s3blob:", "memblob:", "pgindex:", "sqliteindex:",
	"operation error ",                             // AWS SDK
	"failed to connect to ", "ERROR: ", "SQLSTATE", // pgx, PostgreSQL
	"SQL logic error", "sqlite", // SQLite
}

// clientMessage is what the body of an error response (4xx) says: the
// words the handlers wrote for the client, built on the request-level
// kinds (badRequestf, notFoundf, errUnsupportedMediaType…), cut where
// the text of a wrapped backend, file system or network error begins
// (internalPrefixes; *fs.PathError, *net.OpError and kin anywhere in the
// chain). When nothing is left, the status's own words ("not found").
// cut reports that something was left out: the log line should keep
// the whole error.
func clientMessage(err error, code int) (msg string, cut bool) {
	var he *echo.HTTPError
	if errors.As(err, &he) {
		return fmt.Sprint(he.Message), false
	}
	full := err.Error()
	end := len(full)
	for _, p := range internalPrefixes {
		if i := indexWord(full, p); i >= 0 && i < end {
			end = i
		}
	}
	walkErrors(err, func(e error) {
		if !systemError(e) {
			return
		}
		if s := e.Error(); s != "" {
			if i := strings.Index(full, s); i >= 0 && i < end {
				end = i
			}
		}
	})
	msg = strings.TrimRight(full[:end], ": ")
	if msg == "" {
		msg = strings.ToLower(http.StatusText(code))
	}
	return msg, end < len(full)
}

// indexWord is the index of the first p in s that starts s or follows a
// space, quote, colon or parenthesis; -1 if none.
func indexWord(s, p string) int {
	for off := 0; ; {
		i := strings.Index(s[off:], p)
		if i < 0 {
			return -1
		}
		i += off
		if i == 0 || strings.IndexByte(" \"':(", s[i-1]) >= 0 {
			return i
		}
		off = i + 1
	}
}

// walkErrors calls fn for err and every error it wraps.
func walkErrors(err error, fn func(error)) {
	if err == nil {
		return
	}
	fn(err)
	switch u := err.(type) {
	case interface{ Unwrap() error }:
		walkErrors(u.Unwrap(), fn)
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			walkErrors(e, fn)
		}
	}
}

// systemError reports errors of the operating system and the network,
// whose text holds paths and addresses.
func systemError(err error) bool {
	switch err.(type) {
	case *fs.PathError, *os.LinkError, *os.SyscallError, *net.OpError, *net.DNSError, *net.AddrError, *url.Error, syscall.Errno:
		return true
	}
	return false
}
