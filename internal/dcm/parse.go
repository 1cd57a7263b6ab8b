package dcm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
)

// Transfer syntax UIDs with a native (uncompressed) pixel data encoding.
const (
	tsImplicitLE = "1.2.840.10008.1.2"
	tsExplicitLE = "1.2.840.10008.1.2.1"
	tsExplicitBE = "1.2.840.10008.1.2.2"
	tsDeflatedLE = "1.2.840.10008.1.2.1.99"
)

// tsInfo describes how a transfer syntax encodes the data set.
type tsInfo struct {
	sx           syntax
	deflated     bool
	encapsulated bool
	video        bool // MPEG2/MPEG-4/HEVC: one stream, frames not separable
}

func transferSyntax(uid string) tsInfo {
	switch uid {
	case tsImplicitLE:
		return tsInfo{sx: implicitLE}
	case tsExplicitLE:
		return tsInfo{sx: explicitLE}
	case tsExplicitBE:
		return tsInfo{sx: explicitBE}
	case tsDeflatedLE:
		return tsInfo{sx: explicitLE, deflated: true}
	}
	// Everything else is treated as explicit VR LE with encapsulated
	// pixel data (JPEG family, JPEG-LS, JPEG 2000, HTJ2K, RLE, video...).
	video := strings.HasPrefix(uid, "1.2.840.10008.1.2.4.10") // .100-.109 MPEG2, MPEG-4, HEVC
	return tsInfo{sx: explicitLE, encapsulated: true, video: video}
}

// readMeta reads the preamble and the file meta group. It accepts
// streams without the 128-byte preamble and "DICM" that start directly
// with a group 0002 element.
func readMeta(s *stream, budget *int64) (*Dataset, error) {
	head, err := s.br.Peek(132)
	switch {
	case len(head) == 132 && string(head[128:132]) == "DICM":
		if err := s.skip(132); err != nil {
			return nil, err
		}
	case len(head) >= 8 && head[0] == 0x02 && head[1] == 0x00 && vrString(head[4], head[5]) != "":
		// no preamble: explicit VR LE group 0002 element
	case len(head) == 0 && err != nil:
		return nil, invalidf("empty input")
	default:
		return nil, invalidf("not a DICOM Part 10 stream (no DICM prefix)")
	}
	meta := &Dataset{}
	for {
		b, err := s.br.Peek(2)
		if err != nil || binary.LittleEndian.Uint16(b) != 0x0002 {
			break
		}
		h, err := s.readHeader(explicitLE)
		if err != nil {
			return nil, err
		}
		if h.length == undefinedLength || h.vr == "SQ" {
			return nil, invalidf("file meta element %08X has undefined length or is a sequence", uint32(h.tag))
		}
		if err := charge(budget, int64(h.length)); err != nil {
			return nil, err
		}
		v, err := s.readValue(int64(h.length))
		if err != nil {
			return nil, err
		}
		meta.Elements = append(meta.Elements, &Element{Tag: h.tag, VR: h.vr, Value: v})
	}
	if len(meta.Elements) == 0 {
		return nil, invalidf("missing file meta information group")
	}
	return meta, nil
}

func charge(budget *int64, n int64) error {
	*budget -= n + elementCost
	if *budget < 0 {
		return invalidf("attribute values exceed %d bytes", MaxRetainedBytes)
	}
	return nil
}

// find returns the element with tag t in ds, or nil.
func (ds *Dataset) find(t Tag) *Element {
	if ds == nil {
		return nil
	}
	for _, e := range ds.Elements {
		if e.Tag == t {
			return e
		}
	}
	return nil
}

// fragment is one encapsulated pixel data fragment.
type fragment struct {
	rel   int64 // offset of its item header relative to the first fragment's
	span  Span
	start bool // value starts with a JPEG SOI / J2K SOC marker
}

type parser struct {
	s      *stream
	ts     tsInfo
	h      *Header
	budget int64
	// top-level pixel data
	bot   []uint32
	frags []fragment
}

