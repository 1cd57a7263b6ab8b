package dcm

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestParse_manifestIdentifiers(t *testing.T) {
	for _, row := range readManifest(t) {
		if strings.HasPrefix(row["file"], "bad/") {
			continue
		}
		t.Run(row["file"], func(t *testing.T) {
			h := parseFile(t, filepath.Join(corpus, row["file"]))
			for _, c := range []struct{ got, col string }{
				{h.StudyInstanceUID, "study_uid"},
				{h.SeriesInstanceUID, "series_uid"},
				{h.SOPInstanceUID, "sop_instance_uid"},
				{h.TransferSyntaxUID, "transfer_syntax_uid"},
				{h.SOPClassUID, "sop_class"},
			} {
				if c.got != row[c.col] {
					t.Errorf("%s = %q, want %q", c.col, c.got, row[c.col])
				}
			}
			if want := row["frames"]; want != "" {
				if n, _ := strconv.Atoi(want); len(h.Frames) != n {
					t.Errorf("frames = %d, want %d", len(h.Frames), n)
				}
			} else if len(h.Frames) != 0 {
				t.Errorf("frames = %d, want none", len(h.Frames))
			}
			if h.Encapsulated != !transferSyntax(h.TransferSyntaxUID).isNative() {
				t.Errorf("Encapsulated = %v for %s", h.Encapsulated, h.TransferSyntaxUID)
			}
		})
	}
}

func (ts tsInfo) isNative() bool { return !ts.encapsulated }

// TestParse_framesMatchPydicom checks every frame of every file against
// the pixel bytes pydicom extracts (native: PixelData split by frame
// size; encapsulated: generate_pixel_data_frame).
func TestParse_framesMatchPydicom(t *testing.T) {
	ref := pydicomInfo(t)
	checked := 0
	for _, path := range corpusFiles(t, false) {
		r := ref[path]
		if r.Error != "" {
			t.Errorf("%s: pydicom: %s", path, r.Error)
			continue
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		h, err := Parse(bytes.NewReader(data))
		if err != nil {
			t.Errorf("%s: %v", path, err)
			continue
		}
		if len(h.Frames) != len(r.Frames) {
			t.Errorf("%s: %d frames, pydicom %d", path, len(h.Frames), len(r.Frames))
			continue
		}
		for i := range h.Frames {
			sum := sha256.Sum256(frameBytes(t, data, h, i))
			if got := hex.EncodeToString(sum[:]); got != r.Frames[i] {
				t.Errorf("%s: frame %d sha256 %s, pydicom %s", path, i, got, r.Frames[i])
			}
			checked++
		}
	}
	if checked < 40 {
		t.Errorf("only %d frames checked", checked)
	}
}

func TestParse_bad(t *testing.T) {
	for _, name := range []string{
		"empty.dcm", "garbage_after_preamble.dcm", "length_overflow_header.dcm",
		"length_overflow_pixeldata.dcm", "not_dicom.png", "truncated.dcm", "no_sop_instance_uid.dcm",
	} {
		t.Run(name, func(t *testing.T) {
			f, err := os.Open(filepath.Join(corpus, "bad", name))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			start := time.Now()
			var ms0, ms1 runtime.MemStats
			runtime.ReadMemStats(&ms0)
			h, err := Parse(f)
			runtime.ReadMemStats(&ms1)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Parse = %v, %v; want ErrInvalid", h, err)
			}
			if name == "no_sop_instance_uid.dcm" && !strings.Contains(err.Error(), "SOPInstanceUID") {
				t.Errorf("error %q does not name SOPInstanceUID", err)
			}
			if strings.HasPrefix(name, "length_overflow") && !strings.Contains(err.Error(), "truncated") {
				t.Errorf("error %q does not say truncated", err)
			}
			if d := time.Since(start); d > time.Second {
				t.Errorf("took %v", d)
			}
			if a := ms1.TotalAlloc - ms0.TotalAlloc; a > 4<<20 {
				t.Errorf("allocated %d bytes", a)
			}
		})
	}
}

// lyingReader is a well-formed header followed by a value that claims
// more bytes than the stream has.
func TestParse_lyingLengthSmallValue(t *testing.T) {
	var b bytes.Buffer
	b.Write(syntheticMeta(tsExplicitLE))
	b.Write(elemLE(tagSOPInstanceUID, "UI", []byte("1.2\x00")))
	hdr := appendHeaderLE(nil, 0x00204000, "UT", 50<<20) // under the retained cap
	b.Write(hdr)
	b.WriteString("short")
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	_, err := Parse(&b)
	runtime.ReadMemStats(&ms1)
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "truncated") {
		t.Fatalf("err = %v", err)
	}
	if a := ms1.TotalAlloc - ms0.TotalAlloc; a > 4<<20 {
		t.Errorf("allocated %d bytes for a lying length", a)
	}
}

