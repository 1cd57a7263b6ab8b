package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/cloudpacs/pacs/internal/dicomweb"
	"github.com/cloudpacs/pacs/internal/httpserver"
	"github.com/cloudpacs/pacs/internal/storage"
	"github.com/cloudpacs/pacs/internal/storage/memblob"
	"github.com/cloudpacs/pacs/internal/storage/sqliteindex"
)

// failingBlobs is a blob store whose Open fails with a chosen error once
// one is set.
type failingBlobs struct {
	storage.BlobStore
	err atomic.Pointer[error]
}

func (b *failingBlobs) Open(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	if err := b.err.Load(); err != nil {
		return nil, *err
	}
	return b.BlobStore.Open(ctx, key, off, n)
}

// lockedBuffer is a log sink written by several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// lines are the JSON log lines that carry request_id id.
func (l *lockedBuffer) lines(id string) []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for line := range strings.SplitSeq(l.b.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["request_id"] == id {
			out = append(out, m)
		}
	}
	return out
}

// Error bodies say what went wrong in the client's terms and carry the
// request ID; the detail of a storage error (a file path, a bucket, SQL)
// stays in the log, under the same ID as the request line. The server is
// the one serve builds (newEcho, httpserver.Wrap, the DICOMweb handlers)
// over a blob store that fails as a real backend does.
func TestErrorBodies_noInternals(t *testing.T) {
	logs := &lockedBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, nil))
	blobs := &failingBlobs{BlobStore: memblob.New()}
	index, err := sqliteindex.Open(t.Context(), filepath.Join(t.TempDir(), "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { index.Close() })
	archive := &storage.Archive{Blobs: blobs, Index: index, Logger: log}
	e := newEcho(log, nil)
	dw := dicomweb.New(dicomweb.Config{Archive: archive, Logger: log})
	dw.Register(e)
	srv := httptest.NewServer(httpserver.Wrap(e, 0))
	t.Cleanup(func() {
		srv.Close()
		dw.Close()
	})
	body, ctype := stowBody(t, corpus(t, "study/s02_ct/*.dcm")[0])
	res, err := http.Post(srv.URL+"/dicom-web/studies", ctype, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("STOW: %d", res.StatusCode)
	}

	const (
		path   = "/srv/pacs/blobs/instances/ab/cd/0f3a9c.dcm"
		bucket = "st-mary-archive"
		sql    = "SELECT blob_key FROM instances"
	)
	retrieve := "/dicom-web/studies/" + studyUID
	for _, c := range []struct {
		name      string
		blobErr   error
		path      string
		sentID    string
		status    int
		msg       string // in the body
		detailLog string // the log line with the detail
	}{
		{
			name:      "not found in a backend",
			blobErr:   fmt.Errorf("s3blob: get %q in bucket %q: %w", path, bucket, storage.ErrNotFound),
			path:      retrieve,
			status:    404,
			msg:       "not found",
			detailLog: "request refused",
		},
		{
			name:      "backend failure",
			blobErr:   fmt.Errorf("pgindex: %s WHERE sop = $1: %w", sql, &fs.PathError{Op: "open", Path: path, Err: syscall.EACCES}),
			path:      retrieve,
			sentID:    "support-ticket-4711",
			status:    500,
			msg:       "internal error",
			detailLog: "internal error",
		},
		{
			name:   "the client's mistake, in words",
			path:   "/dicom-web/studies/not-a-uid",
			sentID: "has spaces, not kept",
			status: 400,
			msg:    "malformed study UID in the path",
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.blobErr != nil {
				blobs.err.Store(&c.blobErr)
				defer blobs.err.Store(nil)
			}
			req, _ := http.NewRequest("GET", srv.URL+c.path, nil)
			req.Header.Set("Accept", `multipart/related; type="application/dicom"`)
			if c.sentID != "" {
				req.Header.Set("X-Request-ID", c.sentID)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			id := res.Header.Get("X-Request-ID")
			var got struct {
				Error     string `json:"error"`
				RequestID string `json:"request_id"`
			}
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatalf("%d %s: %v", res.StatusCode, b, err)
			}
			if res.StatusCode != c.status || !strings.Contains(got.Error, c.msg) {
				t.Errorf("%d %s; want %d saying %q", res.StatusCode, b, c.status, c.msg)
			}
			for _, leak := range []string{path, bucket, sql, "s3blob", "pgindex", "storage:", "permission denied", "instances/"} {
				if strings.Contains(string(b), leak) {
					t.Errorf("body names %q: %s", leak, b)
				}
			}
			switch {
			case id == "" || got.RequestID != id:
				t.Errorf("X-Request-ID %q, body's request_id %q: want the same, not empty", id, got.RequestID)
			case c.sentID == "support-ticket-4711" && id != c.sentID:
				t.Errorf("X-Request-ID %q, want the client's %q", id, c.sentID)
			case strings.Contains(id, " "):
				t.Errorf("malformed X-Request-ID kept: %q", id)
			}
			// The request line and the detail line carry the ID.
			var request, detail bool
			for _, l := range logs.lines(id) {
				switch {
				case l["msg"] == "request" && l["status"] == float64(c.status):
					request = true
				case c.detailLog != "" && l["msg"] == c.detailLog && strings.Contains(fmt.Sprint(l["err"]), path):
					detail = true
				}
			}
			if !request || (c.detailLog != "" && !detail) {
				t.Errorf("log lines under request_id %q: request line %v, %q line with the detail %v\n%s", id, request, c.detailLog, detail, logs.b.String())
			}
		})
	}
}
