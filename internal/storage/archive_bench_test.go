package storage_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cloudpacs/pacs/internal/storage"
	"github.com/cloudpacs/pacs/internal/storage/fsblob"
	"github.com/cloudpacs/pacs/internal/storage/sqliteindex"
)

// benchArchive is an archive on fsblob + SQLite with the given
// synchronous mode: FULL is the production setting (one WAL fsync per
// index transaction), NORMAL the one of the tests.
func benchArchive(b *testing.B, sync string) *storage.Archive {
	b.Helper()
	dir := b.TempDir()
	blobs, err := fsblob.New(filepath.Join(dir, "blobs"))
	if err != nil {
		b.Fatal(err)
	}
	idx, err := sqliteindex.Open(b.Context(), "file:"+filepath.Join(dir, "index.db")+"?_pragma=synchronous("+sync+")")
	if err != nil {
		b.Fatal(err)
	}
	// No background metadata rebuilds: the figures are of the store alone.
	a := &storage.Archive{Blobs: blobs, Index: idx, MetadataRebuildDelay: -1}
	b.Cleanup(func() { a.Close(); idx.Close() })
	return a
}

// instanceMaker returns copies of a 39 KB CT instance, each under a new
// SOP Instance UID of the same length (every occurrence: meta group and
// data set), so that every Store is a new instance.
type instanceMaker struct {
	data []byte
	sop  string
	n    atomic.Int64
}

func newInstanceMaker(b *testing.B) *instanceMaker {
	b.Helper()
	const file = "images/ct_small_signed_no_window.dcm"
	data, err := os.ReadFile(filepath.Join(corpus, file))
	if err != nil {
		b.Fatal(err)
	}
	var sop string
	for _, m := range readManifest(b) {
		if m.file == file {
			sop = m.sop
		}
	}
	if sop == "" || !bytes.Contains(data, []byte(sop)) {
		b.Fatal("SOP Instance UID not found in the file")
	}
	return &instanceMaker{data: data, sop: sop}
}

// next fills buf (len(data)) with a new instance.
func (m *instanceMaker) next(buf []byte) []byte {
	buf = append(buf[:0], m.data...)
	suffix := strconv.FormatInt(m.n.Add(1), 10)
	uid := m.sop[:len(m.sop)-len(suffix)] + suffix
	for off := 0; ; {
		j := bytes.Index(buf[off:], []byte(m.sop))
		if j < 0 {
			break
		}
		copy(buf[off+j:], uid)
		off += j + len(uid)
	}
	return buf
}

// BenchmarkArchiveStore stores one new 39 KB instance per iteration,
// sequentially.
func BenchmarkArchiveStore(b *testing.B) {
	for _, sync := range []string{"FULL", "NORMAL"} {
		b.Run("sync="+sync, func(b *testing.B) {
			a := benchArchive(b, sync)
			m := newInstanceMaker(b)
			var buf []byte
			b.SetBytes(int64(len(m.data)))
			b.ReportAllocs()
			for b.Loop() {
				buf = m.next(buf)
				if _, err := a.Store(b.Context(), bytes.NewReader(buf), ""); err != nil {
					b.Fatal(fmt.Errorf("store: %w", err))
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "inst/s")
		})
	}
}

// BenchmarkArchiveStoreParallel stores new instances from 4 and 16
// goroutines (2 and 8 per CPU on 2 CPUs), as concurrent STOW requests
// do, and reports the CPU time (user + system, whole process) an
// instance costs without HTTP: compare with fsblob's BenchmarkCommit,
// the durable write alone.
func BenchmarkArchiveStoreParallel(b *testing.B) {
	for _, sync := range []string{"FULL", "NORMAL"} {
		for _, par := range []int{2, 8} {
			b.Run(fmt.Sprintf("sync=%s/c%d", sync, par*runtime.GOMAXPROCS(0)), func(b *testing.B) {
				a := benchArchive(b, sync)
				m := newInstanceMaker(b)
				b.SetBytes(int64(len(m.data)))
				b.SetParallelism(par)
				b.ReportAllocs()
				cpu0 := cpuTime()
				b.RunParallel(func(pb *testing.PB) {
					var buf []byte
					for pb.Next() {
						buf = m.next(buf)
						if _, err := a.Store(b.Context(), bytes.NewReader(buf), ""); err != nil {
							b.Error(fmt.Errorf("store: %w", err))
							return
						}
					}
				})
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "inst/s")
				b.ReportMetric(float64(cpuTime()-cpu0)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
			})
		}
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
