package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// floodConfig is `pacsbench flood`: many uploads at once, large and small,
// against a server whose memory is watched (the server's peak resident
// set, VmHWM in /proc/PID/status, so start it fresh for each run).
type floodConfig struct {
	URL        string        `json:"url"`
	PID        int           `json:"pid"`
	Large      int           `json:"large"`       // concurrent STOWs of one large instance each
	LargeBytes int64         `json:"large_bytes"` // pixel bytes of each large instance
	Small      int           `json:"small"`       // concurrent STOWs of one small instance each
	Timeout    time.Duration `json:"timeout_ns"`  // per request
	MaxTotal   time.Duration `json:"max_total_ns"`
}

// floodReport is its JSON output.
type floodReport struct {
	Config      floodConfig    `json:"config"`
	PeakRSSMiB  float64        `json:"peak_rss_mib"`  // the server's VmHWM after the run
	StartRSSMiB float64        `json:"start_rss_mib"` // its VmRSS before
	Seconds     float64        `json:"seconds"`
	Large       map[string]int `json:"large"` // outcome -> count: "200", "503", "error: …"
	Small       map[string]int `json:"small"`
	LargeMBps   float64        `json:"large_mb_per_s"` // stored large bytes / wall time
}

func cmdFlood(args []string, stdout io.Writer) error {
	var cfg floodConfig
	fs := flag.NewFlagSet("flood", flag.ContinueOnError)
	fs.StringVar(&cfg.URL, "url", "", "DICOMweb root of the server (loopback only)")
	fs.IntVar(&cfg.PID, "pid", 0, "process ID of the server, whose peak RSS is reported (Linux /proc)")
	fs.IntVar(&cfg.Large, "large", 32, "concurrent STOW requests of one large instance each")
	fs.Int64Var(&cfg.LargeBytes, "large-bytes", 200<<20, "pixel data bytes of each large instance")
	fs.IntVar(&cfg.Small, "small", 1000, "concurrent STOW requests of one small instance each")
	fs.DurationVar(&cfg.Timeout, "timeout", 10*time.Minute, "per request")
	fs.DurationVar(&cfg.MaxTotal, "max-total", 15*time.Minute, "the whole run")
	out := fs.String("out", "", "write the JSON report here")
	if err := fs.Parse(args); err != nil {
		return err
	}
	root, err := checkURL(cfg.URL)
	if err != nil {
		return err
	}
	cfg.URL = root
	if cfg.PID <= 0 {
		return errors.New("--pid is required (the server's process, for its peak RSS)")
	}
	startRSS, err := procStatusKiB(cfg.PID, "VmRSS")
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.MaxTotal)
	defer cancel()
	client := &http.Client{
		Timeout: cfg.Timeout,
		Transport: &http.Transport{
			MaxIdleConnsPerHost: cfg.Large + cfg.Small,
			DisableCompression:  true,
			WriteBufferSize:     64 << 10,
		},
	}
	rep := floodReport{Config: cfg, StartRSSMiB: float64(startRSS) / 1024, Large: map[string]int{}, Small: map[string]int{}}
	var (
		mu     sync.Mutex
		wg     sync.WaitGroup
		stored atomic.Int64
	)
	record := func(m map[string]int, outcome string) {
		mu.Lock()
		m[outcome]++
		mu.Unlock()
	}
	run := uint64(time.Now().UnixNano())
	t0 := time.Now()
	for i := range cfg.Large {
		wg.Go(func() {
			inst := floodInstance{run: run, n: i + 1, rows: 512, cols: 512, frames: int(max(cfg.LargeBytes/(512*512*2), 1))}
			o := floodPost(ctx, client, root, inst)
			if o == "200" {
				stored.Add(inst.pixelBytes())
			}
			record(rep.Large, o)
		})
	}
	for i := range cfg.Small {
		wg.Go(func() {
			record(rep.Small, floodPost(ctx, client, root, floodInstance{run: run, n: 100000 + i, rows: 64, cols: 64, frames: 1}))
		})
	}
	wg.Wait()
	rep.Seconds = round1(time.Since(t0).Seconds())
	rep.LargeMBps = round1(float64(stored.Load()) / 1e6 / time.Since(t0).Seconds())
	peak, err := procStatusKiB(cfg.PID, "VmHWM")
	if err != nil {
		return err
	}
	rep.PeakRSSMiB = round1(float64(peak) / 1024)
	fmt.Fprintf(stdout, "flood: %d × %d MB + %d small STOWs at once in %.1f s: server peak RSS %.1f MiB (%.1f MiB before)\n",
		cfg.Large, cfg.LargeBytes>>20, cfg.Small, rep.Seconds, rep.PeakRSSMiB, rep.StartRSSMiB)
	fmt.Fprintf(stdout, "  large: %v  (%.1f MB/s stored)\n  small: %v\n", rep.Large, rep.LargeMBps, rep.Small)
	if *out != "" {
		return writeJSON(*out, rep)
	}
	return nil
}

