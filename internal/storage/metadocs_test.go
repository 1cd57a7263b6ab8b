package storage_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudpacs/pacs/internal/storage"
	"github.com/cloudpacs/pacs/internal/storage/storagetest"
)

func studyFiles(t testing.TB, sub string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(corpus, "study", sub, "*.dcm"))
	if err != nil || len(m) == 0 {
		t.Fatalf("no files in study/%s", sub)
	}
	for i, f := range m {
		m[i], _ = filepath.Rel(corpus, f)
	}
	return m
}

// waitIdle waits until no metadata rebuild is pending or running.
func waitIdle(t testing.TB, a *storage.Archive) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for a.MetadataStats().Pending > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("metadata rebuilds still pending: %+v", a.MetadataStats())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// metadataDoc returns the current document of study (series) with the
// placeholder replaced by base, decoded, and whether it was built.
func metadataDoc(t testing.TB, a *storage.Archive, study, series, base string) ([]map[string]any, bool) {
	t.Helper()
	v, err := a.Index.StudyVersion(t.Context(), study)
	if err != nil {
		t.Fatal(err)
	}
	gz, built, err := a.MetadataDocument(t.Context(), study, series, v)
	if err != nil {
		t.Fatalf("MetadataDocument(%s, %q): %v", study, series, err)
	}
	doc := gunzip(t, gz)
	doc = bytes.ReplaceAll(doc, []byte(storage.BulkPlaceholder), []byte(base))
	var arr []map[string]any
	if err := json.Unmarshal(doc, &arr); err != nil {
		t.Fatalf("document of %s %q: %v", study, series, err)
	}
	return arr, built
}

func gunzip(t testing.TB, b []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// checkBulkURIs fails unless every BulkDataURI of the document is
// base + the path of its own instance + "/bulk/…"; it returns how many
// there are.
func checkBulkURIs(t testing.TB, arr []map[string]any, base, study string) int {
	t.Helper()
	n := 0
	var walk func(v any, prefix string)
	walk = func(v any, prefix string) {
		switch x := v.(type) {
		case map[string]any:
			if u, ok := x["BulkDataURI"].(string); ok {
				n++
				if !strings.HasPrefix(u, prefix) {
					t.Errorf("BulkDataURI %q, want prefix %q", u, prefix)
				}
			}
			for _, e := range x {
				walk(e, prefix)
			}
		case []any:
			for _, e := range x {
				walk(e, prefix)
			}
		}
	}
	for _, obj := range arr {
		series := firstValue(obj, "0020000E")
		sop := firstValue(obj, "00080018")
		walk(obj, base+"/studies/"+study+"/series/"+series+"/instances/"+sop+"/bulk/")
	}
	return n
}

func firstValue(obj map[string]any, tag string) string {
	el, _ := obj[tag].(map[string]any)
	v, _ := el["Value"].([]any)
	if len(v) == 0 {
		return ""
	}
	s, _ := v[0].(string)
	return s
}

// Stores one instance at a time (quicker than the delay apart) are
// followed by one background rebuild of the study, which leaves the
// study and series documents in the index, base-URL-free; a delete is
// followed by another.
func TestArchive_metadataRebuild(t *testing.T) {
	a := newArchive(t)
	a.MetadataRebuildDelay = 100 * time.Millisecond
	t.Cleanup(func() { a.Close() })
	ct, pt := studyFiles(t, "s02_ct"), studyFiles(t, "s03_pt")
	var study, ctSeries, ptSeries string
	for _, f := range append(ct, pt...) {
		res, err := storeFile(t, a, f, "")
		if err != nil {
			t.Fatal(err)
		}
		study = res.Instance.StudyInstanceUID
		if strings.Contains(f, "s02_ct") {
			ctSeries = res.Instance.SeriesInstanceUID
		} else {
			ptSeries = res.Instance.SeriesInstanceUID
		}
	}
	waitIdle(t, a)
	if n := a.MetadataStats().Rebuilt; n < 1 || n > 2 {
		t.Errorf("%d background rebuilds after %d stores, want 1 (debounced; 2 on a slow machine)", n, len(ct)+len(pt))
	}
	const base = "https://pacs.example/dicom-web"
	for _, c := range []struct {
		series string
		n      int
	}{{"", len(ct) + len(pt)}, {ctSeries, len(ct)}, {ptSeries, len(pt)}} {
		arr, built := metadataDoc(t, a, study, c.series, base)
		if built {
			t.Errorf("document %q built on request after the rebuild", c.series)
		}
		if len(arr) != c.n {
			t.Errorf("document %q: %d instances, want %d", c.series, len(arr), c.n)
		}
		if checkBulkURIs(t, arr, base, study) < c.n {
			t.Errorf("document %q: fewer BulkDataURIs than instances", c.series)
		}
	}
	if st := a.MetadataStats(); st.Built != 0 {
		t.Errorf("%d documents built on request, want 0", st.Built)
	}

	if err := a.Delete(t.Context(), study, ptSeries, ""); err != nil {
		t.Fatal(err)
	}
	waitIdle(t, a)
	if arr, built := metadataDoc(t, a, study, "", base); built || len(arr) != len(ct) {
		t.Errorf("after deleting a series: %d instances (built %v), want %d from the rebuild", len(arr), built, len(ct))
	}
	v, _ := a.Index.StudyVersion(t.Context(), study)
	if _, _, err := a.MetadataDocument(t.Context(), study, ptSeries, v); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("deleted series: %v, want ErrNotFound", err)
	}
	if _, _, err := a.MetadataDocument(t.Context(), "1.2.3.4", "", 1); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("unknown study: %v, want ErrNotFound", err)
	}
}