// Parse reads one DICOM Part 10 stream from r to EOF in a single pass,
// with memory bounded by the size of the non-bulk attributes (bulk values
// are skipped with io.CopyN to io.Discard, never buffered). Errors wrap
// ErrInvalid for malformed input. It reads r to EOF on success so that a
// caller teeing r into a blob and a hash sees every byte.
//
// When it fails after reading some identifying attributes (SOP Class,
// SOP Instance, Study or Series Instance UID), the error is a
// *PartialError that carries them (errors.As); the Header result is
// still nil.
func Parse(r io.Reader) (*Header, error) {
	p := &parser{s: newStream(r), h: &Header{}, budget: MaxRetainedBytes}
	defer p.s.release()
	h, err := p.parse()
	if err != nil {
		return nil, p.partial(err)
	}
	return h, nil
}

// PartialError is a Parse failure after the parser had seen some of the
// instance's identifying attributes, so that a STOW response can name
// the instance it failed to store. It unwraps to the parse error.
type PartialError struct {
	// Header holds what was read before the failure: the identifying
	// UIDs (those present), TransferSyntaxUID, Meta and the elements of
	// Dataset read so far. Frames and bulk spans are not meaningful.
	Header *Header
	Err    error
}

func (e *PartialError) Error() string { return e.Err.Error() }
func (e *PartialError) Unwrap() error { return e.Err }

// partial wraps err in a *PartialError when any identifying UID was read.
func (p *parser) partial(err error) error {
	h := p.h
	if h.Meta == nil {
		return err
	}
	p.identify() // fills what is there; its own error is superseded by err
	if h.SOPClassUID == "" && h.SOPInstanceUID == "" && h.StudyInstanceUID == "" && h.SeriesInstanceUID == "" {
		return err
	}
	return &PartialError{
		Header: &Header{
			TransferSyntaxUID: h.TransferSyntaxUID,
			SOPClassUID:       h.SOPClassUID,
			SOPInstanceUID:    h.SOPInstanceUID,
			StudyInstanceUID:  h.StudyInstanceUID,
			SeriesInstanceUID: h.SeriesInstanceUID,
			Meta:              h.Meta,
			Dataset:           h.Dataset,
		},
		Err: err,
	}
}

func (p *parser) parse() (*Header, error) {
	meta, err := readMeta(p.s, &p.budget)
	if err != nil {
		return nil, err
	}
	h := p.h
	h.Meta = meta
	h.TransferSyntaxUID = uidValue(meta.find(tagTransferSyntaxUID))
	h.DataSetOffset = p.s.pos
	if h.TransferSyntaxUID == "" {
		h.TransferSyntaxUID = p.guessSyntax()
	}
	p.ts = transferSyntax(h.TransferSyntaxUID)
	h.BigEndian = p.ts.sx.big
	h.Deflated = p.ts.deflated
	if p.ts.deflated {
		p.s.inflate()
	}
	h.Dataset = &Dataset{}
	if err := p.readDataset(h.Dataset, p.ts.sx, -1, 0, ""); err != nil {
		return nil, err
	}
	if err := p.s.drain(); err != nil {
		return nil, err
	}
	if err := p.identify(); err != nil {
		return nil, err
	}
	if err := p.frames(); err != nil {
		return nil, err
	}
	h.RetainedBytes = MaxRetainedBytes - p.budget
	for _, f := range h.Frames {
		h.RetainedBytes += int64(24 + 16*len(f))
	}
	return h, nil
}

// guessSyntax picks explicit or implicit VR LE when the meta group has no
// TransferSyntaxUID, by looking for a VR in the first element.
func (p *parser) guessSyntax() string {
	b, _ := p.s.br.Peek(6)
	if len(b) == 6 && vrString(b[4], b[5]) != "" {
		return tsExplicitLE
	}
	return tsImplicitLE
}

func (p *parser) identify() error {
	h, ds := p.h, p.h.Dataset
	h.SOPClassUID = uidValue(ds.find(tagSOPClassUID))
	if h.SOPClassUID == "" {
		h.SOPClassUID = uidValue(h.Meta.find(tagMediaStorageSOPClassUID))
	}
	h.SOPInstanceUID = uidValue(ds.find(tagSOPInstanceUID))
	if h.SOPInstanceUID == "" {
		h.SOPInstanceUID = uidValue(h.Meta.find(tagMediaStorageSOPInstanceUID))
	}
	h.StudyInstanceUID = uidValue(ds.find(tagStudyInstanceUID))
	h.SeriesInstanceUID = uidValue(ds.find(tagSeriesInstanceUID))
	switch {
	case h.SOPInstanceUID == "":
		return invalidf("missing SOPInstanceUID (0008,0018)")
	case h.StudyInstanceUID == "":
		return invalidf("missing StudyInstanceUID (0020,000D)")
	case h.SeriesInstanceUID == "":
		return invalidf("missing SeriesInstanceUID (0020,000E)")
	}
	return nil
}

