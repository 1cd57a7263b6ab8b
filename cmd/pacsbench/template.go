package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"time"
)

// The generator needs no DICOM writer: it takes one Explicit VR Little
// Endian Part 10 file, finds the values it varies (UIDs, patient, study
// date), and writes same-length values over them in a copy. Lengths never
// change, so every length field and the meta group length stay right.
//
// The walker below is written here rather than taken from internal/dcm so
// that the benchmark tool depends on nothing under test.

// Tags the generator rewrites.
const (
	tagMediaStorageSOPInstanceUID = 0x00020003
	tagTransferSyntaxUID          = 0x00020010
	tagSOPInstanceUID             = 0x00080018
	tagStudyDate                  = 0x00080020
	tagPatientName                = 0x00100010
	tagPatientID                  = 0x00100020
	tagStudyInstanceUID           = 0x0020000D
	tagSeriesInstanceUID          = 0x0020000E
	tagFrameOfReferenceUID        = 0x00200052
	tagRows                       = 0x00280010
	tagColumns                    = 0x00280011
	tagBitsAllocated              = 0x00280100
	tagSamplesPerPixel            = 0x00280002
	tagPixelData                  = 0x7FE00010
)

const explicitVRLittleEndian = "1.2.840.10008.1.2.1"

// span is where a value sits in the template.
type span struct{ off, n int }

// template is a parsed template file.
type template struct {
	data   []byte
	fields map[uint32]span // top-level values of interest (meta and data set)
	// frameBytes is the size of one native frame, computed from the image
	// pixel module; 0 when unknown.
	frameBytes int
}

// longVR lists the explicit VRs with a 2-byte reserved field and a 4-byte
// length (PS3.5 7.1.2).
func longVR(vr string) bool {
	switch vr {
	case "OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV":
		return true
	}
	return false
}

const undefinedLength = 0xFFFFFFFF

var errTemplate = errors.New("template")

func loadTemplate(path string) (*template, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parseTemplate(b)
}

func parseTemplate(b []byte) (*template, error) {
	if len(b) < 132 || string(b[128:132]) != "DICM" {
		return nil, fmt.Errorf("%w: not a DICOM Part 10 file (no DICM at offset 128)", errTemplate)
	}
	t := &template{data: b, fields: map[uint32]span{}}
	if _, err := t.walk(132, len(b), 0); err != nil {
		return nil, err
	}
	ts := strings.TrimRight(t.text(tagTransferSyntaxUID), "\x00 ")
	if ts != explicitVRLittleEndian {
		return nil, fmt.Errorf("%w: transfer syntax %q: only Explicit VR Little Endian templates are supported", errTemplate, ts)
	}
	for _, tag := range []uint32{tagSOPInstanceUID, tagStudyInstanceUID, tagSeriesInstanceUID, tagPatientID, tagPatientName, tagStudyDate, tagPixelData} {
		if _, ok := t.fields[tag]; !ok {
			return nil, fmt.Errorf("%w: attribute (%04X,%04X) missing or empty", errTemplate, tag>>16, tag&0xFFFF)
		}
	}
	if m, ok := t.fields[tagMediaStorageSOPInstanceUID]; ok && m.n != t.fields[tagSOPInstanceUID].n {
		return nil, fmt.Errorf("%w: MediaStorageSOPInstanceUID and SOPInstanceUID differ in length", errTemplate)
	}
	if s := t.fields[tagStudyDate]; s.n != 8 {
		return nil, fmt.Errorf("%w: StudyDate has length %d, want 8", errTemplate, s.n)
	}
	rows, cols := t.u16(tagRows), t.u16(tagColumns)
	bits, spp := t.u16(tagBitsAllocated), t.u16(tagSamplesPerPixel)
	if spp == 0 {
		spp = 1
	}
	t.frameBytes = rows * cols * spp * bits / 8
	return t, nil
}

func (t *template) text(tag uint32) string {
	s, ok := t.fields[tag]
	if !ok {
		return ""
	}
	return string(t.data[s.off : s.off+s.n])
}

func (t *template) u16(tag uint32) int {
	s, ok := t.fields[tag]
	if !ok || s.n != 2 {
		return 0
	}
	return int(binary.LittleEndian.Uint16(t.data[s.off:]))
}

