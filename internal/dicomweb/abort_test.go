package dicomweb

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/cloudpacs/pacs/internal/storage"
)

// gatedBlobs holds the first Open of one key until the test releases it,
// telling the test when it got there.
type gatedBlobs struct {
	storage.BlobStore
	key     string
	reached chan struct{}
	release chan struct{}
	once    sync.Once
}

func (g *gatedBlobs) Open(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	if key == g.key {
		gated := false
		g.once.Do(func() { gated = true })
		if gated {
			close(g.reached)
			select {
			case <-g.release:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
	}
	return g.BlobStore.Open(ctx, key, off, n)
}

// A study retrieve whose second instance is deleted while the first one
// streams: the response has started (200, headers sent), so it cannot
// become an error status; the connection closes early instead, and an
// ordinary HTTP client sees a truncated body, whether the response
// declared its Content-Length (parts as stored) or is chunked (a part
// converted on the fly). It never ends as a short body that looks whole.
func TestRetrieveStudy_instanceDeletedMidStream(t *testing.T) {
	const rows, cols, frames = 64, 64, 40
	px := bytes.Repeat([]byte{1, 2, 3, 5, 8, 13, 21, 34}, rows*cols*frames/8) // first part: 160 KiB, past the response buffer
	for _, c := range []struct {
		name, accept string
		length       bool // the response declares its Content-Length
	}{
		{"as stored, Content-Length", `multipart/related; type="application/dicom"; transfer-syntax=*`, true},
		{"converted, chunked", `multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.1`, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			gate := &gatedBlobs{reached: make(chan struct{}), release: make(chan struct{})}
			s := newTestServer(t, func(cfg *Config) {
				gate.BlobStore = cfg.Archive.Blobs
				cfg.Archive.Blobs = gate
			})
			const study = "2.25.7003"
			// Two STOWs, so that the instances list in this order (by
			// series, then insertion).
			for i, deflated := range []bool{false, true} {
				series := study + "." + strconv.Itoa(i+1)
				obj := multiframePart10(study, series, series+".1", rows, cols, frames, px, deflated)
				body, ct := multipartBody(t, `"application/dicom"`, part{"application/dicom", obj})
				if res := s.do(t, "POST", "/dicom-web/studies", map[string]string{"Content-Type": ct}, body); res.status != http.StatusOK {
					t.Fatalf("STOW: %d %s", res.status, res.body)
				}
			}
			second, err := s.archive.Index.Instance(t.Context(), study, study+".2", study+".2.1")
			if err != nil {
				t.Fatal(err)
			}
			gate.key = second.BlobKey

			type result struct {
				res *http.Response
				err error
			}
			got := make(chan result, 1)
			go func() {
				req, _ := http.NewRequestWithContext(t.Context(), "GET", s.URL+"/dicom-web/studies/"+study, nil)
				req.Header.Set("Accept", c.accept)
				res, err := s.Client().Do(req)
				got <- result{res, err}
			}()
			select {
			case <-gate.reached: // the first part is written, the second not opened yet
			case <-time.After(30 * time.Second):
				t.Fatal("the retrieve never opened its second instance")
			}
			if res := s.do(t, "DELETE", "/dicom-web/studies/"+study+"/series/"+study+".2/instances/"+study+".2.1", nil, nil); res.status != http.StatusNoContent {
				t.Fatalf("DELETE: %d %s", res.status, res.body)
			}
			close(gate.release)
			r := <-got
			if r.err != nil {
				t.Fatalf("GET: %v (the status and headers were due before the failure)", r.err)
			}
			defer r.res.Body.Close()
			if r.res.StatusCode != http.StatusOK {
				t.Fatalf("status %d", r.res.StatusCode)
			}
			if (r.res.ContentLength >= 0) != c.length {
				t.Errorf("Content-Length %d; declared: want %v", r.res.ContentLength, c.length)
			}
			body, err := io.ReadAll(r.res.Body)
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("reading the body: %v after %d bytes, want io.ErrUnexpectedEOF", err, len(body))
			}
			if c.length && int64(len(body)) >= r.res.ContentLength {
				t.Errorf("read %d bytes of the declared %d", len(body), r.res.ContentLength)
			}
			if len(body) < len(px) {
				t.Errorf("read %d bytes: the first instance (%d bytes of pixel data) was not sent before the failure", len(body), len(px))
			}
		})
	}
}
