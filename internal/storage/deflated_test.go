package storage_test

import (
	"bytes"
	"compress/flate"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"sync/atomic"
	"testing"

	"github.com/cloudpacs/pacs/internal/dcm"
	"github.com/cloudpacs/pacs/internal/storage"
	"github.com/cloudpacs/pacs/internal/storage/memblob"
)

// countingBlobs counts the bytes its readers deliver.
type countingBlobs struct {
	storage.BlobStore
	read atomic.Int64
}

func (c *countingBlobs) Open(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	rc, err := c.BlobStore.Open(ctx, key, off, n)
	if err != nil {
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{&countingReader{r: rc, n: &c.read}, rc}, nil
}

type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// deflatedInstance stores a blob laid out like a deflated object (a
// header of hdr bytes, then one raw deflate stream) whose inflated data
// set holds n frames of size bytes after a 100-byte prefix, and returns
// its row and the inflated frames. Frame 2 is given as two spans.
func deflatedInstance(t *testing.T, blobs storage.BlobStore, n, size int) (*storage.Instance, [][]byte) {
	t.Helper()
	const hdr, prefix = 132, 100
	r := rand.New(rand.NewPCG(1, 2))
	ds := make([]byte, prefix+n*size)
	for i := range ds {
		ds[i] = byte(r.Uint32()) // incompressible: the stream is as long as the frames
	}
	var z bytes.Buffer
	z.Write(make([]byte, hdr))
	zw, _ := flate.NewWriter(&z, flate.BestSpeed)
	zw.Write(ds)
	zw.Close()
	inst := &storage.Instance{SOPInstanceUID: "1.2.3", BlobKey: "instances/00/00/deflated.dcm", Deflated: true, DataSetOffset: hdr}
	var frames [][]byte
	for i := range n {
		off := int64(hdr + prefix + i*size)
		f := dcm.Frame{{Offset: off, Length: int64(size)}}
		if i == 1 {
			f = dcm.Frame{{Offset: off, Length: 10}, {Offset: off + 10, Length: int64(size - 10)}}
		}
		inst.Frames = append(inst.Frames, f)
		frames = append(frames, ds[prefix+i*size:prefix+(i+1)*size])
	}
	w, err := blobs.Create(t.Context(), inst.BlobKey)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(z.Bytes())
	info, err := w.Commit()
	if err != nil {
		t.Fatal(err)
	}
	inst.Size = info.Size
	return inst, frames
}

func readFrame(t *testing.T, fr *storage.FrameReader, n int) []byte {
	t.Helper()
	r, size, err := fr.Frame(n)
	if err != nil {
		t.Fatalf("Frame(%d): %v", n, err)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("Frame(%d): read: %v", n, err)
	}
	if int64(len(b)) != size {
		t.Fatalf("Frame(%d): %d bytes, said %d", n, len(b), size)
	}
	return b
}

// All frames of a deflated instance in order: the data set is inflated
// once (the stored bytes are read once), where a frame at a time
// inflates from the start every time.
func TestFrameReader_deflatedInflatesOnce(t *testing.T) {
	blobs := &countingBlobs{BlobStore: memblob.New()}
	a := &storage.Archive{Blobs: blobs}
	const n = 300
	inst, want := deflatedInstance(t, blobs, n, 256)
	fr := a.OpenFrames(t.Context(), inst)
	defer fr.Close()
	for i := range n {
		if got := readFrame(t, fr, i+1); !bytes.Equal(got, want[i]) {
			t.Fatalf("frame %d differs", i+1)
		}
	}
	once := blobs.read.Load()
	if stored := inst.Size - inst.DataSetOffset; once > stored {
		t.Errorf("all %d frames read %d stored bytes; the stream has %d", n, once, stored)
	}

	blobs.read.Store(0)
	for i := range n {
		rc, _, err := a.OpenFrame(t.Context(), inst, i+1)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, rc)
		rc.Close()
	}
	perFrame := blobs.read.Load()
	t.Logf("%d frames: %d stored bytes read with one FrameReader, %d with OpenFrame per frame", n, once, perFrame)
	if perFrame < 50*once {
		t.Errorf("OpenFrame per frame read %d bytes, FrameReader %d: the test does not show the difference", perFrame, once)
	}
}

// Frames out of order, frames read in part, a stale reader, and bounds.
func TestFrameReader_deflatedOrderAndBounds(t *testing.T) {
	blobs := memblob.New()
	a := &storage.Archive{Blobs: blobs}
	inst, want := deflatedInstance(t, blobs, 10, 64)
	fr := a.OpenFrames(t.Context(), inst)
	defer fr.Close()
	for _, n := range []int{5, 3, 4, 4, 10, 1, 2} { // back, forward, the same again
		if got := readFrame(t, fr, n); !bytes.Equal(got, want[n-1]) {
			t.Errorf("frame %d differs", n)
		}
	}
	r, _, err := fr.Frame(2) // two spans, read in part
	if err != nil {
		t.Fatal(err)
	}
	part := make([]byte, 20)
	if _, err := io.ReadFull(r, part); err != nil || !bytes.Equal(part, want[1][:20]) {
		t.Fatalf("first 20 bytes of frame 2: %v", err)
	}
	if got := readFrame(t, fr, 3); !bytes.Equal(got, want[2]) {
		t.Error("frame 3 after a partly read frame 2 differs")
	}
	if _, err := r.Read(part); err == nil {
		t.Error("reading frame 2 after Frame(3) did not fail")
	}
	for _, n := range []int{0, 11} {
		if _, _, err := fr.Frame(n); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Frame(%d) error = %v, want ErrNotFound", n, err)
		}
	}
}

// A stream that ends early is an error, not a short frame.
func TestFrameReader_deflatedTruncated(t *testing.T) {
	blobs := memblob.New()
	a := &storage.Archive{Blobs: blobs}
	inst, _ := deflatedInstance(t, blobs, 4, 64)
	inst.Frames = append(inst.Frames, dcm.Frame{{Offset: inst.Frames[3][0].Offset + 64, Length: 64}}) // past the end
	fr := a.OpenFrames(t.Context(), inst)
	defer fr.Close()
	r, _, err := fr.Frame(5)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(r); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("frame past the stream's end: %v, want io.ErrUnexpectedEOF", err)
	}
}

// A native instance reads each frame with OpenFrame.
func TestFrameReader_native(t *testing.T) {
	blobs := memblob.New()
	a := &storage.Archive{Blobs: blobs}
	body := []byte("headerAAAABBBBCCCC")
	w, _ := blobs.Create(t.Context(), "instances/00/00/native.dcm")
	w.Write(body)
	if _, err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	inst := &storage.Instance{SOPInstanceUID: "1.2.4", BlobKey: "instances/00/00/native.dcm", Size: int64(len(body)),
		Frames: []dcm.Frame{{{Offset: 6, Length: 4}}, {{Offset: 10, Length: 4}}, {{Offset: 14, Length: 4}}}}
	fr := a.OpenFrames(t.Context(), inst)
	defer fr.Close()
	for _, c := range []struct {
		n    int
		want string
	}{{3, "CCCC"}, {1, "AAAA"}, {2, "BBBB"}} {
		if got := readFrame(t, fr, c.n); string(got) != c.want {
			t.Errorf("frame %d = %q, want %q", c.n, got, c.want)
		}
	}
}
