package storage_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cloudpacs/pacs/internal/dcm"
	"github.com/cloudpacs/pacs/internal/storage"
	"github.com/cloudpacs/pacs/internal/storage/fsblob"
	"github.com/cloudpacs/pacs/internal/storage/sqliteindex"
)

const corpus = "../../testdata/dicom"

func newArchive(t testing.TB) *storage.Archive {
	t.Helper()
	dir := t.TempDir()
	blobs, err := fsblob.New(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	idx, err := sqliteindex.Open(t.Context(), "file:"+filepath.Join(dir, "index.db")+"?_pragma=synchronous(NORMAL)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { idx.Close() })
	return &storage.Archive{Blobs: blobs, Index: idx}
}

// manifestRow is one line of testdata/dicom/MANIFEST.tsv.
type manifestRow struct {
	file, ts, study, series, sop string
	rows, cols, frames, bits     int
	photometric                  string
}

func readManifest(t testing.TB) []manifestRow {
	t.Helper()
	f, err := os.Open(filepath.Join(corpus, "MANIFEST.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []manifestRow
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		c := strings.Split(sc.Text(), "\t")
		if len(c) < 15 {
			continue
		}
		atoi := func(s string) int { n, _ := strconv.Atoi(s); return n }
		out = append(out, manifestRow{file: c[0], ts: c[3], rows: atoi(c[5]), cols: atoi(c[6]), frames: atoi(c[7]),
			bits: atoi(c[8]), photometric: c[11], study: c[12], series: c[13], sop: c[14]})
	}
	return out
}

func fileSHA(t testing.TB, path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func storeFile(t testing.TB, a *storage.Archive, rel, wantStudy string) (storage.StoreResult, error) {
	t.Helper()
	f, err := os.Open(filepath.Join(corpus, rel))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return a.Store(t.Context(), f, wantStudy)
}

func blobKeys(t testing.TB, a *storage.Archive) []string {
	t.Helper()
	var keys []string
	if err := a.Blobs.List(t.Context(), storage.InstancePrefix, func(bi storage.BlobInfo) error {
		keys = append(keys, bi.Key)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return keys
}

func assertEmpty(t *testing.T, a *storage.Archive) {
	t.Helper()
	if keys := blobKeys(t, a); len(keys) != 0 {
		t.Errorf("blobs left behind: %v", keys)
	}
	if res, err := a.Index.Search(t.Context(), storage.Query{Level: storage.LevelInstance}); err != nil || len(res) != 0 {
		t.Errorf("index rows left behind: %d, %v", len(res), err)
	}
}

func TestArchive_Store_corpus(t *testing.T) {
	a := newArchive(t)
	rows := readManifest(t)
	stored := 0
	for _, m := range rows {
		if strings.HasPrefix(m.file, "bad/") {
			continue
		}
		t.Run(m.file, func(t *testing.T) {
			res, err := storeFile(t, a, m.file, "")
			if err != nil {
				t.Fatalf("Store: %v", err)
			}
			stored++
			inst := res.Instance
			if res.Duplicate || inst.SOPInstanceUID != m.sop || inst.StudyInstanceUID != m.study || inst.SeriesInstanceUID != m.series {
				t.Fatalf("Store = %+v; want new %s in %s/%s", res, m.sop, m.study, m.series)
			}
			if inst.TransferSyntaxUID != m.ts {
				t.Errorf("TransferSyntaxUID = %q, want %q", inst.TransferSyntaxUID, m.ts)
			}
			want := fileSHA(t, filepath.Join(corpus, m.file))
			if inst.SHA256 != want {
				t.Errorf("SHA256 = %s, want %s", inst.SHA256, want)
			}
			if !strings.HasPrefix(inst.BlobKey, "instances/") || len(inst.Metadata) == 0 {
				t.Errorf("BlobKey %q, %d bytes of metadata", inst.BlobKey, len(inst.Metadata))
			}
			got, err := a.Index.Instance(t.Context(), m.study, m.series, m.sop)
			if err != nil {
				t.Fatal(err)
			}
			rc, err := a.OpenInstance(t.Context(), got)
			if err != nil {
				t.Fatal(err)
			}
			h := sha256.New()
			_, err = io.Copy(h, rc)
			rc.Close()
			if err != nil || hex.EncodeToString(h.Sum(nil)) != want {
				t.Fatalf("read back: %v, sha %x, want %s", err, h.Sum(nil), want)
			}
			if m.frames > 0 && len(got.Frames) != m.frames {
				t.Errorf("%d frames indexed, want %d", len(got.Frames), m.frames)
			}
			for n := 1; n <= len(got.Frames); n++ {
				rc, length, err := a.OpenFrame(t.Context(), got, n)
				if err != nil {
					t.Fatalf("OpenFrame(%d): %v", n, err)
				}
				b, err := io.ReadAll(rc)
				rc.Close()
				if err != nil || int64(len(b)) != length {
					t.Fatalf("OpenFrame(%d): read %d bytes, %v; want %d", n, len(b), err, length)
				}
				if !got.Encapsulated && strings.HasPrefix(m.photometric, "MONOCHROME") {
					if want := int64(m.rows * m.cols * m.bits / 8); length != want {
						t.Errorf("frame %d: %d bytes, want %d", n, length, want)
					}
				}
			}
			if _, _, err := a.OpenFrame(t.Context(), got, len(got.Frames)+1); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("OpenFrame(past last) error = %v, want ErrNotFound", err)
			}

			again, err := storeFile(t, a, m.file, m.study)
			if err != nil || !again.Duplicate || again.Instance.BlobKey != inst.BlobKey {
				t.Fatalf("second Store = %+v, %v; want Duplicate of %s", again, err, inst.BlobKey)
			}
		})
	}
	// Duplicates left no extra blobs.
	if keys := blobKeys(t, a); len(keys) != stored {
		t.Errorf("%d blobs for %d stored instances", len(keys), stored)
	}
	problems := 0
	if err := a.Verify(t.Context(), func(inst *storage.Instance, err error) error {
		problems++
		t.Errorf("Verify: %s: %v", inst.SOPInstanceUID, err)
		return nil
	}); err != nil || problems != 0 {
		t.Fatalf("Verify = %v, %d problems", err, problems)
	}
}

// The same MR image in several uncompressed transfer syntaxes: frames
// must come out identical, little endian.
func TestArchive_OpenFrame_syntaxesAgree(t *testing.T) {
	a := newArchive(t)
	var frames [][]byte
	files := []string{"ts/mr_implicit_le.dcm", "ts/mr_explicit_be.dcm", "ts/mr_deflated.dcm"}
	for _, f := range files {
		res, err := storeFile(t, a, f, "")
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		rc, _, err := a.OpenFrame(t.Context(), &res.Instance, 1)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		frames = append(frames, b)
	}
	for i := 1; i < len(frames); i++ {
		if !bytes.Equal(frames[0], frames[i]) {
			t.Errorf("frame of %s differs from %s", files[i], files[0])
		}
	}
}

func TestArchive_Store_bad(t *testing.T) {
	entries, err := os.ReadDir(filepath.Join(corpus, "bad"))
	if err != nil {
		t.Fatal(err)
	}
	a := newArchive(t)
	for _, e := range entries {
		t.Run(e.Name(), func(t *testing.T) {
			_, err := storeFile(t, a, "bad/"+e.Name(), "")
			if !errors.Is(err, dcm.ErrInvalid) {
				t.Fatalf("Store error = %v, want dcm.ErrInvalid", err)
			}
			assertEmpty(t, a)
		})
	}
}

// failingReader returns err after n bytes of r.
type failingReader struct {
	r   io.Reader
	n   int
	err error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, f.err
	}
	p = p[:min(len(p), f.n)]
	n, err := f.r.Read(p)
	f.n -= n
	return n, err
}

func TestArchive_Store_failingReader(t *testing.T) {
	a := newArchive(t)
	data, err := os.ReadFile(filepath.Join(corpus, "images/ct_small_signed_no_window.dcm"))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{0, 100, 1000, len(data) / 2, len(data) - 1} {
		_, err := a.Store(t.Context(), &failingReader{r: bytes.NewReader(data), n: n, err: io.ErrUnexpectedEOF}, "")
		if err == nil {
			t.Fatalf("Store with a reader failing after %d bytes succeeded", n)
		}
		assertEmpty(t, a)
	}
}

func TestArchive_Store_cancelled(t *testing.T) {
	a := newArchive(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	f, err := os.Open(filepath.Join(corpus, "images/ct_small_signed_no_window.dcm"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := a.Store(ctx, f, ""); !errors.Is(err, context.Canceled) {
		t.Fatalf("Store(cancelled) error = %v, want context.Canceled", err)
	}
	assertEmpty(t, a)
}

func TestArchive_Store_wrongStudy(t *testing.T) {
	a := newArchive(t)
	if _, err := storeFile(t, a, "images/ct_small_signed_no_window.dcm", "1.2.3.4"); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("Store(wrong study) error = %v, want ErrConflict", err)
	}
	assertEmpty(t, a)
}

func TestArchive_Store_replace(t *testing.T) {
	a := newArchive(t)
	data, err := os.ReadFile(filepath.Join(corpus, "images/ct_small_signed_no_window.dcm"))
	if err != nil {
		t.Fatal(err)
	}
	first, err := a.Store(t.Context(), bytes.NewReader(data), "")
	if err != nil {
		t.Fatal(err)
	}
	changed := bytes.Clone(data)
	changed[len(changed)-1] ^= 0xFF // a pixel, not the header
	if _, err := a.Store(t.Context(), bytes.NewReader(changed), ""); !errors.Is(err, storage.ErrExists) {
		t.Fatalf("Store(different bytes) error = %v, want ErrExists", err)
	}
	if keys := blobKeys(t, a); len(keys) != 1 {
		t.Fatalf("blobs after ErrExists: %v", keys)
	}
	a.ReplaceOnConflict = true
	res, err := a.Store(t.Context(), bytes.NewReader(changed), "")
	if err != nil || !res.Replaced {
		t.Fatalf("Store(replace) = %+v, %v", res, err)
	}
	if keys := blobKeys(t, a); len(keys) != 1 || keys[0] != res.Instance.BlobKey || keys[0] == first.Instance.BlobKey {
		t.Fatalf("blobs after replace: %v (old %s, new %s)", keys, first.Instance.BlobKey, res.Instance.BlobKey)
	}
}

func TestArchive_DeleteAndSweep(t *testing.T) {
	a := newArchive(t)
	var study string
	for _, f := range []string{"study/s02_ct/ct_0001.dcm", "study/s02_ct/ct_0002.dcm"} {
		res, err := storeFile(t, a, f, "")
		if err != nil {
			t.Fatal(err)
		}
		study = res.Instance.StudyInstanceUID
	}
	// An orphan, as a crash between blob and index commit leaves.
	w, err := a.Blobs.Create(t.Context(), "instances/00/00/orphan.dcm")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("orphan")); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	if n, err := a.Sweep(t.Context(), time.Hour); err != nil || n != 0 {
		t.Fatalf("Sweep(1h) = %d, %v; want 0 (orphan is fresh)", n, err)
	}
	if n, err := a.Sweep(t.Context(), -time.Minute); err != nil || n != 1 {
		t.Fatalf("Sweep(now) = %d, %v; want 1", n, err)
	}
	if keys := blobKeys(t, a); len(keys) != 2 {
		t.Fatalf("blobs after sweep: %v", keys)
	}
	if err := a.Delete(t.Context(), study, "", ""); err != nil {
		t.Fatal(err)
	}
	assertEmpty(t, a)
	if err := a.Delete(t.Context(), study, "", ""); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Delete(again) error = %v, want ErrNotFound", err)
	}
}

func TestArchive_Verify_reportsDamage(t *testing.T) {
	a := newArchive(t)
	res, err := storeFile(t, a, "images/mr_small_signed_window.dcm", "")
	if err != nil {
		t.Fatal(err)
	}
	res2, err := storeFile(t, a, "images/ct_small_signed_no_window.dcm", "")
	if err != nil {
		t.Fatal(err)
	}
	root := a.Blobs.(*fsblob.Store).Root()
	if err := os.WriteFile(filepath.Join(root, filepath.FromSlash(res.Instance.BlobKey)), []byte("damaged"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := a.Blobs.Delete(t.Context(), res2.Instance.BlobKey); err != nil {
		t.Fatal(err)
	}
	got := map[string]error{}
	if err := a.Verify(t.Context(), func(inst *storage.Instance, err error) error {
		got[inst.SOPInstanceUID] = err
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(got[res.Instance.SOPInstanceUID], storage.ErrChecksum) || !errors.Is(got[res2.Instance.SOPInstanceUID], storage.ErrNotFound) || len(got) != 2 {
		t.Fatalf("Verify reported %v", got)
	}
}

func TestArchive_Store_failureNamesInstance(t *testing.T) {
	rows := map[string]manifestRow{}
	for _, r := range readManifest(t) {
		rows[r.file] = r
	}
	const ctFile = "images/ct_small_signed_no_window.dcm"
	ct := rows[ctFile]
	data, err := os.ReadFile(filepath.Join(corpus, ctFile))
	if err != nil {
		t.Fatal(err)
	}
	a := newArchive(t)
	if _, err := a.Store(t.Context(), bytes.NewReader(data), ""); err != nil {
		t.Fatal(err)
	}
	changed := bytes.Clone(data)
	changed[len(changed)-1] ^= 0xFF
	tr := rows["bad/truncated.dcm"]
	for _, c := range []struct {
		name    string
		store   func() (storage.StoreResult, error)
		wantErr error
		want    manifestRow
	}{
		{"truncated", func() (storage.StoreResult, error) { return storeFile(t, a, "bad/truncated.dcm", "") }, dcm.ErrInvalid, tr},
		{"wrongStudy", func() (storage.StoreResult, error) { return storeFile(t, a, ctFile, "1.2.3.4") }, storage.ErrConflict, ct},
		{"exists", func() (storage.StoreResult, error) { return a.Store(t.Context(), bytes.NewReader(changed), "") }, storage.ErrExists, ct},
	} {
		t.Run(c.name, func(t *testing.T) {
			res, err := c.store()
			if !errors.Is(err, c.wantErr) {
				t.Fatalf("Store error = %v, want %v", err, c.wantErr)
			}
			in := res.Instance
			if in.SOPInstanceUID != c.want.sop || in.StudyInstanceUID != c.want.study || in.SeriesInstanceUID != c.want.series ||
				in.SOPClassUID != "1.2.840.10008.5.1.4.1.1.2" {
				t.Errorf("failed StoreResult.Instance = %q %q %q %q, want the instance's UIDs",
					in.SOPClassUID, in.SOPInstanceUID, in.StudyInstanceUID, in.SeriesInstanceUID)
			}
			if in.BlobKey != "" {
				t.Errorf("failed StoreResult.Instance has blob key %q", in.BlobKey)
			}
		})
	}
}

// Store records every bulk value's span; a ranged read of the stored
// object at it is the value.
func TestArchive_Store_recordsBulk(t *testing.T) {
	a := newArchive(t)
	res, err := storeFile(t, a, "images/pt_acrin_flt_breast_icon.dcm", "")
	if err != nil {
		t.Fatal(err)
	}
	got, err := a.Index.Instance(t.Context(), "", "", res.Instance.SOPInstanceUID)
	if err != nil {
		t.Fatal(err)
	}
	paths := map[string]dcm.BulkRef{}
	for _, b := range got.Bulk {
		paths[b.Path] = b
	}
	icon, ok := paths["00880200/0/7FE00010"]
	if !ok || icon.Span.Length != 4096 || icon.VR != "OW" {
		t.Fatalf("Bulk = %+v; want the icon's PixelData, 4096 bytes OW", got.Bulk)
	}
	if px := paths["7FE00010"]; px.Span.Length != 56448 {
		t.Errorf("PixelData bulk = %+v, want 56448 bytes", px)
	}
	res, err = storeFile(t, a, "reports/"+firstFile(t, "reports"), "")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := a.Index.Instance(t.Context(), "", "", res.Instance.SOPInstanceUID); err != nil || got.Bulk == nil {
		t.Errorf("instance without bulk values: Bulk = %#v, %v; want empty, not nil", got.Bulk, err)
	}
}

func firstFile(t testing.TB, dir string) string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(corpus, dir, "*.dcm"))
	if len(m) == 0 {
		t.Fatalf("no files in %s", dir)
	}
	return filepath.Base(m[0])
}