// walk reads explicit VR LE elements in b[pos:end] and returns the
// position after the last one. depth 0 records top-level values. Inside an
// undefined-length item it stops after the item delimiter.
func (t *template) walk(pos, end, depth int) (int, error) {
	b := t.data
	for pos < end {
		if pos+8 > end {
			return 0, fmt.Errorf("%w: truncated element header at %d", errTemplate, pos)
		}
		group := binary.LittleEndian.Uint16(b[pos:])
		elem := binary.LittleEndian.Uint16(b[pos+2:])
		tag := uint32(group)<<16 | uint32(elem)
		if tag == 0xFFFEE00D { // item delimiter
			return pos + 8, nil
		}
		vr := string(b[pos+4 : pos+6])
		var n uint32
		var hdr int
		if longVR(vr) {
			if pos+12 > end {
				return 0, fmt.Errorf("%w: truncated element header at %d", errTemplate, pos)
			}
			n = binary.LittleEndian.Uint32(b[pos+8:])
			hdr = 12
		} else {
			n = uint32(binary.LittleEndian.Uint16(b[pos+6:]))
			hdr = 8
		}
		vpos := pos + hdr
		if depth == 0 && tag == tagPixelData {
			if n == undefinedLength || vpos+int(n) > end {
				return 0, fmt.Errorf("%w: pixel data must be native and complete", errTemplate)
			}
			t.fields[tag] = span{vpos, int(n)}
			return end, nil // nothing after pixel data matters here
		}
		if n == undefinedLength {
			if vr != "SQ" && vr != "UN" {
				return 0, fmt.Errorf("%w: undefined length on %s (%04X,%04X)", errTemplate, vr, group, elem)
			}
			p, err := t.skipItems(vpos, end, depth)
			if err != nil {
				return 0, err
			}
			pos = p
			continue
		}
		if vpos+int(n) > end {
			return 0, fmt.Errorf("%w: value of (%04X,%04X) runs past the end", errTemplate, group, elem)
		}
		if vr == "SQ" {
			if _, err := t.skipItems(vpos, vpos+int(n), depth); err != nil {
				return 0, err
			}
		} else if depth == 0 && n > 0 {
			t.fields[tag] = span{vpos, int(n)}
		}
		pos = vpos + int(n)
	}
	return pos, nil
}

// skipItems walks items from pos until end or a sequence delimiter.
func (t *template) skipItems(pos, end, depth int) (int, error) {
	b := t.data
	for pos < end {
		if pos+8 > end {
			return 0, fmt.Errorf("%w: truncated item at %d", errTemplate, pos)
		}
		tag := uint32(binary.LittleEndian.Uint16(b[pos:]))<<16 | uint32(binary.LittleEndian.Uint16(b[pos+2:]))
		n := binary.LittleEndian.Uint32(b[pos+4:])
		pos += 8
		switch tag {
		case 0xFFFEE0DD: // sequence delimiter
			return pos, nil
		case 0xFFFEE000:
			if n == undefinedLength {
				p, err := t.walk(pos, end, depth+1)
				if err != nil {
					return 0, err
				}
				pos = p
			} else {
				if pos+int(n) > end {
					return 0, fmt.Errorf("%w: item runs past the end", errTemplate)
				}
				if _, err := t.walk(pos, pos+int(n), depth+1); err != nil {
					return 0, err
				}
				pos += int(n)
			}
		default:
			return 0, fmt.Errorf("%w: unexpected tag %08X in sequence", errTemplate, tag)
		}
	}
	return pos, nil
}

// instance is one generated instance of the layout.
type instance struct {
	Study, Series, SOP   string
	FrameOfRef           string
	PatientID, Name      string
	StudyDate            string
	StudyIdx, SeriesIdx  int
	Large                bool // part of the large series
	Stored               bool
	PatientIdx, InSeries int
}

// layout describes the generated data set.
type layout struct {
	Studies           int // normal studies
	SeriesPerStudy    int
	InstPerSeries     int
	StudiesPerPatient int // studies per patient
	LargeSeries       int // instances in the extra large series (0: none)
}

// dataset is the full list of generated instances and how to find them.
type dataset struct {
	tpl       *template
	lay       layout
	insts     []instance
	studies   []studyInfo // index = study index; the large series' study last
	patients  int
	dateStart time.Time
	dateDays  int
}

type studyInfo struct {
	UID       string
	PatientID string
	Name      string
	Date      string
	Series    []string
	Large     bool
	FirstInst int // index of the first instance in insts
}

// uidMaker makes UIDs of an exact length under 2.25 (PS3.5 B.2), unique
// per run and kind: "2.25." + "1" + run (10 digits) + kind (1 digit) +
// zero-padded counter. Exactly n characters, so no padding is needed.
type uidMaker struct{ run uint64 }

func (u uidMaker) make(n int, kind, counter int) (string, error) {
	digits := n - len("2.25.")
	head := "1" + fmt.Sprintf("%010d", u.run%1e10) + strconv.Itoa(kind)
	rest := digits - len(head)
	c := strconv.Itoa(counter)
	if rest < len(c) || rest < 1 {
		return "", fmt.Errorf("%w: UID length %d too short for %d objects", errTemplate, n, counter)
	}
	return "2.25." + head + strings.Repeat("0", rest-len(c)) + c, nil
}

