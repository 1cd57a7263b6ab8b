package main

import (
	"github.com/cloudpacs/pacs/internal/testenv"

	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Geometry of the generated instance: 1000 frames of 1024 × 1024 8-bit
// MONOCHROME2 pixels, 1 GiB of pixel data.
const (
	bigRows, bigCols = 1024, 1024
	bigFrames        = 1000
	bigFrameSize     = bigRows * bigCols
	bigPixelBytes    = int64(bigFrameSize) * bigFrames
	rssLimit         = 100 << 20 // the bound on RSS growth
)

// pixelPattern is 1 MiB of pseudo-random bytes; frame f is the pattern
// rotated by frameShift(f), so frames differ and cost nothing to make.
var pixelPattern = sync.OnceValue(func() []byte {
	p := make([]byte, bigFrameSize)
	x := uint32(2463534242)
	for i := range p {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		p[i] = byte(x)
	}
	return p
})

func frameShift(f int) int { return (f * 4099) % bigFrameSize }

// appendFrame appends frame f (0-based) to dst.
func appendFrame(dst []byte, f int) []byte {
	p, s := pixelPattern(), frameShift(f)
	return append(append(dst, p[s:]...), p[:s]...)
}

// explicitLE appends one Explicit VR Little Endian element.
func explicitLE(dst []byte, group, elem uint16, vr string, value []byte) []byte {
	pad := byte(' ')
	if vr == "UI" || vr == "OB" {
		pad = 0
	}
	if len(value)%2 == 1 {
		value = append(bytes.Clone(value), pad)
	}
	dst = binary.LittleEndian.AppendUint16(dst, group)
	dst = binary.LittleEndian.AppendUint16(dst, elem)
	dst = append(dst, vr...)
	switch vr {
	case "OB", "OW", "SQ", "UN", "UT":
		dst = append(dst, 0, 0)
		dst = binary.LittleEndian.AppendUint32(dst, uint32(len(value)))
	default:
		dst = binary.LittleEndian.AppendUint16(dst, uint16(len(value)))
	}
	return append(dst, value...)
}

func us(v uint16) []byte { return binary.LittleEndian.AppendUint16(nil, v) }

// bigHeader is a Part 10 header of a multi-frame grayscale byte secondary
// capture instance, up to and including the PixelData element header of
// a value of bigPixelBytes.
func bigHeader(study, series, sop string) []byte {
	const sopClass = "1.2.840.10008.5.1.4.1.1.7.2" // Multi-frame Grayscale Byte SC
	var meta []byte
	meta = explicitLE(meta, 0x0002, 0x0001, "OB", []byte{0, 1})
	meta = explicitLE(meta, 0x0002, 0x0002, "UI", []byte(sopClass))
	meta = explicitLE(meta, 0x0002, 0x0003, "UI", []byte(sop))
	meta = explicitLE(meta, 0x0002, 0x0010, "UI", []byte("1.2.840.10008.1.2.1"))
	h := make([]byte, 128, 1024)
	h = append(h, "DICM"...)
	h = explicitLE(h, 0x0002, 0x0000, "UL", binary.LittleEndian.AppendUint32(nil, uint32(len(meta))))
	h = append(h, meta...)
	for _, e := range []struct {
		g, e uint16
		vr   string
		v    []byte
	}{
		{0x0008, 0x0016, "UI", []byte(sopClass)},
		{0x0008, 0x0018, "UI", []byte(sop)},
		{0x0008, 0x0060, "CS", []byte("OT")},
		{0x0010, 0x0010, "PN", []byte("RSS^Test")},
		{0x0010, 0x0020, "LO", []byte("RSS1")},
		{0x0020, 0x000D, "UI", []byte(study)},
		{0x0020, 0x000E, "UI", []byte(series)},
		{0x0020, 0x0013, "IS", []byte("1")},
		{0x0028, 0x0002, "US", us(1)},
		{0x0028, 0x0004, "CS", []byte("MONOCHROME2")},
		{0x0028, 0x0008, "IS", []byte(strconv.Itoa(bigFrames))},
		{0x0028, 0x0010, "US", us(bigRows)},
		{0x0028, 0x0011, "US", us(bigCols)},
		{0x0028, 0x0100, "US", us(8)},
		{0x0028, 0x0101, "US", us(8)},
		{0x0028, 0x0102, "US", us(7)},
		{0x0028, 0x0103, "US", us(0)},
	} {
		h = explicitLE(h, e.g, e.e, e.vr, e.v)
	}
	h = binary.LittleEndian.AppendUint16(h, 0x7FE0)
	h = binary.LittleEndian.AppendUint16(h, 0x0010)
	h = append(h, "OB\x00\x00"...)
	return binary.LittleEndian.AppendUint32(h, uint32(bigPixelBytes))
}

// procStatus reads a kB field ("VmRSS", "VmHWM") of /proc/<pid>/status in bytes.
func procStatus(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// TestSTOW_hugeInstanceBoundedRSS streams a generated 1 GiB multi-frame
// instance through STOW-RS into the real server and measures the
// server's resident memory meanwhile: it must grow by less than 100 MB
// (DESIGN.md decision 1). Then the instance must be findable and its
// frames right.
func TestSTOW_hugeInstanceBoundedRSS(t *testing.T) {
	dir := hugeTestDir(t, bigPixelBytes+256<<20) // the object, in the folder store under dir
	hugeSTOW(t, startServer(t, nil, "--data", filepath.Join(dir, "data")), filepath.Join(dir, "data", "blobs"))
}

// TestSTOW_hugeInstanceBoundedRSS_S3 is the same through the S3 blob
// store: the instance goes up in multipart parts while the request body
// is still arriving, with the server's memory bounded by the part buffers.
func TestSTOW_hugeInstanceBoundedRSS_S3(t *testing.T) {
	dir := hugeTestDir(t, 64<<20) // the index only: the object goes to the S3 server
	hugeSTOW(t, startServer(t, nil, "--data", filepath.Join(dir, "data"), "--blob", testenv.S3URL(t)), "")
}

// hugeTestDir returns a temporary folder with need bytes free, or skips
// the test where it cannot run: under -short, and, unless the run
// requires every resource (testenv.Missing: PACS_TEST_REQUIRE_TOOLS=1,
// as make test sets, fails instead), without /proc or the disk space.
func hugeTestDir(t *testing.T, need int64) string {
	if testing.Short() {
		t.Skip("stores a 1 GiB instance")
	}
	if _, err := os.Stat("/proc/self/status"); err != nil {
		testenv.Missing(t, "needs /proc/<pid>/status (Linux)")
	}
	dir := t.TempDir()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	if free := int64(st.Bavail) * st.Bsize; free < need {
		testenv.Missing(t, fmt.Sprintf("%.2f GiB free in %s; the test needs %.2f GiB (set TMPDIR to a larger disk)",
			float64(free)/(1<<30), dir, float64(need)/(1<<30)))
	}
	return dir
}

// hugeSTOW stores the generated instance through srv, measuring srv's
// memory, then checks it back; blobDir, when not empty, is the folder
// store whose single object must have the instance's size.
func hugeSTOW(t *testing.T, srv *server, blobDir string) {
	base := srv.base
	pid := srv.cmd.Process.Pid
	before, err := procStatus(pid, "VmRSS")
	if err != nil {
		t.Fatal(err)
	}

	const study, series, sop = "2.25.1000000000000000001", "2.25.1000000000000000001.1", "2.25.1000000000000000001.1.1"
	hdr := bigHeader(study, series, sop)
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		w, err := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {"application/dicom"}})
		if err != nil {
			pw.CloseWithError(err)
			return
		}
		if _, err := w.Write(hdr); err != nil {
			pw.CloseWithError(err)
			return
		}
		buf := make([]byte, 0, bigFrameSize)
		for f := range bigFrames {
			if _, err := w.Write(appendFrame(buf[:0], f)); err != nil {
				pw.CloseWithError(err)
				return
			}
		}
		pw.CloseWithError(mw.Close())
	}()

	var peakSampled int64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if v, err := procStatus(pid, "VmRSS"); err == nil {
					peakSampled = max(peakSampled, v)
				}
			}
		}
	}()
	start := time.Now()
	res, err := http.Post(base+"/dicom-web/studies", `multipart/related; type="application/dicom"; boundary=`+mw.Boundary(), pr)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	elapsed := time.Since(start)
	close(stop)
	<-sampled
	hwm, err := procStatus(pid, "VmHWM")
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 200 {
		t.Fatalf("STOW: %d %s", res.StatusCode, body)
	}
	total := int64(len(hdr)) + bigPixelBytes
	growth := max(hwm, peakSampled) - before
	t.Logf("STOW of a %d-byte instance in %v (%.0f MB/s): server RSS before %.1f MiB, peak sampled %.1f MiB, VmHWM %.1f MiB, growth %.1f MiB (limit %d MiB)",
		total, elapsed.Round(time.Millisecond), float64(total)/elapsed.Seconds()/1e6,
		float64(before)/(1<<20), float64(peakSampled)/(1<<20), float64(hwm)/(1<<20), float64(growth)/(1<<20), rssLimit>>20)
	if growth >= rssLimit {
		t.Errorf("server RSS grew by %.1f MiB storing a 1 GiB instance, want < %d MiB", float64(growth)/(1<<20), rssLimit>>20)
	}

	// Retrievable: QIDO finds it with its frame count, frame 500 is the
	// generated frame, the stored object has the right size.
	get := func(path, accept string) (int, []byte) {
		req, _ := http.NewRequest("GET", base+path, nil)
		req.Header.Set("Accept", accept)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, b
	}
	code, b := get("/dicom-web/instances?SOPInstanceUID="+sop+"&includefield=00280008", "application/dicom+json")
	var found []map[string]struct{ Value []any }
	if code != 200 || json.Unmarshal(b, &found) != nil || len(found) != 1 {
		t.Fatalf("QIDO: %d %s", code, b)
	}
	if nf := found[0]["00280008"].Value; len(nf) != 1 || fmt.Sprint(nf[0]) != strconv.Itoa(bigFrames) {
		t.Errorf("QIDO NumberOfFrames = %v", nf)
	}
	code, b = get("/dicom-web/studies/"+study+"/series/"+series+"/instances/"+sop+"/frames/500", "application/octet-stream")
	if code != 200 || len(b) != bigFrameSize || !bytes.Equal(b, appendFrame(nil, 499)) {
		t.Fatalf("frame 500: %d, %d bytes, right bytes %v", code, len(b), bytes.Equal(b, appendFrame(nil, 499)))
	}
	req, _ := http.NewRequest("HEAD", base+"/dicom-web/studies/"+study+"/series/"+series+"/instances/"+sop, nil)
	req.Header.Set("Accept", "application/dicom; transfer-syntax=*")
	hres, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	hres.Body.Close()
	if hres.StatusCode != 200 || hres.ContentLength != total {
		t.Errorf("HEAD instance: %d, Content-Length %d, want %d", hres.StatusCode, hres.ContentLength, total)
	}
	if blobDir == "" {
		return
	}
	var sizes []int64
	err = filepath.WalkDir(filepath.Join(blobDir, "instances"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			sizes = append(sizes, fi.Size())
		}
		return err
	})
	if err != nil || len(sizes) != 1 || sizes[0] != total {
		t.Errorf("stored objects %v (%v), want one of %d bytes", sizes, err, total)
	}
}
