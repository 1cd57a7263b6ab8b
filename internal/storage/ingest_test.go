package storage_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudpacs/pacs/internal/dcm"
	"github.com/cloudpacs/pacs/internal/storage"
)

// sliceSource yields fixed items.
type sliceSource struct {
	items []storage.Item
	read  int
}

func (s *sliceSource) Next(context.Context) (storage.Item, error) {
	if s.read == len(s.items) {
		return storage.Item{}, io.EOF
	}
	s.read++
	return s.items[s.read-1], nil
}

func corpusBytes(t testing.TB, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(corpus, rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// variant is data with the SOP Instance UID sop replaced by uid (same
// length), and with its last byte (a pixel) changed when flip is set.
func variant(data []byte, sop, uid string, flip byte) []byte {
	out := bytes.ReplaceAll(data, []byte(sop), []byte(uid))
	out[len(out)-1] ^= flip
	return out
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// slowBlobs delays each Commit by a random 0-3 ms so that pipelined
// commits finish out of order.
type slowBlobs struct{ storage.BlobStore }

func (s slowBlobs) Create(ctx context.Context, key string) (storage.BlobWriter, error) {
	w, err := s.BlobStore.Create(ctx, key)
	if err != nil {
		return nil, err
	}
	return slowWriter{w}, nil
}

type slowWriter struct{ storage.BlobWriter }

func (w slowWriter) Commit() (storage.BlobInfo, error) {
	time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond)
	return w.BlobWriter.Commit()
}

const ctFile = "images/ct_small_signed_no_window.dcm"
const ctSOP = "1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.12322"

// Versions of one instance in one request commit in request order: with
// the replace policy the last one is what stays; with reject the first
// stays and every later one is refused. Repeated, since the old pipeline
// let them race.
func TestStoreAll_sameSOPInPartOrder(t *testing.T) {
	data := corpusBytes(t, ctFile)
	if !bytes.Contains(data, []byte(ctSOP)) {
		t.Fatalf("%s does not hold SOP Instance UID %s", ctFile, ctSOP)
	}
	for _, replace := range []bool{true, false} {
		for round := range 8 {
			a := newArchive(t)
			a.Blobs = slowBlobs{a.Blobs}
			a.ReplaceOnConflict = replace
			var items []storage.Item
			var versions [][]byte
			for v := range 6 {
				b := variant(data, ctSOP, ctSOP, byte(v)) // v = 0: the original bytes
				versions = append(versions, b)
				items = append(items, storage.Item{Body: bytes.NewReader(b)})
			}
			var outs []storage.Outcome
			if err := a.StoreAll(t.Context(), &sliceSource{items: items}, func(o storage.Outcome) { outs = append(outs, o) }); err != nil {
				t.Fatal(err)
			}
			if len(outs) != len(items) {
				t.Fatalf("%d outcomes for %d items", len(outs), len(items))
			}
			in, err := a.Index.Instance(t.Context(), "", "", ctSOP)
			if err != nil {
				t.Fatal(err)
			}
			want := versions[0]
			if replace {
				want = versions[len(versions)-1]
			}
			if in.SHA256 != sha(want) {
				t.Fatalf("replace=%v round %d: the index holds version %s, want %s", replace, round, in.SHA256[:8], sha(want)[:8])
			}
			for i, o := range outs {
				switch {
				case replace && o.Err != nil:
					t.Errorf("replace: item %d: %v", i, o.Err)
				case !replace && i == 0 && o.Err != nil:
					t.Errorf("reject: first item: %v", o.Err)
				case !replace && i > 0 && !errors.Is(o.Err, storage.ErrExists):
					t.Errorf("reject: item %d error %v, want ErrExists", i, o.Err)
				}
			}
			if keys := blobKeys(t, a); len(keys) != 1 || keys[0] != in.BlobKey {
				t.Fatalf("blobs %v, want only %s", keys, in.BlobKey)
			}
		}
	}
}

// gatedReader blocks its first Read until release is closed.
type gatedReader struct {
	r       io.Reader
	release chan struct{}
	started chan struct{}
	once    atomic.Bool
}

func (g *gatedReader) Read(p []byte) (int, error) {
	if g.once.CompareAndSwap(false, true) {
		close(g.started)
	}
	<-g.release
	return g.r.Read(p)
}

// Over budget, an instance waits Limits.Wait and then fails with ErrBusy;
// when room is made, the next one is stored.
func TestStore_busyWhenBudgetFull(t *testing.T) {
	a := newArchive(t)
	a.Limits = storage.Limits{Instances: 1, Wait: 100 * time.Millisecond}
	data := corpusBytes(t, ctFile)
	g := &gatedReader{r: bytes.NewReader(data), release: make(chan struct{}), started: make(chan struct{})}
	done := make(chan error, 1)
	go func() {
		_, err := a.Store(t.Context(), g, "")
		done <- err
	}()
	<-g.started
	if st := a.IngestStats(); st.Instances != 1 {
		t.Fatalf("instances in flight %d, want 1", st.Instances)
	}
	other := variant(data, ctSOP, ctSOP[:len(ctSOP)-2]+"77", 0)
	_, err := a.Store(t.Context(), bytes.NewReader(other), "")
	if !errors.Is(err, storage.ErrBusy) {
		t.Fatalf("Store over budget: %v, want ErrBusy", err)
	}
	if st := a.IngestStats(); st.Refused != 1 {
		t.Errorf("refused %d, want 1", st.Refused)
	}
	close(g.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := a.Store(t.Context(), bytes.NewReader(other), ""); err != nil {
		t.Fatalf("Store after room was made: %v", err)
	}
	if st := a.IngestStats(); st.Instances != 0 || st.Bytes != 0 || st.HeaderBytes != 0 || st.Commits != 0 {
		t.Errorf("budget not given back: %+v", st)
	}
	if len(blobKeys(t, a)) != 2 {
		t.Errorf("blobs %v, want 2", blobKeys(t, a))
	}
}

// Once an item is refused as busy, StoreAll stops reading the source
// (the sender retries the rest later) and says so.
func TestStoreAll_busyStopsReading(t *testing.T) {
	a := newArchive(t)
	a.Limits = storage.Limits{Instances: 1, Wait: 50 * time.Millisecond}
	data := corpusBytes(t, ctFile)
	g := &gatedReader{r: bytes.NewReader(data), release: make(chan struct{}), started: make(chan struct{})}
	done := make(chan error, 1)
	go func() {
		_, err := a.Store(t.Context(), g, "")
		done <- err
	}()
	<-g.started
	src := &sliceSource{items: []storage.Item{{Body: bytes.NewReader(data)}, {Body: bytes.NewReader(data)}, {Body: bytes.NewReader(data)}}}
	var outs []storage.Outcome
	err := a.StoreAll(t.Context(), src, func(o storage.Outcome) { outs = append(outs, o) })
	close(g.release)
	if !errors.Is(err, storage.ErrBusy) {
		t.Fatalf("StoreAll = %v, want ErrBusy", err)
	}
	if src.read != 1 || len(outs) != 1 || !errors.Is(outs[0].Err, storage.ErrBusy) {
		t.Fatalf("read %d items, outcomes %+v; want 1 read, 1 busy", src.read, outs)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// lossyIndex fails PutInstance after the row is committed (the answer was
// lost), or refuses it (ErrExists), as told.
type lossyIndex struct {
	storage.Index
	lose, refuse bool
}

func (l *lossyIndex) PutInstance(ctx context.Context, inst *storage.Instance, replace bool) (storage.PutResult, error) {
	if l.refuse {
		return storage.PutResult{}, storage.ErrExists
	}
	res, err := l.Index.PutInstance(ctx, inst, replace)
	if err == nil && l.lose {
		return storage.PutResult{}, errors.New("connection reset by peer")
	}
	return res, err
}

// A lost commit answer never deletes the blob (the row may exist); a
// definite refusal does.
func TestCommit_lostAnswerKeepsBlob(t *testing.T) {
	a := newArchive(t)
	li := &lossyIndex{Index: a.Index, lose: true}
	a.Index = li
	data := corpusBytes(t, ctFile)
	if _, err := a.Store(t.Context(), bytes.NewReader(data), ""); err == nil {
		t.Fatal("Store succeeded through a lost answer")
	}
	in, err := li.Index.Instance(t.Context(), "", "", ctSOP)
	if err != nil {
		t.Fatalf("the row was committed: %v", err)
	}
	if _, err := a.Blobs.Stat(t.Context(), in.BlobKey); err != nil {
		t.Fatalf("the row's blob is gone after a lost answer: %v", err)
	}
	// The sweep keeps it: a row refers to it.
	if n, err := a.Sweep(t.Context(), 0); err != nil || n != 0 {
		t.Fatalf("Sweep = %d, %v; want 0 removed", n, err)
	}
	// A definite refusal leaves nothing behind.
	li.lose, li.refuse = false, true
	other := variant(data, ctSOP, ctSOP[:len(ctSOP)-2]+"77", 0)
	if _, err := a.Store(t.Context(), bytes.NewReader(other), ""); !errors.Is(err, storage.ErrExists) {
		t.Fatalf("Store = %v, want ErrExists", err)
	}
	if keys := blobKeys(t, a); len(keys) != 1 || keys[0] != in.BlobKey {
		t.Fatalf("blobs %v, want only %s", keys, in.BlobKey)
	}
}

// panicBlobs panics in Commit.
type panicBlobs struct{ storage.BlobStore }

func (p panicBlobs) Create(ctx context.Context, key string) (storage.BlobWriter, error) {
	w, err := p.BlobStore.Create(ctx, key)
	return panicWriter{w}, err
}

type panicWriter struct{ storage.BlobWriter }

func (panicWriter) Commit() (storage.BlobInfo, error) { panic("disk on fire") }

// A panic in a commit fails that item and gives its budget back; the
// process and the other items carry on.
func TestStoreAll_commitPanicFailsItem(t *testing.T) {
	a := newArchive(t)
	good := a.Blobs
	a.Blobs = panicBlobs{good}
	data := corpusBytes(t, ctFile)
	var outs []storage.Outcome
	err := a.StoreAll(t.Context(), &sliceSource{items: []storage.Item{{Body: bytes.NewReader(data)}}}, func(o storage.Outcome) { outs = append(outs, o) })
	if err != nil || len(outs) != 1 || outs[0].Err == nil {
		t.Fatalf("StoreAll = %v, %+v; want one failed item", err, outs)
	}
	if st := a.IngestStats(); st.Instances != 0 || st.Bytes != 0 || st.HeaderBytes != 0 || st.Commits != 0 {
		t.Errorf("budget not given back: %+v", st)
	}
	a.Blobs = good
	if _, err := a.Store(t.Context(), bytes.NewReader(data), ""); err != nil {
		t.Fatal(err)
	}
}

// Items the door refused, malformed items and good ones are reported in
// source order, each once.
func TestStoreAll_reportsInOrder(t *testing.T) {
	a := newArchive(t)
	a.Blobs = slowBlobs{a.Blobs}
	data := corpusBytes(t, ctFile)
	refused := errors.New("not application/dicom")
	var items []storage.Item
	var want []string // "" ok, "invalid", "refused"
	for i := range 30 {
		switch i % 7 {
		case 3:
			items = append(items, storage.Item{Err: refused})
			want = append(want, "refused")
		case 5:
			items = append(items, storage.Item{Body: bytes.NewReader(data[:len(data)/3])})
			want = append(want, "invalid")
		default:
			uid := ctSOP[:len(ctSOP)-2] + []string{"1", "2", "3"}[i/10] + string(rune('0'+i%10))
			items = append(items, storage.Item{Body: bytes.NewReader(variant(data, ctSOP, uid, 0))})
			want = append(want, uid)
		}
	}
	var outs []storage.Outcome
	if err := a.StoreAll(t.Context(), &sliceSource{items: items}, func(o storage.Outcome) { outs = append(outs, o) }); err != nil {
		t.Fatal(err)
	}
	if len(outs) != len(want) {
		t.Fatalf("%d outcomes, want %d", len(outs), len(want))
	}
	for i, o := range outs {
		switch want[i] {
		case "refused":
			if !errors.Is(o.Err, refused) {
				t.Errorf("item %d: %v, want the door's error", i, o.Err)
			}
		case "invalid":
			if !errors.Is(o.Err, dcm.ErrInvalid) {
				t.Errorf("item %d: %v, want ErrInvalid", i, o.Err)
			}
		default:
			if o.Err != nil || o.Result.Instance.SOPInstanceUID != want[i] {
				t.Errorf("item %d: %s, %v; want %s stored", i, o.Result.Instance.SOPInstanceUID, o.Err, want[i])
			}
		}
	}
}
