package main

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// op is one request of a phase: it does the request i and says how long
// the request took (to the last byte of the response), how many bytes it
// moved, how many items (instances) it carried, and whether it failed.
// Checking the answer happens after the clock stops.
type op func(ctx context.Context, i int) (lat time.Duration, bytes int64, items int, err error)

// limits bound a phase: it stops after Count requests or after Duration,
// whichever comes first. Warmup requests run first and are not counted.
type limits struct {
	Count    int
	Duration time.Duration
	Warmup   int
	// PID, when set, is the server's process: its CPU time (user +
	// system) during the measurement, warm-up excluded, is reported.
	PID int
}

// sample is what a phase measured.
type sample struct {
	lats       []time.Duration
	errors     int
	firstError string
	bytes      int64
	items      int64
	elapsed    time.Duration
	stopped    string        // why it stopped early, "" when all Count ran
	cpu        time.Duration // the server's CPU time (limits.PID); < 0: unknown
}

// runLoad runs do with conc workers within lim.
func runLoad(ctx context.Context, conc int, lim limits, do op) sample {
	if conc < 1 {
		conc = 1
	}
	for i := 0; i < lim.Warmup; i++ {
		if ctx.Err() != nil {
			break
		}
		do(ctx, -1-i) //nolint:errcheck // warm-up: result ignored
	}
	// Collect the client's garbage before the clock starts, as go test
	// does before each benchmark: what the previous measurement left (a
	// metadata phase leaves hundreds of MB) is not collected inside this
	// one's latencies.
	runtime.GC()
	// The time limit stops new requests from starting; requests in flight
	// finish (each is bounded by the client's timeout), so that a slow
	// server still yields samples. ctx cancellation (Ctrl-C, --max-total)
	// cuts them.
	cpu0, cpuErr := time.Duration(0), error(nil)
	if lim.PID > 0 {
		cpu0, cpuErr = procCPU(lim.PID)
	}
	deadline := time.Now().Add(lim.Duration)
	var (
		next    atomic.Int64
		mu      sync.Mutex
		s       sample
		wg      sync.WaitGroup
		timeout atomic.Bool
	)
	start := time.Now()
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var lats []time.Duration
			var bytes, items int64
			var errs int
			var first string
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= lim.Count {
					break
				}
				if time.Now().After(deadline) {
					timeout.Store(true)
					break
				}
				lat, n, k, err := do(ctx, i)
				if err != nil {
					if ctx.Err() != nil {
						break // cut by the caller: neither a sample nor an error
					}
					errs++
					if first == "" {
						first = err.Error()
					}
					continue
				}
				lats = append(lats, lat)
				bytes += n
				items += int64(k)
			}
			mu.Lock()
			s.lats = append(s.lats, lats...)
			s.bytes += bytes
			s.items += items
			s.errors += errs
			if s.firstError == "" {
				s.firstError = first
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	s.elapsed = time.Since(start)
	s.cpu = -1
	if lim.PID > 0 && cpuErr == nil {
		if cpu1, err := procCPU(lim.PID); err == nil {
			s.cpu = cpu1 - cpu0
		}
	}
	switch {
	case ctx.Err() != nil:
		s.stopped = "cancelled: " + context.Cause(ctx).Error()
	case timeout.Load():
		s.stopped = fmt.Sprintf("time limit %s reached", lim.Duration)
	}
	return s
}

// result is one line of the report.
type result struct {
	Phase       string  `json:"phase"`
	Concurrency int     `json:"concurrency"`
	Requests    int     `json:"requests"`
	Errors      int     `json:"errors"`
	FirstError  string  `json:"first_error,omitempty"`
	Stopped     string  `json:"stopped,omitempty"`
	Seconds     float64 `json:"seconds"`
	ReqPerSec   float64 `json:"req_per_s"`
	ItemsPerSec float64 `json:"items_per_s,omitempty"` // instances/s (STOW)
	MBPerSec    float64 `json:"mb_per_s"`              // 10^6 bytes/s of bodies
	P50ms       float64 `json:"p50_ms"`
	P90ms       float64 `json:"p90_ms"`
	P99ms       float64 `json:"p99_ms"`
	MaxMs       float64 `json:"max_ms"`
	MeanMs      float64 `json:"mean_ms"`
	// ServerCPUms is the server's CPU time (user + system, from
	// /proc/PID/stat) per request of the measurement, errors included;
	// 0 when not measured (no --pid).
	ServerCPUms float64 `json:"server_cpu_ms_per_req,omitempty"`
	Note        string  `json:"note,omitempty"`
}

func (s sample) result(phase string, conc int) result {
	r := result{
		Phase:       phase,
		Concurrency: conc,
		Requests:    len(s.lats),
		Errors:      s.errors,
		FirstError:  s.firstError,
		Stopped:     s.stopped,
		Seconds:     s.elapsed.Seconds(),
	}
	if sec := s.elapsed.Seconds(); sec > 0 {
		r.ReqPerSec = float64(len(s.lats)) / sec
		r.ItemsPerSec = float64(s.items) / sec
		r.MBPerSec = float64(s.bytes) / 1e6 / sec
	}
	if n := len(s.lats) + s.errors; s.cpu >= 0 && n > 0 {
		r.ServerCPUms = math.Round(float64(s.cpu)/float64(n)/1e3) / 1e3
	}
	if len(s.lats) == 0 {
		return r
	}
	lats := slices.Clone(s.lats)
	slices.Sort(lats)
	var sum time.Duration
	for _, l := range lats {
		sum += l
	}
	r.P50ms = ms(percentile(lats, 50))
	r.P90ms = ms(percentile(lats, 90))
	r.P99ms = ms(percentile(lats, 99))
	r.MaxMs = ms(lats[len(lats)-1])
	r.MeanMs = ms(sum / time.Duration(len(lats)))
	return r
}

// percentile is the nearest-rank percentile of sorted lats.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }

// clockTicks is USER_HZ, the unit of the times in /proc/PID/stat: 100 on
// every Linux architecture Go supports (sysconf(_SC_CLK_TCK) needs cgo).
const clockTicks = 100

// procCPU is the user + system CPU time of process pid so far.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces:
	// count fields after the last ")". utime and stime are fields 14, 15.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: bad utime/stime %q %q", pid, f[11], f[12])
	}
	return time.Duration(utime+stime) * time.Second / clockTicks, nil
}