// Close returns promptly with a rebuild pending and schedules nothing
// afterwards; a negative delay turns rebuilds off, and documents are
// built on request, then read from the index.
func TestArchive_metadataRebuild_closeAndOff(t *testing.T) {
	a := newArchive(t)
	a.MetadataRebuildDelay = time.Hour
	ct := studyFiles(t, "s02_ct")
	if _, err := storeFile(t, a, ct[0], ""); err != nil {
		t.Fatal(err)
	}
	if n := a.MetadataStats().Pending; n != 1 {
		t.Errorf("%d pending after a store, want 1", n)
	}
	start := time.Now()
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Close took %v", d)
	}
	if _, err := storeFile(t, a, ct[1], ""); err != nil {
		t.Fatal(err)
	}
	if st := a.MetadataStats(); st.Pending != 0 || st.Rebuilt != 0 {
		t.Errorf("after Close: %+v", st)
	}
	a.Close() // twice: fine

	off := newArchive(t)
	off.MetadataRebuildDelay = -1
	var study string
	for _, f := range ct {
		res, err := storeFile(t, off, f, "")
		if err != nil {
			t.Fatal(err)
		}
		study = res.Instance.StudyInstanceUID
	}
	if st := off.MetadataStats(); st.Pending != 0 {
		t.Errorf("rebuilds off: %+v", st)
	}
	for _, want := range []bool{true, false} {
		if _, built := metadataDoc(t, off, study, "", "http://x"); built != want {
			t.Errorf("built = %v, want %v", built, want)
		}
	}
	off.Close()
}

// slowIndex makes the build of a document slow and counts the builds.
type slowIndex struct {
	storage.Index
	delay time.Duration
	mu    sync.Mutex
	walks int
}

func (x *slowIndex) Instances(ctx context.Context, study, series string) ([]*storage.Instance, error) {
	x.mu.Lock()
	x.walks++
	x.mu.Unlock()
	time.Sleep(x.delay)
	return x.Index.Instances(ctx, study, series)
}