// fixed makes prefix + zero-padded number, exactly n characters long.
func fixed(prefix string, num, n int) (string, error) {
	s := strconv.Itoa(num)
	if len(prefix)+len(s) > n {
		return "", fmt.Errorf("%w: value length %d too short for %s%d", errTemplate, n, prefix, num)
	}
	return prefix + strings.Repeat("0", n-len(prefix)-len(s)) + s, nil
}

// newDataset lays out the instances. seed fixes every UID and value so
// two runs with the same seed send the same load.
func newDataset(tpl *template, lay layout, seed uint64) (*dataset, error) {
	rng := rand.New(rand.NewPCG(seed, seed^0x9E3779B97F4A7C15))
	u := uidMaker{run: rng.Uint64()}
	runTag := int(rng.Uint64() % 10000)
	if lay.StudiesPerPatient < 1 {
		lay.StudiesPerPatient = 1
	}
	d := &dataset{
		tpl:       tpl,
		lay:       lay,
		dateStart: time.Date(2015, 1, 1, 0, 0, 0, 0, time.UTC),
		dateDays:  3650,
	}
	nStudies := lay.Studies
	if lay.LargeSeries > 0 {
		nStudies++
	}
	d.patients = (nStudies + lay.StudiesPerPatient - 1) / lay.StudiesPerPatient
	f := tpl.fields
	seriesCounter, instCounter := 0, 0
	for s := 0; s < nStudies; s++ {
		large := lay.LargeSeries > 0 && s == nStudies-1
		p := s / lay.StudiesPerPatient
		st := studyInfo{Large: large, FirstInst: len(d.insts)}
		var err error
		if st.UID, err = u.make(f[tagStudyInstanceUID].n, 1, s+1); err != nil {
			return nil, err
		}
		// PatientID: "P" + run tag + patient number, so that a PatientID
		// query finds this run's studies only, even on a used server.
		if st.PatientID, err = fixed(fmt.Sprintf("P%04d", runTag), p+1, f[tagPatientID].n); err != nil {
			return nil, err
		}
		if st.Name, err = fixed("BN", p+1, f[tagPatientName].n); err != nil {
			return nil, err
		}
		// Dates spread evenly over ten years.
		day := 0
		if nStudies > 1 {
			day = s * (d.dateDays - 1) / (nStudies - 1)
		}
		st.Date = d.dateStart.AddDate(0, 0, day).Format("20060102")
		nSeries, nInst := lay.SeriesPerStudy, lay.InstPerSeries
		if large {
			nSeries, nInst = 1, lay.LargeSeries
		}
		for r := 0; r < nSeries; r++ {
			seriesCounter++
			ser, err := u.make(f[tagSeriesInstanceUID].n, 2, seriesCounter)
			if err != nil {
				return nil, err
			}
			var frameRef string
			if sp, ok := f[tagFrameOfReferenceUID]; ok {
				if frameRef, err = u.make(sp.n, 4, seriesCounter); err != nil {
					return nil, err
				}
			}
			st.Series = append(st.Series, ser)
			for i := 0; i < nInst; i++ {
				instCounter++
				sop, err := u.make(f[tagSOPInstanceUID].n, 3, instCounter)
				if err != nil {
					return nil, err
				}
				d.insts = append(d.insts, instance{
					Study: st.UID, Series: ser, SOP: sop, FrameOfRef: frameRef,
					PatientID: st.PatientID, Name: st.Name, StudyDate: st.Date,
					StudyIdx: s, SeriesIdx: r, Large: large, PatientIdx: p, InSeries: i,
				})
			}
		}
		d.studies = append(d.studies, st)
	}
	return d, nil
}

// bytes renders instance i as a Part 10 file.
func (d *dataset) bytes(i int) []byte {
	in := &d.insts[i]
	t := d.tpl
	b := bytes.Clone(t.data)
	set := func(tag uint32, v string) {
		if s, ok := t.fields[tag]; ok && v != "" {
			copy(b[s.off:s.off+s.n], v)
		}
	}
	set(tagMediaStorageSOPInstanceUID, in.SOP)
	set(tagSOPInstanceUID, in.SOP)
	set(tagStudyInstanceUID, in.Study)
	set(tagSeriesInstanceUID, in.Series)
	set(tagFrameOfReferenceUID, in.FrameOfRef)
	set(tagPatientID, in.PatientID)
	set(tagPatientName, in.Name)
	set(tagStudyDate, in.StudyDate)
	return b
}
