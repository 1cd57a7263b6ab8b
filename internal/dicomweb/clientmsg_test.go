package dicomweb

import (
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/cloudpacs/pacs/internal/dcm"
	"github.com/cloudpacs/pacs/internal/storage"
)

func TestClientMessage(t *testing.T) {
	pathErr := &fs.PathError{Op: "open", Path: "/srv/pacs/blobs/instances/ab/cd/k.dcm", Err: syscall.ENOENT}
	netErr := &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
	for _, c := range []struct {
		name string
		err  error
		want string
		cut  bool
	}{
		{"request-level", badRequestf("malformed %s UID in the path", "study"), "bad request: malformed study UID in the path", false},
		{"not found, ours", notFoundf("frame %d does not exist", 3), "not found: frame 3 does not exist", false},
		{"media type", fmt.Errorf("%w: %q; want application/dicom", errUnsupportedMediaType, "text/plain"), `unsupported media type: "text/plain"; want application/dicom`, false},
		{"storage sentinel, worded for clients", fmt.Errorf("%w: %w", errBadRequest, fmt.Errorf("%w: Modality at study level", storage.ErrUnsupportedMatch)), "bad request: unsupported matching key: Modality at study level", false},
		{"dcm parse error", fmt.Errorf("%w: truncated element", dcm.ErrInvalid), dcm.ErrInvalid.Error() + ": truncated element", false},
		{"backend not found", fmt.Errorf("storage: open instance 1.2.3: %w", fmt.Errorf("fsblob: open %q: %w", "instances/ab/cd/k.dcm", storage.ErrNotFound)), "not found", true},
		{"backend error behind a request kind", fmt.Errorf("%w: %w", errBadRequest, fmt.Errorf("sqliteindex: search: %w: level 9", storage.ErrBadQuery)), "bad request", true},
		{"backend text embedded with %v", notAcceptablef("cannot decode this instance: %v", fmt.Errorf("codec: read: s3blob: get %q: timeout", "bucket/key")), "not acceptable: cannot decode this instance: codec: read", true},
		{"file system error in the chain", fmt.Errorf("%w: reading frames: %w", dcm.ErrInvalid, pathErr), dcm.ErrInvalid.Error() + ": reading frames", true},
		{"network error in the chain", fmt.Errorf("%w: malformed multipart body: %w", errBadRequest, netErr), "bad request: malformed multipart body", true},
		{"echo's own", echo.NewHTTPError(http.StatusMethodNotAllowed, "Method Not Allowed"), "Method Not Allowed", false},
		{"a word that only looks like a prefix", badRequestf("attribute %q is unknown", "objectstorage:x"), `bad request: attribute "objectstorage:x" is unknown`, false},
	} {
		msg, cut := clientMessage(c.err, statusOf(c.err))
		if msg != c.want || cut != c.cut {
			t.Errorf("%s: clientMessage(%q) = %q, cut %v; want %q, cut %v", c.name, c.err, msg, cut, c.want, c.cut)
		}
		for _, leak := range []string{"/srv/pacs", "instances/ab", "bucket/key", "fsblob", "s3blob", "sqliteindex", "connection reset"} {
			if strings.Contains(msg, leak) {
				t.Errorf("%s: message %q names %q", c.name, msg, leak)
			}
		}
	}
}
