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
	c.wk.init(s, ts.sx, c.top, 0, false)
	if err := c.dataset(); err != nil {
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
	wk  walker
}

// dataset converts the data set c.wk walks, to its end.
func (c *converter) dataset() error {
	for {
		ev, err := c.wk.next()
		if err != nil {
			return err
		}
		if ev.kind == walkEnd {
			return nil
		}
		if err := c.event(ev); err != nil {
			return err
		}
	}
}

// event writes what one step of the walk stands for in explicit VR
// little endian: sequences and items with undefined lengths.
func (c *converter) event(ev *walkEvent) error {
	switch ev.kind {
	case walkValue:
		return c.element(ev)
	case walkEncapsulated:
		return fmt.Errorf("%w: encapsulated pixel data in transfer syntax without compression", ErrUnsupported)
	case walkSequence:
		c.hdr = appendHeaderLE(c.hdr[:0], ev.tag, "SQ", undefinedLength)
	case walkItem:
		c.hdr = appendItemLE(c.hdr[:0], tagItem, undefinedLength)
	case walkItemEnd:
		c.hdr = appendItemLE(c.hdr[:0], tagItemDelimitation, 0)
	case walkSequenceEnd:
		c.hdr = appendItemLE(c.hdr[:0], tagSequenceDelimitation, 0)
	default:
		return fmt.Errorf("dcm: converter: unexpected walk event %d", ev.kind)
	}
	_, err := c.w.Write(c.hdr)
	return err
}

// element copies a defined-length value in chunks, swapping big endian
// values; group lengths are dropped (the walker skips their values).
func (c *converter) element(ev *walkEvent) error {
	h, vr := ev.elemHeader, ev.vr
	n := int64(h.length)
	if h.tag.Element() == 0 {
		return nil // group length: dropped
	}
	if !longVR(vr) && n > 0xFFFF {
		vr = "UN"
	}
	c.hdr = appendHeaderLE(c.hdr[:0], h.tag, vr, h.length)
	if _, err := c.w.Write(c.hdr); err != nil {
		return err
	}
	unit := 1
	if ev.sx.big {
		unit = swapUnit(vr)
	}
	keep := ev.depth == 0 && (h.tag == tagBitsAllocated || h.tag == tagPixelRepresentation)
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