// Concurrent requests for one missing document build it once; a caller
// that gives up does not fail the others.
func TestArchive_MetadataDocument_concurrent(t *testing.T) {
	a := newArchive(t)
	slow := &slowIndex{Index: a.Index, delay: 300 * time.Millisecond}
	a.Index, a.MetadataRebuildDelay = slow, -1
	var study string
	for _, f := range studyFiles(t, "s02_ct") {
		res, err := storeFile(t, a, f, "")
		if err != nil {
			t.Fatal(err)
		}
		study = res.Instance.StudyInstanceUID
	}
	v, err := a.Index.StudyVersion(t.Context(), study)
	if err != nil {
		t.Fatal(err)
	}
	const n = 12
	docs := make([][]byte, n)
	builts := make([]bool, n)
	errs := make([]error, n+1)
	var wg sync.WaitGroup
	impatient, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	wg.Go(func() { _, _, errs[n] = a.MetadataDocument(impatient, study, "", v) })
	for i := range n {
		wg.Go(func() { docs[i], builts[i], errs[i] = a.MetadataDocument(t.Context(), study, "", v) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil || !builts[i] || !bytes.Equal(docs[i], docs[0]) {
			t.Errorf("caller %d: %d bytes, built %v, %v", i, len(docs[i]), builts[i], errs[i])
		}
	}
	if !errors.Is(errs[n], context.DeadlineExceeded) {
		t.Errorf("impatient caller: %v, want DeadlineExceeded", errs[n])
	}
	if st := a.MetadataStats(); st.Built != 1 || slow.walks != 1 {
		t.Errorf("%d concurrent callers: %d builds, %d walks of the rows; want 1, 1", n, st.Built, slow.walks)
	}
	if _, built, err := a.MetadataDocument(t.Context(), study, "", v); err != nil || built {
		t.Errorf("after the build: built %v, %v; want the index's document", built, err)
	}
}

// A document asked for at a version the study has left behind is built
// from the current rows but not kept under the old version.
func TestArchive_MetadataDocument_staleVersion(t *testing.T) {
	a := newArchive(t)
	a.MetadataRebuildDelay = -1
	ct := studyFiles(t, "s02_ct")
	res, err := storeFile(t, a, ct[0], "")
	if err != nil {
		t.Fatal(err)
	}
	study := res.Instance.StudyInstanceUID
	old, _ := a.Index.StudyVersion(t.Context(), study)
	if _, err := storeFile(t, a, ct[1], ""); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		gz, built, err := a.MetadataDocument(t.Context(), study, "", old)
		if err != nil || !built {
			t.Fatalf("stale version: built %v, %v", built, err)
		}
		var arr []any
		if err := json.Unmarshal(bytes.ReplaceAll(gunzip(t, gz), []byte(storage.BulkPlaceholder), nil), &arr); err != nil || len(arr) != 2 {
			t.Fatalf("stale version: %d instances, %v; want the 2 of now", len(arr), err)
		}
	}
}

// BenchmarkMetadataDocument1000 builds the base-free document of a
// 1,000-instance series from its rows (SQLite): each iteration asks for
// a version that has no document, so nothing is read from the cache (and
// the document built is not kept).
func BenchmarkMetadataDocument1000(b *testing.B) {
	a := newArchive(b)
	a.MetadataRebuildDelay = -1
	res, err := storeFile(b, a, "study/s02_ct/ct_0001.dcm", "")
	if err != nil {
		b.Fatal(err)
	}
	real, err := a.Index.Instance(b.Context(), "", "", res.Instance.SOPInstanceUID)
	if err != nil {
		b.Fatal(err)
	}
	const study, series = "1.2.826.0.1.999.1", "1.2.826.0.1.999.1.1"
	for i := range 1000 {
		sop := series + "." + strconv.Itoa(i+1)
		in := storagetest.NewTestInstance(study, series, sop)
		in.Metadata = bytes.ReplaceAll(real.Metadata, []byte(res.Instance.SOPInstanceUID), []byte(sop))
		if _, err := a.Index.PutInstance(b.Context(), in, false); err != nil {
			b.Fatal(err)
		}
	}
	v, err := a.Index.StudyVersion(b.Context(), study)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	i := int64(0)
	for b.Loop() {
		i++
		gz, built, err := a.MetadataDocument(b.Context(), study, series, v+i)
		if err != nil || !built {
			b.Fatal(built, err)
		}
		b.SetBytes(int64(len(gz)))
	}
}
