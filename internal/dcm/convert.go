package dcm

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
)

// ToExplicitLE streams the Part 10 object in r, stored in any
// uncompressed transfer syntax (implicit VR LE, explicit VR BE, deflated
// explicit VR LE, explicit VR LE), to w as an Explicit VR Little Endian
// Part 10 object. Encapsulated (compressed) input returns an error
// wrapping ErrUnsupported. Memory stays bounded.
//
// The output has a zero preamble, the file meta group with the new
// TransferSyntaxUID and a recomputed group length, and the data set with
// explicit VRs: the dictionary VR for implicit input ("UN" when unknown;
// "US or SS" by PixelRepresentation; PixelData OW when BitsAllocated > 8,
// else OB), and UN when a value is too long for a VR with a 16-bit
// length. Sequences and items are written with undefined lengths and
// delimiters. Group length elements of the data set (gggg,0000) are
// dropped: they would be wrong after the rewrite and are retired.
func ToExplicitLE(w io.Writer, r io.Reader) error {
	s := newStream(r)
	defer s.release()
	budget := int64(MaxRetainedBytes)
	meta, err := readMeta(s, &budget)
	if err != nil {
		return err
	}
	uid := uidValue(meta.find(tagTransferSyntaxUID))
	if uid == "" {
		p := &parser{s: s}
		uid = p.guessSyntax()
	}
	ts := transferSyntax(uid)
	if ts.encapsulated {
		return fmt.Errorf("%w: ToExplicitLE from encapsulated transfer syntax %s", ErrUnsupported, uid)
	}
	bw := bufio.NewWriterSize(w, readChunk)
	if err := writeMeta(bw, meta); err != nil {
		return err
	}
	if ts.deflated {
		s.inflate()
	}
	c := &converter{s: s, w: bw, top: &Dataset{}}
	if err := c.dataset(ts.sx, -1, 0); err != nil {
		return err
	}
	if err := s.drain(); err != nil {
		return err
	}
	return bw.Flush()
}

func writeMeta(w *bufio.Writer, meta *Dataset) error {
	var body []byte
	tsDone := false
	put := func(t Tag, vr string, v []byte) {
		body = appendHeaderLE(body, t, vr, uint32(len(v)))
		body = append(body, v...)
	}
	newTS := []byte(tsExplicitLE + "\x00")
	for _, e := range meta.Elements {
		switch {
		case e.Tag == tagFileMetaInformationGroupLength:
			continue
		case e.Tag == tagTransferSyntaxUID:
			put(e.Tag, "UI", newTS)
			tsDone = true
			continue
		case e.Tag > tagTransferSyntaxUID && !tsDone:
			put(tagTransferSyntaxUID, "UI", newTS)
			tsDone = true
		}
		vr := e.VR
		if !longVR(vr) && len(e.Value) > 0xFFFF {
			vr = "UN"
		}
		put(e.Tag, vr, e.Value)
	}
	if !tsDone {
		put(tagTransferSyntaxUID, "UI", newTS)
	}
	out := make([]byte, 128, 128+4+12+len(body))
	out = append(out, "DICM"...)
	out = appendHeaderLE(out, tagFileMetaInformationGroupLength, "UL", 4)
	out = binary.LittleEndian.AppendUint32(out, uint32(len(body)))
	out = append(out, body...)
	_, err := w.Write(out)
	return err
}

// appendHeaderLE appends an explicit VR little endian element header.
func appendHeaderLE(b []byte, t Tag, vr string, n uint32) []byte {
	b = binary.LittleEndian.AppendUint16(b, t.Group())
	b = binary.LittleEndian.AppendUint16(b, t.Element())
	b = append(b, vr...)
	if longVR(vr) {
		b = append(b, 0, 0)
		return binary.LittleEndian.AppendUint32(b, n)
	}
	return binary.LittleEndian.AppendUint16(b, uint16(n))
}

func appendItemLE(b []byte, t Tag, n uint32) []byte {
	b = binary.LittleEndian.AppendUint16(b, t.Group())
	b = binary.LittleEndian.AppendUint16(b, t.Element())
	return binary.LittleEndian.AppendUint32(b, n)
}

type converter struct {
	s   *stream
	w   *bufio.Writer
	top *Dataset // BitsAllocated, PixelRepresentation for implicit VRs
	hdr []byte
	buf []byte
}