func TestParse_retainedCap(t *testing.T) {
	var b bytes.Buffer
	b.Write(syntheticMeta(tsExplicitLE))
	big := bytes.Repeat([]byte("a"), 70<<20)
	b.Write(appendHeaderLE(nil, 0x00204000, "UT", uint32(len(big))))
	b.Write(big)
	_, err := Parse(&b)
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("err = %v, want ErrInvalid for a 70 MiB UT", err)
	}
}

func TestParse_noPreamble(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(corpus, "images/mr_small_signed_window.dcm"))
	if err != nil {
		t.Fatal(err)
	}
	full, err := Parse(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	h, err := Parse(bytes.NewReader(data[132:]))
	if err != nil {
		t.Fatal(err)
	}
	if h.SOPInstanceUID != full.SOPInstanceUID || h.Frames[0][0].Offset != full.Frames[0][0].Offset-132 {
		t.Errorf("no-preamble parse differs: %+v vs %+v", h.Frames, full.Frames)
	}
}

func TestParse_readsToEOF(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(corpus, "ts/mr_deflated.dcm"))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range [][]byte{data, append(slicesClone(data), make([]byte, 7)...)} {
		r := bytes.NewReader(d)
		if _, err := Parse(r); err != nil {
			t.Fatal(err)
		}
		if r.Len() != 0 {
			t.Errorf("%d bytes left unread", r.Len())
		}
	}
}

func slicesClone(b []byte) []byte { return append([]byte(nil), b...) }

