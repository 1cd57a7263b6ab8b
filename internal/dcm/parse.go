package dcm

import (
	"bytes"
	"encoding/binary"
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
	w      walker
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
	if err := p.readDataset(p.ts.sx); err != nil {
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

// readDataset reads the data set into p.h.Dataset, building the tree
// of sequences and items the walker reports.
func (p *parser) readDataset(sx syntax) error {
	w := &p.w
	w.init(p.s, sx, p.h.Dataset, p.budget, true)
	defer func() { p.budget = w.budget }()
	ds := p.h.Dataset
	var outerBuf [8]*Dataset
	var seqsBuf [8]*Element
	outer := outerBuf[:0] // the data sets around ds
	seqs := seqsBuf[:0]   // the sequences open around ds
	for {
		ev, err := w.next()
		if err != nil {
			return err
		}
		switch ev.kind {
		case walkEnd:
			return nil
		case walkValue:
			e := &Element{Tag: ev.tag, VR: ev.vr}
			ds.Elements = append(ds.Elements, e)
			if err := p.readValue(w, e, ev); err != nil {
				return err
			}
		case walkSequence:
			e := &Element{Tag: ev.tag, VR: ev.vr}
			ds.Elements = append(ds.Elements, e)
			seqs = append(seqs, e)
		case walkItem:
			item := &Dataset{}
			seq := seqs[len(seqs)-1]
			seq.Items = append(seq.Items, item)
			outer = append(outer, ds)
			ds = item
		case walkItemEnd:
			ds = outer[len(outer)-1]
			outer = outer[:len(outer)-1]
		case walkSequenceEnd:
			seqs = seqs[:len(seqs)-1]
		case walkEncapsulated:
			e := &Element{Tag: ev.tag, VR: ev.vr}
			ds.Elements = append(ds.Elements, e)
			if err := p.readEncapsulated(w, e, ev.depth == 0); err != nil {
				return err
			}
		}
	}
}

// readValue keeps a defined-length value, or its span when it is bulk
// data (left to the walker to skip).
func (p *parser) readValue(w *walker, e *Element, ev *walkEvent) error {
	n := int64(ev.length)
	bulk := ev.tag == tagPixelData || binaryVR(e.VR) && n > BulkThreshold &&
		ev.tag != tagExtendedOffsetTable && ev.tag != tagExtendedOffsetTableLengths
	if bulk {
		e.Bulk = &Span{Offset: p.s.pos, Length: n}
		return nil
	}
	v, err := w.value()
	if err != nil {
		return err
	}
	if ev.sx.big {
		swapBytes(v, swapUnit(e.VR))
	}
	e.Value = v
	return nil
}

// implicitOf is sx for reading item headers (which never carry a VR).
func implicitOf(sx syntax) syntax { return syntax{big: sx.big} }

// readEncapsulated reads the items of encapsulated pixel data. Only the
// top-level PixelData keeps its fragment table; Element.Bulk spans the
// whole value (all items with their headers, without the sequence
// delimiter).
func (p *parser) readEncapsulated(w *walker, e *Element, top bool) error {
	s := p.s
	start := s.pos
	var base int64
	first := true
	for {
		ev, err := w.next()
		if err != nil {
			return err
		}
		if ev.kind == walkFragmentsEnd {
			e.Bulk = &Span{Offset: start, Length: ev.off - start}
			if top {
				p.h.Encapsulated = true
			}
			return nil
		}
		n := int64(ev.length)
		if first {
			first = false
			base = s.pos + n
			if !top || n == 0 {
				continue
			}
			v, err := w.value()
			if err != nil {
				return err
			}
			p.bot = make([]uint32, len(v)/4)
			for i := range p.bot {
				p.bot[i] = ev.sx.u32(v[4*i:])
			}
			continue
		}
		if !top {
			continue
		}
		f := fragment{rel: ev.off - base, span: Span{Offset: s.pos, Length: n}}
		if n >= 2 {
			b, err := s.br.Peek(2)
			if err != nil {
				return s.ioErr(err)
			}
			f.start = b[0] == 0xFF && (b[1] == 0xD8 || b[1] == 0x4F)
		}
		p.frags = append(p.frags, f)
	}
}
