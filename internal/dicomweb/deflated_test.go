package dicomweb

import (
	"bytes"
	"compress/flate"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cloudpacs/pacs/internal/storage"
)

// readCounter is a blob store that counts the bytes its readers deliver.
type readCounter struct {
	storage.BlobStore
	n atomic.Int64
}

func (c *readCounter) Open(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	rc, err := c.BlobStore.Open(ctx, key, off, n)
	if err != nil {
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{readerFunc(func(p []byte) (int, error) {
		n, err := rc.Read(p)
		c.n.Add(int64(n))
		return n, err
	}), rc}, nil
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

// multiframePart10 is a multi-frame 8-bit grayscale Secondary Capture
// instance of frames rows×cols frames holding px, in Explicit VR Little
// Endian or, deflated, in Deflated Explicit VR Little Endian (the data
// set after the file meta group as one raw deflate stream).
func multiframePart10(study, series, sop string, rows, cols, frames int, px []byte, deflated bool) []byte {
	var b []byte
	el := func(group, elem uint16, vr string, val []byte) {
		if len(val)%2 == 1 {
			pad := byte(' ')
			if vr == "UI" || vr == "OB" {
				pad = 0
			}
			val = append(val, pad)
		}
		b = binary.LittleEndian.AppendUint16(b, group)
		b = binary.LittleEndian.AppendUint16(b, elem)
		b = append(b, vr...)
		switch vr {
		case "OB", "OW", "SQ", "UN", "UT":
			b = append(b, 0, 0)
			b = binary.LittleEndian.AppendUint32(b, uint32(len(val)))
		default:
			b = binary.LittleEndian.AppendUint16(b, uint16(len(val)))
		}
		b = append(b, val...)
	}
	us := func(v int) []byte { return binary.LittleEndian.AppendUint16(nil, uint16(v)) }
	const sopClass = "1.2.840.10008.5.1.4.1.1.7.2" // Multi-frame Grayscale Byte SC
	ts := tsExplicitLE
	if deflated {
		ts = tsDeflatedLE
	}
	el(0x0002, 0x0001, "OB", []byte{0, 1})
	el(0x0002, 0x0002, "UI", []byte(sopClass))
	el(0x0002, 0x0003, "UI", []byte(sop))
	el(0x0002, 0x0010, "UI", []byte(ts))
	meta := b
	b = nil
	el(0x0002, 0x0000, "UL", binary.LittleEndian.AppendUint32(nil, uint32(len(meta))))
	head := append(append(append(make([]byte, 128), "DICM"...), b...), meta...)
	b = nil
	el(0x0008, 0x0016, "UI", []byte(sopClass))
	el(0x0008, 0x0018, "UI", []byte(sop))
	el(0x0008, 0x0060, "CS", []byte("OT"))
	el(0x0010, 0x0010, "PN", []byte("FRAMES^DEFLATED"))
	el(0x0020, 0x000D, "UI", []byte(study))
	el(0x0020, 0x000E, "UI", []byte(series))
	el(0x0020, 0x0013, "IS", []byte("1"))
	el(0x0028, 0x0002, "US", us(1))
	el(0x0028, 0x0004, "CS", []byte("MONOCHROME2"))
	el(0x0028, 0x0008, "IS", []byte(strconv.Itoa(frames)))
	el(0x0028, 0x0010, "US", us(rows))
	el(0x0028, 0x0011, "US", us(cols))
	el(0x0028, 0x0100, "US", us(8))
	el(0x0028, 0x0101, "US", us(8))
	el(0x0028, 0x0102, "US", us(7))
	el(0x0028, 0x0103, "US", us(0))
	el(0x7FE0, 0x0010, "OB", px)
	if !deflated {
		return append(head, b...)
	}
	var z bytes.Buffer
	zw, _ := flate.NewWriter(&z, flate.DefaultCompression)
	zw.Write(b)
	zw.Close()
	return append(head, z.Bytes()...)
}

// cpuTime is the user+system CPU time of this process so far.
func cpuTime(t *testing.T) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// All 2,000 frames of a deflated multi-frame instance in one request (a
// frame list, and PixelData as bulk data): the stored stream is read
// and inflated once, not once per frame (which inflated the data set
// from its start for every frame, quadratic in the number of frames).
// The measure is the bytes the blob store delivers, against the same
// frames stored uncompressed: every byte read of the deflated object is
// inflated, so this counts the inflation work deterministically. CPU
// time (user+system of the test process, client and server) is logged.
func TestRetrieveFrames_deflatedManyFramesInflateOnce(t *testing.T) {
	const rows, cols, frames = 16, 16, 2000
	r := rand.New(rand.NewPCG(3, 4))
	px := make([]byte, rows*cols*frames)
	for i := range px {
		px[i] = byte(r.IntN(16)) // some redundancy: deflate does real work
	}
	var blobs *readCounter
	s := newTestServer(t, func(cfg *Config) {
		blobs = &readCounter{BlobStore: cfg.Archive.Blobs}
		cfg.Archive.Blobs = blobs
	})
	const study = "2.25.7001"
	objs := map[string][]byte{
		"native":   multiframePart10(study, study+".1", study+".1.1", rows, cols, frames, px, false),
		"deflated": multiframePart10(study, study+".2", study+".2.1", rows, cols, frames, px, true),
	}
	t.Logf("stored: native %d bytes, deflated %d bytes", len(objs["native"]), len(objs["deflated"]))
	body, ct := multipartBody(t, `"application/dicom"`, part{"application/dicom", objs["native"]}, part{"application/dicom", objs["deflated"]})
	if res := s.do(t, "POST", "/dicom-web/studies", map[string]string{"Content-Type": ct}, body); res.status != http.StatusOK {
		t.Fatalf("STOW: %d %s", res.status, res.body)
	}
	list := make([]string, frames)
	for i := range list {
		list[i] = strconv.Itoa(i + 1)
	}
	accept := map[string]string{"Accept": `multipart/related; type="application/octet-stream"`}
	for _, c := range []struct{ name, path string }{
		{"frame list", "/frames/" + strings.Join(list, ",")},
		{"bulk PixelData", "/bulk/7FE00010"},
	} {
		t.Run(c.name, func(t *testing.T) {
			read := map[string]int64{}
			cpu := map[string]time.Duration{}
			for _, kind := range []string{"native", "deflated"} {
				series := study + ".1"
				if kind == "deflated" {
					series = study + ".2"
				}
				url := "/dicom-web/studies/" + study + "/series/" + series + "/instances/" + series + ".1" + c.path
				blobs.n.Store(0)
				before := cpuTime(t)
				res := s.do(t, "GET", url, accept, nil)
				cpu[kind] = cpuTime(t) - before
				read[kind] = blobs.n.Load()
				if res.status != http.StatusOK {
					t.Fatalf("%s: %d %.300s", kind, res.status, res.body)
				}
				_, parts := readMultipart(t, res)
				var got []byte
				for _, p := range parts {
					got = append(got, p.data...)
				}
				if (c.name == "frame list" && len(parts) != frames) || !bytes.Equal(got, px) {
					t.Fatalf("%s: %d parts, %d bytes; want the %d frames", kind, len(parts), len(got), frames)
				}
			}
			t.Logf("stored bytes read: native %d, deflated %d (%.2f×); CPU: native %v, deflated %v",
				read["native"], read["deflated"], float64(read["deflated"])/float64(read["native"]), cpu["native"], cpu["deflated"])
			if read["deflated"] > 10*read["native"] {
				t.Errorf("the deflated instance read %d stored bytes for its frames, the native one %d: more than 10×", read["deflated"], read["native"])
			}
		})
	}
}

// Byte ranges of a deflated instance's PixelData, in ascending order, in
// one request: one inflation for all of them (the seeker moves forward in
// the stream it has open), not one from the start per range.
func TestRetrieveBulk_deflatedRangesOnePass(t *testing.T) {
	const rows, cols, frames = 16, 16, 500
	r := rand.New(rand.NewPCG(5, 6))
	px := make([]byte, rows*cols*frames)
	for i := range px {
		px[i] = byte(r.IntN(16))
	}
	var blobs *readCounter
	s := newTestServer(t, func(cfg *Config) {
		blobs = &readCounter{BlobStore: cfg.Archive.Blobs}
		cfg.Archive.Blobs = blobs
	})
	obj := multiframePart10("2.25.7002", "2.25.7002.1", "2.25.7002.1.1", rows, cols, frames, px, true)
	body, ct := multipartBody(t, `"application/dicom"`, part{"application/dicom", obj})
	if res := s.do(t, "POST", "/dicom-web/studies", map[string]string{"Content-Type": ct}, body); res.status != http.StatusOK {
		t.Fatalf("STOW: %d %s", res.status, res.body)
	}
	var ranges []string
	var want [][]byte
	for off := 0; off+10 <= len(px); off += len(px) / 50 {
		ranges = append(ranges, fmt.Sprintf("%d-%d", off, off+9))
		want = append(want, px[off:off+10])
	}
	blobs.n.Store(0)
	res := s.do(t, "GET", "/dicom-web/studies/2.25.7002/series/2.25.7002.1/instances/2.25.7002.1.1/bulk/7FE00010",
		map[string]string{"Accept": "application/octet-stream", "Range": "bytes=" + strings.Join(ranges, ",")}, nil)
	if res.status != http.StatusPartialContent {
		t.Fatalf("status %d: %.300s", res.status, res.body)
	}
	mt, params, err := mime.ParseMediaType(res.header.Get("Content-Type"))
	if err != nil || mt != "multipart/byteranges" {
		t.Fatalf("Content-Type %q", res.header.Get("Content-Type"))
	}
	mr := multipart.NewReader(bytes.NewReader(res.body), params["boundary"])
	for i := 0; ; i++ {
		p, err := mr.NextPart()
		if err == io.EOF {
			if i != len(want) {
				t.Fatalf("%d ranges, want %d", i, len(want))
			}
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(p)
		if !bytes.Equal(b, want[i]) {
			t.Fatalf("range %d (%s) = %x, want %x", i, ranges[i], b, want[i])
		}
	}
	stream := int64(len(obj)) // at most the whole object, once
	t.Logf("%d ranges: %d stored bytes read; the object has %d", len(ranges), blobs.n.Load(), stream)
	if got := blobs.n.Load(); got > stream {
		t.Errorf("%d ranges read %d stored bytes; the whole object has %d", len(ranges), got, stream)
	}
}

func TestMultiframePart10_parses(t *testing.T) {
	px := bytes.Repeat([]byte{1, 2, 3, 4}, 16)
	for _, deflated := range []bool{false, true} {
		s := newTestServer(t, nil)
		body, ct := multipartBody(t, `"application/dicom"`, part{"application/dicom", multiframePart10("2.25.1", "2.25.1.1", "2.25.1.1.1", 4, 4, 4, px, deflated)})
		if res := s.do(t, "POST", "/dicom-web/studies", map[string]string{"Content-Type": ct}, body); res.status != http.StatusOK {
			t.Fatalf("STOW (deflated %v): %d %s", deflated, res.status, res.body)
		}
		in, err := s.archive.Index.Instance(t.Context(), "", "", "2.25.1.1.1")
		if err != nil {
			t.Fatal(err)
		}
		if len(in.Frames) != 4 || in.Deflated != deflated {
			t.Errorf("deflated %v: indexed %d frames, deflated %v", deflated, len(in.Frames), in.Deflated)
		}
	}
}