// uidValue is a UI value without trailing NUL/space padding.
func uidValue(e *Element) string {
	if e == nil {
		return ""
	}
	return string(bytes.TrimRight(e.Value, "\x00 "))
}

// implicitVR picks the VR of an implicit VR element from the dictionary,
// resolving "US or SS" by PixelRepresentation and "OB or OW" for pixel
// data by BitsAllocated, as PS3.5 Annex A prescribes.
func implicitVR(t Tag, top *Dataset) string {
	if t == tagPixelData || t.Group()&0xFF00 == 0x6000 && t.Element() == 0x3000 {
		if ba := top.find(tagBitsAllocated); ba != nil && len(ba.Value) >= 2 && binary.LittleEndian.Uint16(ba.Value) <= 8 {
			return "OB"
		}
		return "OW"
	}
	info, ok := dictInfo(t)
	if t.Element() == 0 && t.Group() != 0xFFFE {
		return "UL"
	}
	if !ok || len(info.VRs) == 0 {
		return DictVR(t)
	}
	if len(info.VRs) > 1 && info.VRs[0] == "US" && info.VRs[1] == "SS" {
		if pr := top.find(tagPixelRepresentation); pr != nil && len(pr.Value) >= 2 && binary.LittleEndian.Uint16(pr.Value) == 1 {
			return "SS"
		}
		return "US"
	}
	if !knownVR(info.VRs[0]) {
		return "UN"
	}
	return info.VRs[0]
}

// errItemEnd reports an item delimitation item ending an undefined-length item.
var errItemEnd = errors.New("item end")

// readDataset reads elements into ds until end (an absolute offset), or
// an item delimiter (end < 0 inside an item), or EOF (top level).
func (p *parser) readDataset(ds *Dataset, sx syntax, end int64, depth int, path string) error {
	s := p.s
	top := depth == 0
	for {
		if end >= 0 {
			if s.pos == end {
				return nil
			}
			if s.pos > end {
				return invalidf("element overruns its item at offset %d", s.pos)
			}
		}
		h, err := s.readHeader(sx)
		if err == io.EOF {
			if top {
				return nil
			}
			// Inside an item: the input ended before its delimiter.
			return s.ioErr(io.ErrUnexpectedEOF)
		}
		if err != nil {
			return err
		}
		switch h.tag {
		case tagItemDelimitation:
			if !top && end < 0 {
				return nil
			}
			return invalidf("unexpected item delimiter at offset %d", h.off)
		case tagSequenceDelimitation, tagItem:
			return invalidf("unexpected item tag %08X at offset %d", uint32(h.tag), h.off)
		case 0:
			if top && h.length == 0 {
				return nil // zero padding after the data set; drained by the caller
			}
		}
		if err := charge(&p.budget, 0); err != nil {
			return err
		}
		e := &Element{Tag: h.tag, VR: h.vr}
		if e.VR == "" {
			e.VR = implicitVR(h.tag, p.h.Dataset)
		}
		ds.Elements = append(ds.Elements, e)
		if err := p.readValue(e, h, sx, depth, path); err != nil {
			return err
		}
	}
}

func (p *parser) readValue(e *Element, h elemHeader, sx syntax, depth int, path string) error {
	s := p.s
	if h.length == undefinedLength {
		switch {
		case h.tag == tagPixelData:
			return p.readEncapsulated(e, sx, depth == 0)
		case e.VR == "UN":
			// PS3.5 6.2.2: UN with undefined length is a sequence in implicit VR LE.
			e.VR = "SQ"
			return p.readSequence(e, implicitLE, h.length, depth, path)
		case e.VR == "SQ" || !sx.explicit:
			e.VR = "SQ"
			return p.readSequence(e, sx, h.length, depth, path)
		}
		return invalidf("undefined length for VR %s, tag %08X at offset %d", e.VR, uint32(h.tag), h.off)
	}
	if e.VR == "SQ" {
		return p.readSequence(e, sx, h.length, depth, path)
	}
	n := int64(h.length)
	bulk := h.tag == tagPixelData || binaryVR(e.VR) && n > BulkThreshold &&
		h.tag != tagExtendedOffsetTable && h.tag != tagExtendedOffsetTableLengths
	if bulk {
		e.Bulk = &Span{Offset: s.pos, Length: n}
		return s.skip(n)
	}
	if err := charge(&p.budget, n); err != nil {
		return err
	}
	v, err := s.readValue(n)
	if err != nil {
		return err
	}
	if sx.big {
		swapBytes(v, swapUnit(e.VR))
	}
	e.Value = v
	return nil
}

