package dicomweb

import (
	"bytes"
	"context"
	"math/rand/v2"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudpacs/pacs/internal/storage"
)

// jitterBlobs delays each Commit by a random 0-4 ms, so that pipelined
// commits of one STOW request finish out of order, and records how many
// ran at once.
type jitterBlobs struct {
	storage.BlobStore
	inFlight, most atomic.Int64
}

func (j *jitterBlobs) Create(ctx context.Context, key string) (storage.BlobWriter, error) {
	w, err := j.BlobStore.Create(ctx, key)
	if err != nil {
		return nil, err
	}
	return &jitterWriter{BlobWriter: w, j: j}, nil
}

type jitterWriter struct {
	storage.BlobWriter
	j *jitterBlobs
}

func (w *jitterWriter) Commit() (storage.BlobInfo, error) {
	n := w.j.inFlight.Add(1)
	defer w.j.inFlight.Add(-1)
	for {
		m := w.j.most.Load()
		if n <= m || w.j.most.CompareAndSwap(m, n) {
			break
		}
	}
	time.Sleep(time.Duration(rand.IntN(4000)) * time.Microsecond)
	return w.BlobWriter.Commit()
}

// A pipelined 50-part request with a bad part in the middle: the 49
// others are stored, and the response lists them in part order.
func TestSTOW_pipelinedBadPartInMiddle(t *testing.T) {
	var jb *jitterBlobs
	s := newTestServer(t, func(c *Config) {
		jb = &jitterBlobs{BlobStore: c.Archive.Blobs}
		c.Archive.Blobs = jb
	})
	const file = "images/ct_small_signed_no_window.dcm"
	parts := uniqueParts(t, file, 50, 1)
	parts[25] = part{"application/dicom", readCorpus(t, "bad/truncated.dcm")}
	body, ct := multipartBody(t, `"application/dicom"`, parts...)
	r := s.do(t, "POST", "/dicom-web/studies", map[string]string{"Content-Type": ct, "Accept": "application/dicom+json"}, body)
	if r.status != http.StatusAccepted {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	obj := jsonObject(t, r.body)
	stored, failed := values(obj, "00081199"), values(obj, "00081198")
	if len(stored) != 49 || len(failed) != 1 {
		t.Fatalf("stored %d, failed %d; want 49, 1", len(stored), len(failed))
	}
	if got := value(failed[0].(map[string]any), "00081197"); got != float64(reasonCannotUnderstand) {
		t.Errorf("FailureReason %v", got)
	}
	want := uniqueParts(t, file, 50, 1)
	sop := row(t, file).SOP
	k := 0
	for i, p := range want {
		if i == 25 {
			continue
		}
		got, _ := value(stored[k].(map[string]any), "00081155").(string)
		if !containsUID(p.data, got) || len(got) != len(sop) {
			t.Errorf("ReferencedSOPSequence[%d] = %s, not the UID of part %d", k, got, i)
		}
		if _, err := s.archive.Index.Instance(t.Context(), "", "", got); err != nil {
			t.Errorf("part %d not indexed: %v", i, err)
		}
		k++
	}
	if jb.most.Load() < 2 {
		t.Errorf("at most %d commits ran at once: not pipelined", jb.most.Load())
	}
	if jb.most.Load() > int64(storage.DefaultLimits.PerSource) {
		t.Errorf("%d commits ran at once, more than %d", jb.most.Load(), storage.DefaultLimits.PerSource)
	}
}

func containsUID(data []byte, uid string) bool {
	return uid != "" && bytes.Contains(data, []byte(uid))
}
