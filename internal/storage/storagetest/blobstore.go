package storagetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/cloudpacs/pacs/internal/storage"
	"github.com/google/go-cmp/cmp"
)

// TestBlobStore runs the BlobStore conformance suite. newStore returns a
// fresh, empty store; clean-up goes through t.Cleanup.
func TestBlobStore(t *testing.T, newStore func(t *testing.T) storage.BlobStore) {
	t.Run("OpenMissing", func(t *testing.T) {
		s := newStore(t)
		_, err := s.Open(t.Context(), "instances/00/00/missing.dcm", 0, -1)
		if !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("Open(missing) error = %v, want ErrNotFound", err)
		}
		if _, err := s.Stat(t.Context(), "instances/00/00/missing.dcm"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("Stat(missing) error = %v, want ErrNotFound", err)
		}
	})

	t.Run("CommitThenRead", func(t *testing.T) {
		s := newStore(t)
		data := randomBytes(100_000, 1)
		w, err := s.Create(t.Context(), "instances/ab/cd/one.dcm")
		if err != nil {
			t.Fatal(err)
		}
		defer w.Abort()
		// Write in uneven pieces.
		for p := data; len(p) > 0; {
			n := min(len(p), 7919)
			if _, err := w.Write(p[:n]); err != nil {
				t.Fatal(err)
			}
			p = p[n:]
		}
		if _, err := s.Open(t.Context(), "instances/ab/cd/one.dcm", 0, -1); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("Open before Commit error = %v, want ErrNotFound", err)
		}
		info, err := w.Commit()
		if err != nil {
			t.Fatal(err)
		}
		if info.Key != "instances/ab/cd/one.dcm" || info.Size != int64(len(data)) {
			t.Fatalf("Commit = %+v, want key and size %d", info, len(data))
		}
		if err := w.Abort(); err != nil {
			t.Fatalf("Abort after Commit = %v, want nil", err)
		}
		if got := readAll(t, s, "instances/ab/cd/one.dcm", 0, -1); !bytes.Equal(got, data) {
			t.Fatalf("read back %d bytes, differ from the %d written", len(got), len(data))
		}
		st, err := s.Stat(t.Context(), "instances/ab/cd/one.dcm")
		if err != nil || st.Size != int64(len(data)) || st.ModTime.IsZero() {
			t.Fatalf("Stat = %+v, %v", st, err)
		}
	})

	t.Run("AbortLeavesNothing", func(t *testing.T) {
		s := newStore(t)
		w, err := s.Create(t.Context(), "instances/ab/cd/aborted.dcm")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte("partial")); err != nil {
			t.Fatal(err)
		}
		if err := w.Abort(); err != nil {
			t.Fatal(err)
		}
		if err := w.Abort(); err != nil {
			t.Fatalf("second Abort = %v, want nil", err)
		}
		if _, err := w.Commit(); err == nil {
			t.Fatal("Commit after Abort succeeded")
		}
		if _, err := s.Stat(t.Context(), "instances/ab/cd/aborted.dcm"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("Stat(aborted) error = %v, want ErrNotFound", err)
		}
		if keys := listKeys(t, s, ""); len(keys) != 0 {
			t.Fatalf("List after Abort = %v, want nothing", keys)
		}
	})

	t.Run("CancelledCtxCommitFails", func(t *testing.T) {
		s := newStore(t)
		ctx, cancel := context.WithCancel(t.Context())
		w, err := s.Create(ctx, "instances/ab/cd/cancelled.dcm")
		if err != nil {
			t.Fatal(err)
		}
		defer w.Abort()
		_, _ = w.Write([]byte("data")) // may fail already; either is fine
		cancel()
		if _, err := w.Commit(); err == nil {
			t.Fatal("Commit with a cancelled ctx succeeded")
		}
		if _, err := s.Stat(t.Context(), "instances/ab/cd/cancelled.dcm"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("Stat(cancelled) error = %v, want ErrNotFound", err)
		}
		if keys := listKeys(t, s, ""); len(keys) != 0 {
			t.Fatalf("List after cancelled Commit = %v, want nothing", keys)
		}
	})

	t.Run("RangeRead", func(t *testing.T) {
		s := newStore(t)
		data := randomBytes(10_000, 2)
		put(t, s, "instances/ab/cd/range.dcm", data)
		for _, tc := range []struct {
			off, n     int64
			start, end int
		}{
			{0, -1, 0, 10_000},
			{0, 0, 0, 0},
			{0, 10, 0, 10},
			{1234, 100, 1234, 1334},
			{9_990, 100, 9_990, 10_000}, // cut at the end
			{5_000, -1, 5_000, 10_000},
			{10_000, 10, 10_000, 10_000}, // at the end: empty
			{20_000, 10, 10_000, 10_000}, // past the end: empty
		} {
			got := readAll(t, s, "instances/ab/cd/range.dcm", tc.off, tc.n)
			if !bytes.Equal(got, data[tc.start:tc.end]) {
				t.Errorf("Open(off=%d, n=%d) = %d bytes, want data[%d:%d]", tc.off, tc.n, len(got), tc.start, tc.end)
			}
		}
	})

	t.Run("ZeroLength", func(t *testing.T) {
		s := newStore(t)
		w, err := s.Create(t.Context(), "instances/ab/cd/empty.dcm")
		if err != nil {
			t.Fatal(err)
		}
		info, err := w.Commit()
		if err != nil || info.Size != 0 {
			t.Fatalf("Commit(empty) = %+v, %v", info, err)
		}
		if got := readAll(t, s, "instances/ab/cd/empty.dcm", 0, -1); len(got) != 0 {
			t.Fatalf("read %d bytes, want 0", len(got))
		}
	})

	t.Run("Overwrite", func(t *testing.T) {
		s := newStore(t)
		put(t, s, "instances/ab/cd/x.dcm", []byte("first"))
		put(t, s, "instances/ab/cd/x.dcm", []byte("second!"))
		if got := readAll(t, s, "instances/ab/cd/x.dcm", 0, -1); string(got) != "second!" {
			t.Fatalf("read %q, want the second write", got)
		}
	})

	t.Run("LargeStream", func(t *testing.T) {
		if testing.Short() {
			t.Skip("-short")
		}
		s := newStore(t)
		const size = 64 << 20
		src := io.LimitReader(rand.NewChaCha8([32]byte{3}), size)
		w, err := s.Create(t.Context(), "instances/ab/cd/large.dcm")
		if err != nil {
			t.Fatal(err)
		}
		defer w.Abort()
		h := sha256.New()
		if _, err := io.CopyBuffer(w, io.TeeReader(src, h), make([]byte, 1<<20)); err != nil {
			t.Fatal(err)
		}
		want := h.Sum(nil)
		info, err := w.Commit()
		if err != nil || info.Size != size {
			t.Fatalf("Commit = %+v, %v; want size %d", info, err, size)
		}
		r, err := s.Open(t.Context(), "instances/ab/cd/large.dcm", 0, -1)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		h.Reset()
		if n, err := io.CopyBuffer(h, r, make([]byte, 1<<20)); err != nil || n != size {
			t.Fatalf("read back %d bytes, %v", n, err)
		}
		if got := h.Sum(nil); !bytes.Equal(got, want) {
			t.Fatal("large object read back with a different SHA-256")
		}
		// A range deep inside.
		r2, err := s.Open(t.Context(), "instances/ab/cd/large.dcm", size-100, 1000)
		if err != nil {
			t.Fatal(err)
		}
		defer r2.Close()
		if n, _ := io.Copy(io.Discard, r2); n != 100 {
			t.Fatalf("tail range read %d bytes, want 100", n)
		}
	})

	t.Run("StatDelete", func(t *testing.T) {
		s := newStore(t)
		put(t, s, "instances/ab/cd/del.dcm", []byte("12345"))
		info, err := s.Stat(t.Context(), "instances/ab/cd/del.dcm")
		if err != nil || info.Size != 5 || info.Key != "instances/ab/cd/del.dcm" {
			t.Fatalf("Stat = %+v, %v", info, err)
		}
		if err := s.Delete(t.Context(), "instances/ab/cd/del.dcm"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Stat(t.Context(), "instances/ab/cd/del.dcm"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("Stat after Delete error = %v, want ErrNotFound", err)
		}
		if _, err := s.Open(t.Context(), "instances/ab/cd/del.dcm", 0, -1); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("Open after Delete error = %v, want ErrNotFound", err)
		}
	})

	t.Run("DeleteMissingOK", func(t *testing.T) {
		s := newStore(t)
		if err := s.Delete(t.Context(), "instances/00/00/never.dcm"); err != nil {
			t.Fatalf("Delete(missing) = %v, want nil", err)
		}
	})

	t.Run("ListPrefix", func(t *testing.T) {
		s := newStore(t)
		keys := []string{
			"instances/ab/cd/2.dcm",
			"instances/ab/cd/1.dcm",
			"instances/ab/ce/0.dcm",
			"instances/a0/00/9.dcm",
			"instances/ab.x",
			"thumbs/ab/1.png",
			"instancesX/1",
		}
		for _, k := range keys {
			put(t, s, k, []byte(k))
		}
		for _, tc := range []struct {
			prefix string
			want   []string
		}{
			{"", []string{"instances/a0/00/9.dcm", "instances/ab.x", "instances/ab/cd/1.dcm", "instances/ab/cd/2.dcm", "instances/ab/ce/0.dcm", "instancesX/1", "thumbs/ab/1.png"}},
			{"instances/", []string{"instances/a0/00/9.dcm", "instances/ab.x", "instances/ab/cd/1.dcm", "instances/ab/cd/2.dcm", "instances/ab/ce/0.dcm"}},
			{"instances/ab/", []string{"instances/ab/cd/1.dcm", "instances/ab/cd/2.dcm", "instances/ab/ce/0.dcm"}},
			{"instances/ab/c", []string{"instances/ab/cd/1.dcm", "instances/ab/cd/2.dcm", "instances/ab/ce/0.dcm"}},
			{"instances/ab/cd/1", []string{"instances/ab/cd/1.dcm"}},
			{"nothing/", nil},
		} {
			got := listKeys(t, s, tc.prefix)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("List(%q) mismatch (-want +got):\n%s", tc.prefix, diff)
			}
		}
		// Sizes are reported.
		err := s.List(t.Context(), "thumbs/", func(bi storage.BlobInfo) error {
			if bi.Size != int64(len("thumbs/ab/1.png")) {
				return fmt.Errorf("size %d", bi.Size)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		// An error from fn stops the walk and comes back.
		stop := errors.New("stop")
		n := 0
		err = s.List(t.Context(), "", func(storage.BlobInfo) error { n++; return stop })
		if !errors.Is(err, stop) || n != 1 {
			t.Fatalf("List with failing fn = %v after %d calls, want stop after 1", err, n)
		}
		// fn may delete what it is given.
		err = s.List(t.Context(), "instances/ab/", func(bi storage.BlobInfo) error { return s.Delete(t.Context(), bi.Key) })
		if err != nil {
			t.Fatal(err)
		}
		if got := listKeys(t, s, "instances/ab/"); len(got) != 0 {
			t.Fatalf("after deleting in List: %v", got)
		}
	})

	t.Run("ConcurrentWriters", func(t *testing.T) {
		s := newStore(t)
		const n = 16
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := range n {
			wg.Go(func() {
				key := fmt.Sprintf("instances/ab/%02d/%d.dcm", i%4, i)
				w, err := s.Create(t.Context(), key)
				if err != nil {
					errs <- err
					return
				}
				defer w.Abort()
				data := randomBytes(50_000+i, uint64(i))
				for p := data; len(p) > 0; p = p[min(len(p), 4096):] {
					if _, err := w.Write(p[:min(len(p), 4096)]); err != nil {
						errs <- err
						return
					}
				}
				if _, err := w.Commit(); err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		for i := range n {
			key := fmt.Sprintf("instances/ab/%02d/%d.dcm", i%4, i)
			if got := readAll(t, s, key, 0, -1); !bytes.Equal(got, randomBytes(50_000+i, uint64(i))) {
				t.Errorf("%s: content differs", key)
			}
		}
		if got := listKeys(t, s, ""); len(got) != n || !slices.IsSorted(got) {
			t.Fatalf("List = %d keys (sorted: %v), want %d", len(got), slices.IsSorted(got), n)
		}
	})

	t.Run("Ping", func(t *testing.T) {
		if err := newStore(t).Ping(t.Context()); err != nil {
			t.Fatal(err)
		}
	})
}

func randomBytes(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), 0xB1})
	_, _ = r.Read(b)
	return b
}

func put(t *testing.T, s storage.BlobStore, key string, data []byte) {
	t.Helper()
	w, err := s.Create(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Commit(); err != nil {
		t.Fatal(err)
	}
}

func readAll(t *testing.T, s storage.BlobStore, key string, off, n int64) []byte {
	t.Helper()
	r, err := s.Open(t.Context(), key, off, n)
	if err != nil {
		t.Fatalf("Open(%q, %d, %d): %v", key, off, n, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read %q: %v", key, err)
	}
	return b
}

func listKeys(t *testing.T, s storage.BlobStore, prefix string) []string {
	t.Helper()
	var keys []string
	if err := s.List(t.Context(), prefix, func(bi storage.BlobInfo) error {
		keys = append(keys, bi.Key)
		return nil
	}); err != nil {
		t.Fatalf("List(%q): %v", prefix, err)
	}
	return keys
}
