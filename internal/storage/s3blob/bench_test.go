package s3blob

import (
	"fmt"
	"io"
	"sync/atomic"
	"testing"

	"github.com/cloudpacs/pacs/internal/storage"
	"github.com/cloudpacs/pacs/internal/storage/fsblob"
)

// Benchmarks against the test server, with the folder store beside it as
// the yardstick (same machine, same run):
//
//	eval "$(scripts/s3.sh start)"
//	go test -run '^$' -bench . -benchtime 2s ./internal/storage/s3blob

func benchStores(b *testing.B) map[string]storage.BlobStore {
	fs, err := fsblob.New(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	return map[string]storage.BlobStore{"fs": fs, "s3": newTestStore(b, nil)}
}

func putOnce(b *testing.B, s storage.BlobStore, key string, data []byte) {
	w, err := s.Create(b.Context(), key)
	if err != nil {
		b.Fatal(err)
	}
	defer w.Abort()
	for p := data; len(p) > 0; p = p[min(len(p), 32<<10):] { // as io.Copy would
		if _, err := w.Write(p[:min(len(p), 32<<10)]); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := w.Commit(); err != nil {
		b.Fatal(err)
	}
}

func BenchmarkPut(b *testing.B) {
	stores := benchStores(b)
	for _, backend := range []string{"fs", "s3"} {
		s := stores[backend]
		for _, size := range []int{40_000, 64 << 10, 8 << 20, 20 << 20} {
			data := randomBytes(size, 7)
			b.Run(fmt.Sprintf("%s/size=%d", backend, size), func(b *testing.B) {
				b.SetBytes(int64(size))
				b.ReportAllocs()
				for i := 0; b.Loop(); i++ {
					putOnce(b, s, fmt.Sprintf("instances/%02x/%02x/%d-%d.dcm", i%256, size%256, size, i), data)
				}
			})
		}
		// Many small instances at once (a CT series through STOW).
		data := randomBytes(40_000, 8)
		b.Run(fmt.Sprintf("%s/size=40000/parallel=16", backend), func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.SetParallelism(8) // × GOMAXPROCS (2 here) = 16 writers
			var n atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := n.Add(1)
					putOnce(b, s, fmt.Sprintf("instances/%02x/pp/%d.dcm", i%256, i), data)
				}
			})
		})
	}
}

func BenchmarkRangeRead(b *testing.B) {
	stores := benchStores(b)
	const objSize, rangeSize = 16 << 20, 64 << 10
	data := randomBytes(objSize, 9)
	buf := make([]byte, rangeSize)
	for _, backend := range []string{"fs", "s3"} {
		s := stores[backend]
		putOnce(b, s, "instances/00/00/range.dcm", data)
		b.Run(backend+"/64KiB", func(b *testing.B) {
			b.SetBytes(rangeSize)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				off := int64(i*7919*rangeSize) % (objSize - rangeSize)
				r, err := s.Open(b.Context(), "instances/00/00/range.dcm", off, rangeSize)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(r, buf); err != nil {
					b.Fatal(err)
				}
				r.Close()
			}
		})
	}
}