// floodPost sends one instance as a single-part STOW, streamed, and
// returns the outcome: the status code, or "error: …".
func floodPost(ctx context.Context, c *http.Client, root string, inst floodInstance) string {
	boundary := "flood" + strconv.Itoa(inst.n)
	head := "--" + boundary + "\r\nContent-Type: application/dicom\r\n\r\n"
	tail := "\r\n--" + boundary + "--\r\n"
	hdr := inst.header()
	body := io.MultiReader(strings.NewReader(head), strings.NewReader(string(hdr)),
		io.LimitReader(patternReader{}, inst.pixelBytes()), strings.NewReader(tail))
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, root+"/studies", body)
	if err != nil {
		return "error: " + err.Error()
	}
	req.ContentLength = int64(len(head)+len(hdr)+len(tail)) + inst.pixelBytes()
	req.Header.Set("Content-Type", `multipart/related; type="application/dicom"; boundary=`+boundary)
	req.Header.Set("Accept", acceptJSON)
	resp, err := c.Do(req)
	if err != nil {
		msg := err.Error()
		if i := strings.LastIndex(msg, ": "); i >= 0 {
			msg = msg[i+2:] // the cause, not the URL: fewer distinct keys
		}
		return "error: " + msg
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return strconv.Itoa(resp.StatusCode)
}

// patternReader yields an endless, cheap byte pattern (pixel values).
type patternReader struct{}

func (patternReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(i * 7)
	}
	return len(p), nil
}

// floodInstance is a synthetic 16-bit MONOCHROME2 instance whose pixel
// data matches its attributes; only its header is held in memory.
type floodInstance struct {
	run                uint64
	n                  int
	rows, cols, frames int
}

func (f floodInstance) pixelBytes() int64 { return int64(f.rows) * int64(f.cols) * 2 * int64(f.frames) }

// header is the Part 10 preamble, meta group and data set up to the
// PixelData value (Explicit VR Little Endian).
func (f floodInstance) header() []byte {
	const ctImage = "1.2.840.10008.5.1.4.1.1.2"
	const explicitLE = "1.2.840.10008.1.2.1"
	uid := func(kind int) string { return fmt.Sprintf("2.25.%d%d%09d", f.run%1e12, kind, f.n) }
	study := fmt.Sprintf("2.25.%d9%09d", f.run%1e12, f.n%50) // 50 studies
	sop := uid(1)
	var meta, ds elems
	meta.add(0x00020001, "OB", []byte{0, 1})
	meta.addStr(0x00020002, "UI", ctImage)
	meta.addStr(0x00020003, "UI", sop)
	meta.addStr(0x00020010, "UI", explicitLE)
	var out elems
	out.b = make([]byte, 128, 1024)
	out.b = append(out.b, "DICM"...)
	out.add(0x00020000, "UL", binary.LittleEndian.AppendUint32(nil, uint32(len(meta.b))))
	out.b = append(out.b, meta.b...)
	ds.addStr(0x00080016, "UI", ctImage)
	ds.addStr(0x00080018, "UI", sop)
	ds.addStr(0x00080060, "CS", "CT")
	ds.addStr(0x00100010, "PN", "FLOOD^TEST")
	ds.addStr(0x00100020, "LO", "FLOOD"+strconv.Itoa(f.n%50))
	ds.addStr(0x0020000D, "UI", study)
	ds.addStr(0x0020000E, "UI", uid(2))
	ds.add(0x00280002, "US", []byte{1, 0})
	ds.addStr(0x00280004, "CS", "MONOCHROME2")
	ds.addStr(0x00280008, "IS", strconv.Itoa(f.frames))
	ds.add(0x00280010, "US", binary.LittleEndian.AppendUint16(nil, uint16(f.rows)))
	ds.add(0x00280011, "US", binary.LittleEndian.AppendUint16(nil, uint16(f.cols)))
	ds.add(0x00280100, "US", []byte{16, 0})
	ds.add(0x00280101, "US", []byte{16, 0})
	ds.add(0x00280102, "US", []byte{15, 0})
	ds.add(0x00280103, "US", []byte{0, 0})
	out.b = append(out.b, ds.b...)
	// PixelData header; the value follows as a stream.
	out.b = binary.LittleEndian.AppendUint16(out.b, 0x7FE0)
	out.b = binary.LittleEndian.AppendUint16(out.b, 0x0010)
	out.b = append(out.b, "OW\x00\x00"...)
	return binary.LittleEndian.AppendUint32(out.b, uint32(f.pixelBytes()))
}

// elems appends Explicit VR Little Endian elements.
type elems struct{ b []byte }

func (e *elems) add(tag uint32, vr string, v []byte) {
	e.b = binary.LittleEndian.AppendUint16(e.b, uint16(tag>>16))
	e.b = binary.LittleEndian.AppendUint16(e.b, uint16(tag))
	e.b = append(e.b, vr...)
	if longVR(vr) {
		e.b = append(e.b, 0, 0)
		e.b = binary.LittleEndian.AppendUint32(e.b, uint32(len(v)))
	} else {
		e.b = binary.LittleEndian.AppendUint16(e.b, uint16(len(v)))
	}
	e.b = append(e.b, v...)
}

// addStr pads the value to even length (NUL for UI, space otherwise).
func (e *elems) addStr(tag uint32, vr, s string) {
	v := []byte(s)
	if len(v)%2 == 1 {
		pad := byte(' ')
		if vr == "UI" {
			pad = 0
		}
		v = append(v, pad)
	}
	e.add(tag, vr, v)
}

// procStatusKiB reads one "Name: N kB" line of /proc/PID/status.
func procStatusKiB(pid int, name string) (int64, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, fmt.Errorf("the server's memory: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+":"); ok {
			return strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
		}
	}
	return 0, fmt.Errorf("the server's memory: no %s in /proc/%d/status", name, pid)
}