func TestHeader_TextInt(t *testing.T) {
	h := parseFile(t, filepath.Join(corpus, "images/ct_small_signed_no_window.dcm"))
	if got := h.Int(tagRows); got != 128 {
		t.Errorf("Rows = %d", got)
	}
	if got := h.Text(0x00080060); got != "CT" {
		t.Errorf("Modality = %q", got)
	}
	if got := h.Text(0x00080008); !strings.Contains(got, `\`) || strings.HasSuffix(got, " ") {
		t.Errorf("ImageType = %q", got)
	}
	if got := h.Text(0x00999999); got != "" {
		t.Errorf("absent = %q", got)
	}
	if got := h.Text(tagRows); got != "128" {
		t.Errorf("Text(Rows) = %q", got)
	}
	bulk := h.Bulk()
	if len(bulk) == 0 || bulk[len(bulk)-1].Path != "7FE00010" {
		t.Errorf("Bulk = %+v", bulk)
	}
	pt := parseFile(t, filepath.Join(corpus, "images/pt_acrin_flt_breast_icon.dcm"))
	found := false
	for _, b := range pt.Bulk() {
		if strings.HasPrefix(b.Path, "00880200/0/") && strings.HasSuffix(b.Path, "7FE00010") {
			found = true
		}
	}
	if !found {
		t.Errorf("icon PixelData missing from Bulk: %+v", pt.Bulk())
	}
}

func TestDict(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Tag
		ok   bool
	}{
		{"0020000D", tagStudyInstanceUID, true},
		{"0020,000d", tagStudyInstanceUID, true},
		{"(0020,000D)", tagStudyInstanceUID, true},
		{"StudyInstanceUID", tagStudyInstanceUID, true},
		{"PixelData", tagPixelData, true},
		{"Pixel Data", 0, false},
		{"NoSuchKeyword", 0, false},
		{"", 0, false},
		{"0020000G", 0, false},
	} {
		got, ok := ParseTag(c.in)
		if got != c.want || ok != c.ok {
			t.Errorf("ParseTag(%q) = %08X, %v", c.in, uint32(got), ok)
		}
	}
	if Keyword(tagSOPInstanceUID) != "SOPInstanceUID" || Keyword(0x00091001) != "" {
		t.Error("Keyword")
	}
	for tg, vr := range map[Tag]string{tagRows: "US", tagPixelData: "OB", 0x00091001: "UN", 0x00090010: "LO",
		0x00280000: "UL", 0x60023000: "OB", 0x00400275: "SQ"} {
		if got := DictVR(tg); got != vr {
			t.Errorf("DictVR(%08X) = %s, want %s", uint32(tg), got, vr)
		}
	}
}

// syntheticMeta builds a file meta group with fixed UIDs.
func syntheticMeta(ts string) []byte {
	var body []byte
	body = append(body, elemLE(0x00020001, "OB", []byte{0, 1})...)
	body = append(body, elemLE(tagMediaStorageSOPClassUID, "UI", []byte("1.2.840.10008.5.1.4.1.1.7\x00"))...)
	body = append(body, elemLE(tagMediaStorageSOPInstanceUID, "UI", []byte("1.2.3.4\x00"))...)
	body = append(body, elemLE(tagTransferSyntaxUID, "UI", padUI(ts))...)
	out := make([]byte, 128, 256)
	out = append(out, "DICM"...)
	out = append(out, elemLE(tagFileMetaInformationGroupLength, "UL", binary.LittleEndian.AppendUint32(nil, uint32(len(body))))...)
	return append(out, body...)
}

func padUI(s string) []byte {
	if len(s)%2 == 1 {
		s += "\x00"
	}
	return []byte(s)
}

func elemLE(t Tag, vr string, v []byte) []byte {
	return append(appendHeaderLE(nil, t, vr, uint32(len(v))), v...)
}

// hugeInstance streams a native instance with n bytes of pixel data
// generated on the fly.
func hugeInstance(frames, rows, cols int) (io.Reader, int64) {
	var b []byte
	b = append(b, syntheticMeta(tsExplicitLE)...)
	b = append(b, elemLE(tagSOPClassUID, "UI", padUI("1.2.840.10008.5.1.4.1.1.7"))...)
	b = append(b, elemLE(tagSOPInstanceUID, "UI", padUI("1.2.3.4"))...)
	b = append(b, elemLE(tagStudyInstanceUID, "UI", padUI("1.2.3"))...)
	b = append(b, elemLE(tagSeriesInstanceUID, "UI", padUI("1.2.3.5"))...)
	b = append(b, elemLE(tagSamplesPerPixel, "US", []byte{1, 0})...)
	b = append(b, elemLE(tagNumberOfFrames, "IS", padIS(frames))...)
	b = append(b, elemLE(tagRows, "US", binary.LittleEndian.AppendUint16(nil, uint16(rows)))...)
	b = append(b, elemLE(tagColumns, "US", binary.LittleEndian.AppendUint16(nil, uint16(cols)))...)
	b = append(b, elemLE(tagBitsAllocated, "US", []byte{16, 0})...)
	n := int64(frames) * int64(rows) * int64(cols) * 2
	b = appendHeaderLE(b, tagPixelData, "OW", uint32(n))
	return io.MultiReader(bytes.NewReader(b), io.LimitReader(zeroReader{}, n)), int64(len(b)) + n
}

func padIS(n int) []byte {
	s := strconv.Itoa(n)
	if len(s)%2 == 1 {
		s += " "
	}
	return []byte(s)
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func TestParse_hugeInstanceBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("streams 300 MB")
	}
	r, size := hugeInstance(600, 512, 512) // 300 MiB
	var ms0, ms1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms0)
	h, err := Parse(r)
	runtime.ReadMemStats(&ms1)
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Frames) != 600 || h.Frames[599][0].Offset+h.Frames[599][0].Length != size {
		t.Fatalf("frames %d, last %+v, size %d", len(h.Frames), h.Frames[len(h.Frames)-1], size)
	}
	alloc := ms1.TotalAlloc - ms0.TotalAlloc
	t.Logf("object %d MiB, allocated %d KiB", size>>20, alloc>>10)
	if alloc > 16<<20 {
		t.Errorf("allocated %d bytes to parse a %d-byte object", alloc, size)
	}
}

// A parse that fails after the identifying UIDs were read reports them in
// a *PartialError, so STOW can name the failed instance.
func TestParse_partialError(t *testing.T) {
	rows := map[string]map[string]string{}
	for _, r := range readManifest(t) {
		rows[r["file"]] = r
	}
	for _, c := range []struct {
		file                 string
		wantSOP, wantPartial bool
	}{
		{"bad/truncated.dcm", true, true},
		{"bad/no_sop_instance_uid.dcm", false, true},
		{"bad/length_overflow_pixeldata.dcm", true, true},
		{"bad/empty.dcm", false, false},
		{"bad/not_dicom.png", false, false},
	} {
		t.Run(c.file, func(t *testing.T) {
			f, err := os.Open(filepath.Join(corpus, c.file))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			h, err := Parse(f)
			if h != nil || !errors.Is(err, ErrInvalid) {
				t.Fatalf("Parse = %v, %v; want nil, ErrInvalid", h, err)
			}
			var pe *PartialError
			if !errors.As(err, &pe) {
				if c.wantPartial {
					t.Fatalf("error %v is not a *PartialError", err)
				}
				return
			}
			if !c.wantPartial {
				t.Fatalf("unexpected *PartialError %+v", pe.Header)
			}
			row := rows[c.file]
			want := Header{SOPClassUID: row["sop_class"], StudyInstanceUID: row["study_uid"], SeriesInstanceUID: row["series_uid"]}
			if c.wantSOP {
				want.SOPInstanceUID = row["sop_instance_uid"]
			}
			got := pe.Header
			if got.SOPClassUID != want.SOPClassUID || got.SOPInstanceUID != want.SOPInstanceUID ||
				got.StudyInstanceUID != want.StudyInstanceUID || got.SeriesInstanceUID != want.SeriesInstanceUID {
				t.Errorf("partial UIDs = %q %q %q %q, want %q %q %q %q",
					got.SOPClassUID, got.SOPInstanceUID, got.StudyInstanceUID, got.SeriesInstanceUID,
					want.SOPClassUID, want.SOPInstanceUID, want.StudyInstanceUID, want.SeriesInstanceUID)
			}
		})
	}
}