func (c *converter) dataset(sx syntax, end int64, depth int) error {
	s := c.s
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
				return nil
			}
		}
		vr := h.vr
		if vr == "" {
			vr = implicitVR(h.tag, c.top)
		}
		if err := c.element(h, vr, sx, depth); err != nil {
			return err
		}
	}
}

func (c *converter) element(h elemHeader, vr string, sx syntax, depth int) error {
	if h.length == undefinedLength {
		switch {
		case h.tag == tagPixelData:
			return fmt.Errorf("%w: encapsulated pixel data in transfer syntax without compression", ErrUnsupported)
		case vr == "UN":
			return c.sequence(h.tag, implicitLE, h.length, depth)
		case vr == "SQ" || !sx.explicit:
			return c.sequence(h.tag, sx, h.length, depth)
		}
		return invalidf("undefined length for VR %s, tag %08X at offset %d", vr, uint32(h.tag), h.off)
	}
	if vr == "SQ" {
		return c.sequence(h.tag, sx, h.length, depth)
	}
	n := int64(h.length)
	if h.tag.Element() == 0 {
		return c.s.skip(n) // group length: dropped
	}
	if !longVR(vr) && n > 0xFFFF {
		vr = "UN"
	}
	c.hdr = appendHeaderLE(c.hdr[:0], h.tag, vr, h.length)
	if _, err := c.w.Write(c.hdr); err != nil {
		return err
	}
	unit := 1
	if sx.big {
		unit = swapUnit(vr)
	}
	keep := depth == 0 && (h.tag == tagBitsAllocated || h.tag == tagPixelRepresentation)
	if c.buf == nil {
		c.buf = make([]byte, readChunk)
	}
	for n > 0 {
		k := min(n, int64(len(c.buf)))
		b := c.buf[:k]
		if err := c.s.read(b); err != nil {
			return err
		}
		swapBytes(b, unit)
		if keep {
			c.top.Elements = append(c.top.Elements, &Element{Tag: h.tag, VR: vr, Value: append([]byte(nil), b...)})
			keep = false
		}
		if _, err := c.w.Write(b); err != nil {
			return err
		}
		n -= k
	}
	return nil
}

func (c *converter) sequence(t Tag, sx syntax, length uint32, depth int) error {
	if depth >= maxDepth {
		return invalidf("sequences nested deeper than %d", maxDepth)
	}
	s := c.s
	c.hdr = appendHeaderLE(c.hdr[:0], t, "SQ", undefinedLength)
	if _, err := c.w.Write(c.hdr); err != nil {
		return err
	}
	end := int64(-1)
	if length != undefinedLength {
		end = s.pos + int64(length)
	}
	for {
		if end >= 0 && s.pos >= end {
			if s.pos > end {
				return invalidf("item overruns its sequence at offset %d", s.pos)
			}
			break
		}
		h, err := s.readHeader(implicitOf(sx))
		if err == io.EOF {
			return s.ioErr(io.ErrUnexpectedEOF)
		}
		if err != nil {
			return err
		}
		if h.tag == tagSequenceDelimitation {
			if end >= 0 {
				return invalidf("sequence delimiter in a defined-length sequence at offset %d", h.off)
			}
			break
		}
		if h.tag != tagItem {
			return invalidf("unexpected tag %08X in sequence at offset %d", uint32(h.tag), h.off)
		}
		iend := int64(-1)
		if h.length != undefinedLength {
			iend = s.pos + int64(h.length)
			if end >= 0 && iend > end {
				return invalidf("item length exceeds its sequence at offset %d", h.off)
			}
		}
		c.hdr = appendItemLE(c.hdr[:0], tagItem, undefinedLength)
		if _, err := c.w.Write(c.hdr); err != nil {
			return err
		}
		if err := c.dataset(sx, iend, depth+1); err != nil {
			return err
		}
		c.hdr = appendItemLE(c.hdr[:0], tagItemDelimitation, 0)
		if _, err := c.w.Write(c.hdr); err != nil {
			return err
		}
	}
	c.hdr = appendItemLE(c.hdr[:0], tagSequenceDelimitation, 0)
	_, err := c.w.Write(c.hdr)
	return err
}