func (p *parser) readSequence(e *Element, sx syntax, length uint32, depth int, path string) error {
	if depth >= maxDepth {
		return invalidf("sequences nested deeper than %d", maxDepth)
	}
	s := p.s
	end := int64(-1)
	if length != undefinedLength {
		end = s.pos + int64(length)
	}
	for {
		if end >= 0 {
			if s.pos == end {
				return nil
			}
			if s.pos > end {
				return invalidf("item overruns its sequence at offset %d", s.pos)
			}
		}
		h, err := s.readHeader(implicitOf(sx))
		if err == io.EOF {
			return s.ioErr(io.ErrUnexpectedEOF)
		}
		if err != nil {
			return err
		}
		switch h.tag {
		case tagSequenceDelimitation:
			if end < 0 {
				return nil
			}
			return invalidf("sequence delimiter in a defined-length sequence at offset %d", h.off)
		case tagItem:
		default:
			return invalidf("unexpected tag %08X in sequence at offset %d", uint32(h.tag), h.off)
		}
		if err := charge(&p.budget, 0); err != nil {
			return err
		}
		item := &Dataset{}
		e.Items = append(e.Items, item)
		iend := int64(-1)
		if h.length != undefinedLength {
			iend = s.pos + int64(h.length)
			if end >= 0 && iend > end {
				return invalidf("item length exceeds its sequence at offset %d", h.off)
			}
		}
		if err := p.readDataset(item, sx, iend, depth+1, path); err != nil {
			return err
		}
	}
}

// implicitOf is sx for reading item headers (which never carry a VR).
func implicitOf(sx syntax) syntax { return syntax{big: sx.big} }

// readEncapsulated reads the items of encapsulated pixel data. Only the
// top-level PixelData keeps its fragment table; Element.Bulk spans the
// whole value (all items with their headers, without the sequence
// delimiter).
func (p *parser) readEncapsulated(e *Element, sx syntax, top bool) error {
	s := p.s
	start := s.pos
	var base int64
	first := true
	for {
		h, err := s.readHeader(implicitOf(sx))
		if err == io.EOF {
			return s.ioErr(io.ErrUnexpectedEOF)
		}
		if err != nil {
			return err
		}
		if h.tag == tagSequenceDelimitation {
			e.Bulk = &Span{Offset: start, Length: h.off - start}
			if top {
				p.h.Encapsulated = true
			}
			return nil
		}
		if h.tag != tagItem || h.length == undefinedLength {
			return invalidf("bad pixel data item %08X at offset %d", uint32(h.tag), h.off)
		}
		n := int64(h.length)
		if first {
			first = false
			base = s.pos + n
			if !top || n == 0 {
				if err := s.skip(n); err != nil {
					return err
				}
				continue
			}
			if err := charge(&p.budget, n); err != nil {
				return err
			}
			v, err := s.readValue(n)
			if err != nil {
				return err
			}
			p.bot = make([]uint32, len(v)/4)
			for i := range p.bot {
				p.bot[i] = sx.u32(v[4*i:])
			}
			continue
		}
		if !top {
			if err := s.skip(n); err != nil {
				return err
			}
			continue
		}
		if len(p.frags) >= maxFragments {
			return invalidf("more than %d pixel data fragments", maxFragments)
		}
		f := fragment{rel: h.off - base, span: Span{Offset: s.pos, Length: n}}
		if n >= 2 {
			b, err := s.br.Peek(2)
			if err != nil {
				return s.ioErr(err)
			}
			f.start = b[0] == 0xFF && (b[1] == 0xD8 || b[1] == 0x4F)
		}
		p.frags = append(p.frags, f)
		if err := s.skip(n); err != nil {
			return err
		}
	}
}
