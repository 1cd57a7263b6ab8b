package fsblob

import (
	"crypto/rand"
	"encoding/hex"
	"syscall"
	"testing"
	"time"
)

// BenchmarkCommit is the floor of a durable small write on the folder
// store: Create, one 39 KB Write (a typical small CT instance), Commit
// (fsync of the file, rename, fsync of its folder), by 4 writers at once
// (the STOW concurrency of make bench) into 256 folders like instance
// keys. It reports objects/s and the CPU time (user + system, the whole
// process) an object costs: what any durable ingest pays before
// parsing, HTTP or the index. Run it on the disk the data lives on
// (TMPDIR).
func BenchmarkCommit(b *testing.B) {
	s, err := New(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	data := make([]byte, 39<<10)
	b.SetBytes(int64(len(data)))
	b.SetParallelism(2) // × GOMAXPROCS 2 here: 4 writers
	cpu0 := cpuTime()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		var r [16]byte
		for pb.Next() {
			_, _ = rand.Read(r[:])
			h := hex.EncodeToString(r[:])
			w, err := s.Create(b.Context(), "instances/"+h[:2]+"/"+h+".dcm")
			if err != nil {
				b.Error(err)
				return
			}
			if _, err := w.Write(data); err != nil {
				b.Error(err)
				return
			}
			if _, err := w.Commit(); err != nil {
				b.Error(err)
				return
			}
		}
	})
	el := time.Since(start)
	b.ReportMetric(float64(b.N)/el.Seconds(), "objects/s")
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
