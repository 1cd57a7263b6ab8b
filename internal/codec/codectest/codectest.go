// Package codectest loads corpus files and runs the reference tools
// (dcmtk, GDCM) for the tests of codec, render, thumbs and dicomweb.
package codectest

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/cloudpacs/pacs/internal/codec"
	"github.com/cloudpacs/pacs/internal/dcm"
)

// Corpus is the absolute path of testdata/dicom.
var Corpus = func() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "testdata", "dicom")
}()

// File is one parsed corpus file with its frames as the archive's
// OpenFrame delivers them (inflated, big endian swapped).
type File struct {
	Path   string
	Header *dcm.Header
	Info   codec.PixelInfo
	Frames [][]byte
}

// Load parses path (relative to Corpus or absolute).
func Load(t testing.TB, path string) *File {
	t.Helper()
	if !filepath.IsAbs(path) {
		path = filepath.Join(Corpus, path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := Parse(data)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	f.Path = path
	return f
}

// Parse parses a Part 10 object held in memory.
func Parse(data []byte) (*File, error) {
	h, err := dcm.Parse(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	f := &File{Header: h, Info: InfoOf(h)}
	src := data
	if h.Deflated {
		inf, err := io.ReadAll(flate.NewReader(bytes.NewReader(data[h.DataSetOffset:])))
		if err != nil {
			return nil, err
		}
		src = append(make([]byte, h.DataSetOffset), inf...)
	}
	for i, fr := range h.Frames {
		var out []byte
		for _, s := range fr {
			if s.Offset < 0 || s.Offset+s.Length > int64(len(src)) {
				return nil, fmt.Errorf("frame %d span %+v outside object", i+1, s)
			}
			out = append(out, src[s.Offset:s.Offset+s.Length]...)
		}
		if h.BigEndian && !h.Encapsulated {
			switch f.Info.BitsAllocated {
			case 16:
				for j := 0; j+1 < len(out); j += 2 {
					out[j], out[j+1] = out[j+1], out[j]
				}
			case 32:
				for j := 0; j+3 < len(out); j += 4 {
					binary.LittleEndian.PutUint32(out[j:], binary.BigEndian.Uint32(out[j:]))
				}
			}
		}
		f.Frames = append(f.Frames, out)
	}
	return f, nil
}

// InfoOf reads the Image Pixel module of h.
func InfoOf(h *dcm.Header) codec.PixelInfo {
	tag := func(s string) dcm.Tag { t, _ := dcm.ParseTag(s); return t }
	return codec.PixelInfo{
		Rows:                      h.Int(tag("Rows")),
		Columns:                   h.Int(tag("Columns")),
		SamplesPerPixel:           h.Int(tag("SamplesPerPixel")),
		BitsAllocated:             h.Int(tag("BitsAllocated")),
		BitsStored:                h.Int(tag("BitsStored")),
		HighBit:                   h.Int(tag("HighBit")),
		PixelRepresentation:       h.Int(tag("PixelRepresentation")),
		PlanarConfiguration:       h.Int(tag("PlanarConfiguration")),
		PhotometricInterpretation: h.Text(tag("PhotometricInterpretation")),
	}
}

// Decode decodes frame n (0-based) of f.
func (f *File) Decode(n int) (*codec.Pixels, error) {
	return codec.Decode(f.Header.TransferSyntaxUID, f.Frames[n], f.Info)
}

// RequireTool returns the path of a reference tool. Missing: the test
// skips, or fails when PACS_TEST_REQUIRE_TOOLS=1 (CI).
func RequireTool(t testing.TB, name, aptPackage string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	Missing(t, fmt.Sprintf("%s missing (apt-get install -y %s)", name, aptPackage))
	return ""
}

// Missing skips the test for want of a tool or decoder, or fails it when
// PACS_TEST_REQUIRE_TOOLS=1 (make test, CI: built with -tags cgocodecs
// and every reference tool installed, nothing may be missing).
func Missing(t testing.TB, msg string) {
	t.Helper()
	if os.Getenv("PACS_TEST_REQUIRE_TOOLS") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// Run runs a tool and fails the test with its output on error.
func Run(t testing.TB, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return out
}

// ReferenceDecode decompresses path with dcmtk (dcmdjpeg, dcmdrle,
// dcmdjpls) or GDCM (gdcmconv --raw, for JPEG 2000) into a temporary
// native file and returns it loaded. ok is false for a syntax neither
// handles.
func ReferenceDecode(t testing.TB, path string, ts string) (*File, bool) {
	t.Helper()
	if !filepath.IsAbs(path) {
		path = filepath.Join(Corpus, path)
	}
	out := filepath.Join(t.TempDir(), "ref.dcm")
	switch ts {
	case codec.RLELossless:
		Run(t, RequireTool(t, "dcmdrle", "dcmtk"), path, out)
	case codec.JPEGBaseline8Bit, codec.JPEGExtended12Bit, codec.JPEGLossless, codec.JPEGLosslessSV1:
		Run(t, RequireTool(t, "dcmdjpeg", "dcmtk"), path, out)
	case codec.JPEGLSLossless, codec.JPEGLSNearLossless:
		Run(t, RequireTool(t, "dcmdjpls", "dcmtk"), path, out)
	case codec.JPEG2000Lossless, codec.JPEG2000:
		Run(t, RequireTool(t, "gdcmconv", "libgdcm-tools"), "--raw", path, out)
	default:
		return nil, false
	}
	return Load(t, out), true
}

// ForDcmtk returns a path dcmtk's imaging tools (dcmj2pnm) can read for
// the corpus file path stored in transfer syntax ts: the file itself,
// or for syntaxes dcmj2pnm has no decoder for (JPEG-LS, JPEG 2000,
// HTJ2K) its reference decode (dcmdjpls, gdcmconv --raw) in a temporary
// directory.
func ForDcmtk(t testing.TB, path, ts string) string {
	t.Helper()
	if !filepath.IsAbs(path) {
		path = filepath.Join(Corpus, path)
	}
	switch ts {
	case codec.JPEGLSLossless, codec.JPEGLSNearLossless, codec.JPEG2000Lossless, codec.JPEG2000:
		ref, ok := ReferenceDecode(t, path, ts)
		if ok {
			return ref.Path
		}
	}
	return path
}
