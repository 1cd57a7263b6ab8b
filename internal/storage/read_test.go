package storage_test

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/cloudpacs/pacs/internal/dcm"
	"github.com/cloudpacs/pacs/internal/storage"
	"github.com/cloudpacs/pacs/internal/storage/memblob"
)

// putBlob stores b under key.
func putBlob(t *testing.T, blobs storage.BlobStore, key string, b []byte) {
	t.Helper()
	w, err := blobs.Create(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Commit(); err != nil {
		t.Fatal(err)
	}
}

func readContent(t *testing.T, c storage.Content, off, n int64) []byte {
	t.Helper()
	rc, err := c.Open(t.Context(), off, n)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Frames stored back to back are one ranged read; frames of several
// fragments stream; both read the same bytes from any offset, also
// through the Seeker.
func TestFrameSet_allAndRanges(t *testing.T) {
	blobs := memblob.New()
	obj := make([]byte, 200)
	for i := range obj {
		obj[i] = byte(i)
	}
	const key = "instances/00/00/read.dcm"
	putBlob(t, blobs, key, obj)
	a := &storage.Archive{Blobs: blobs}
	for _, tc := range []struct {
		name   string
		frames []dcm.Frame
		ranged bool
		want   []byte
	}{
		{"contiguous", []dcm.Frame{{{Offset: 10, Length: 20}}, {{Offset: 30, Length: 20}}}, true, obj[10:50]},
		{"fragments", []dcm.Frame{{{Offset: 10, Length: 5}, {Offset: 100, Length: 5}}, {{Offset: 50, Length: 10}}},
			false, append(append(append([]byte{}, obj[10:15]...), obj[100:105]...), obj[50:60]...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inst := &storage.Instance{SOPInstanceUID: "1.2", BlobKey: key, Size: int64(len(obj)), Frames: tc.frames}
			set := a.Frames(inst)
			all := set.All()
			if all.Ranged() != tc.ranged || all.Size != int64(len(tc.want)) {
				t.Fatalf("All: ranged %v size %d, want %v %d", all.Ranged(), all.Size, tc.ranged, len(tc.want))
			}
			if got := readContent(t, all, 0, -1); !bytes.Equal(got, tc.want) {
				t.Errorf("All = %v, want %v", got, tc.want)
			}
			if got := readContent(t, all, 7, 6); !bytes.Equal(got, tc.want[7:13]) {
				t.Errorf("All[7:13] = %v, want %v", got, tc.want[7:13])
			}
			s := all.Seeker(t.Context())
			defer s.Close()
			for _, off := range []int64{12, 3, 0} { // forward, back
				if _, err := s.Seek(off, io.SeekStart); err != nil {
					t.Fatal(err)
				}
				buf := make([]byte, 4)
				if _, err := io.ReadFull(s, buf); err != nil || !bytes.Equal(buf, tc.want[off:off+4]) {
					t.Errorf("seek %d: %v %v, want %v", off, buf, err, tc.want[off:off+4])
				}
			}
			f1, err := set.Frame(1)
			if err != nil {
				t.Fatal(err)
			}
			if got := readContent(t, f1, 0, -1); !bytes.Equal(got, tc.want[:set.Size(1)]) {
				t.Errorf("frame 1 = %v", got)
			}
			if _, err := set.Frame(3); err == nil {
				t.Error("frame 3 of 2: no error")
			}
		})
	}
}

// A bulk value is found by its recorded span; an unknown path is
// ErrNoBulkValue, which is also ErrNotFound.
func TestArchive_Bulk(t *testing.T) {
	blobs := memblob.New()
	const key = "instances/00/00/bulk.dcm"
	putBlob(t, blobs, key, []byte("0123456789"))
	a := &storage.Archive{Blobs: blobs}
	inst := &storage.Instance{BlobKey: key, Size: 10, Bulk: []dcm.BulkRef{{Path: "00880200/0/7FE00010", VR: "OW", Span: dcm.Span{Offset: 2, Length: 4}}}}
	v, err := a.Bulk(t.Context(), inst, "00880200/0/7FE00010")
	if err != nil {
		t.Fatal(err)
	}
	if got := readContent(t, v.Content, 1, -1); string(got) != "345" || v.VR != "OW" {
		t.Errorf("bulk from 1 = %q (%s)", got, v.VR)
	}
	if _, err := a.Bulk(t.Context(), inst, "00280010"); !errors.Is(err, storage.ErrNoBulkValue) || !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("unknown path: %v", err)
	}
	if n := a.HeaderReparses(); n != 0 {
		t.Errorf("%d re-parses with recorded spans", n)
	}
}
