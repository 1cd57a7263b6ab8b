package storage

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/cloudpacs/pacs/internal/dcm"
)

// Image Pixel module attributes pixelDataProblem reads (PS3.3 C.7.6.3).
const (
	tagSamplesPerPixel           dcm.Tag = 0x00280002
	tagPhotometricInterpretation dcm.Tag = 0x00280004
	tagBitsStored                dcm.Tag = 0x00280101
	tagHighBit                   dcm.Tag = 0x00280102
	tagPixelRepresentation       dcm.Tag = 0x00280103
	tagPixelData                 dcm.Tag = 0x7FE00010
)

// pixelDataProblem describes, in words a sender can act on, why the pixel
// data of h cannot be what its attributes say (e.g. native pixel data
// shorter than Rows × Columns × SamplesPerPixel × BitsAllocated/8 ×
// NumberOfFrames). "" when nothing is wrong or the instance has no pixel
// data. The archive still stores such an instance (it keeps what it was
// sent) and reports the text as a warning.
//
// It checks, for the top-level PixelData (7FE0,0010) only:
//   - the encoding agrees with the transfer syntax: encapsulated
//     (undefined length, fragments) for a compressed syntax, a defined
//     length for an uncompressed one;
//   - the Type 1 attributes of the Image Pixel module are present, and
//     Rows, Columns and BitsAllocated are not zero;
//   - native data: the value is NumberOfFrames × Rows × Columns ×
//     SamplesPerPixel × BitsAllocated bits (4:2:2 colour: two samples a
//     pixel; BitsAllocated 1: packed), rounded up to whole bytes, plus
//     the padding byte that makes an odd length even;
//   - encapsulated data: the fragments give NumberOfFrames frames (video
//     syntaxes, one stream for all frames, excepted).
//
// Whether the bytes are what the transfer syntax says (a "JPEG" fragment
// that is not JPEG) is found only by decoding: a rendered or transcoded
// request then answers 422 naming it.
func pixelDataProblem(h *dcm.Header) string {
	if h == nil || h.Dataset == nil {
		return ""
	}
	// Elements are in tag order and PixelData comes last in practice: a
	// backward scan finds it at once. (A map of present tags cost 9 KB of
	// garbage an instance.)
	var pd *dcm.Element
	els := h.Dataset.Elements
	for i := len(els) - 1; i >= 0; i-- {
		if els[i].Tag == tagPixelData {
			pd = els[i]
			break
		}
	}
	present := func(t dcm.Tag) bool {
		for _, e := range els {
			if e.Tag == t { // no early exit: a malformed data set may be out of order
				return true
			}
		}
		return false
	}
	if pd == nil || pd.Bulk == nil {
		return ""
	}
	ts := h.TransferSyntaxUID
	nativeTS := uncompressedSyntax(ts)
	switch {
	case nativeTS && h.Encapsulated:
		return fmt.Sprintf("PixelData is encapsulated (undefined length, in fragments) but the transfer syntax %s is uncompressed: "+
			"label the instance with the compressed transfer syntax its fragments are in, or send the pixel data native (defined length)", ts)
	case !nativeTS && !h.Encapsulated:
		return fmt.Sprintf("PixelData has a defined length (%d bytes, native pixel data) but the transfer syntax %s is compressed: "+
			"label the instance Explicit VR Little Endian (1.2.840.10008.1.2.1) if the data are uncompressed, or encapsulate the compressed frames", pd.Bulk.Length, ts)
	}
	var missing []string
	for _, a := range []struct {
		tag  dcm.Tag
		name string
	}{
		{tagSamplesPerPixel, "SamplesPerPixel (0028,0002)"},
		{tagPhotometricInterpretation, "PhotometricInterpretation (0028,0004)"},
		{TagRows, "Rows (0028,0010)"},
		{TagColumns, "Columns (0028,0011)"},
		{TagBitsAllocated, "BitsAllocated (0028,0100)"},
		{tagBitsStored, "BitsStored (0028,0101)"},
		{tagHighBit, "HighBit (0028,0102)"},
		{tagPixelRepresentation, "PixelRepresentation (0028,0103)"},
	} {
		if !present(a.tag) {
			missing = append(missing, a.name)
		}
	}
	if len(missing) > 0 {
		return "PixelData is present but the Image Pixel module lacks " + strings.Join(missing, ", ") +
			": add them so that the pixel data can be decoded"
	}
	rows, cols, ba := h.Int(TagRows), h.Int(TagColumns), h.Int(TagBitsAllocated)
	spp := max(h.Int(tagSamplesPerPixel), 1)
	var zero []string
	for _, a := range []struct {
		v    int
		name string
	}{{rows, "Rows"}, {cols, "Columns"}, {ba, "BitsAllocated"}} {
		if a.v <= 0 {
			zero = append(zero, a.name)
		}
	}
	if len(zero) > 0 {
		return strings.Join(zero, ", ") + " must be greater than zero for an instance with PixelData"
	}
	nf, nfText := 1, h.Text(TagNumberOfFrames)
	if nfText != "" {
		n, err := strconv.Atoi(strings.TrimSpace(nfText))
		if err != nil || n < 1 {
			return fmt.Sprintf("NumberOfFrames (0028,0008) is %q: it must be a positive integer", nfText)
		}
		nf = n
	}
	if h.Encapsulated {
		if video(ts) || len(h.Frames) == nf {
			return ""
		}
		return fmt.Sprintf("NumberOfFrames is %d but the encapsulated pixel data holds %s (%d fragments): "+
			"correct NumberOfFrames, or the Basic Offset Table and fragments", nf, framesWord(len(h.Frames)), fragments(h))
	}
	bits := uint64(rows) * uint64(cols) * uint64(spp) * uint64(ba)
	pi := h.Text(tagPhotometricInterpretation)
	if spp == 3 && strings.HasSuffix(pi, "_422") {
		bits = bits * 2 / 3 // two luminance samples share one Cb and one Cr
	}
	need := (uint64(nf)*bits + 7) / 8
	have := uint64(pd.Bulk.Length)
	if have == need || have == need+1 && need%2 == 1 {
		return ""
	}
	// ASCII only: the text goes into Warning headers.
	layout := fmt.Sprintf("%s of %dx%d pixels (Rows x Columns), %d sample(s) of %d bits", framesWord(nf), rows, cols, spp, ba)
	if strings.HasSuffix(pi, "_422") && spp == 3 {
		layout += " (" + pi + ": 2 samples a pixel stored)"
	}
	if have < need {
		got := ""
		if nf > 1 && bits > 0 {
			got = fmt.Sprintf(" (%d whole frames)", have*8/bits)
		}
		return fmt.Sprintf("PixelData has %d bytes%s but %s need %d: the pixel data are truncated, "+
			"or NumberOfFrames, Rows, Columns, SamplesPerPixel or BitsAllocated overstate them", have, got, layout, need)
	}
	return fmt.Sprintf("PixelData has %d bytes but %s need %d: NumberOfFrames, Rows, Columns, SamplesPerPixel "+
		"or BitsAllocated understate the pixel data", have, layout, need)
}

// uncompressedSyntax reports the transfer syntaxes with native
// (defined-length) pixel data; package dcm treats every other one as
// encapsulated.
func uncompressedSyntax(ts string) bool {
	switch ts {
	case "1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.2":
		return true
	}
	return false
}

// video reports the MPEG-2, MPEG-4 and HEVC syntaxes (1.2.840.10008.1.2.4.100
// to .109): one stream whose frames the fragments do not separate.
func video(ts string) bool { return strings.HasPrefix(ts, "1.2.840.10008.1.2.4.10") }

func framesWord(n int) string {
	if n == 1 {
		return "1 frame"
	}
	return strconv.Itoa(n) + " frames"
}

func fragments(h *dcm.Header) int {
	n := 0
	for _, f := range h.Frames {
		n += len(f)
	}
	return n
}
