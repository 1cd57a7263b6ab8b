package dcm

import (
	"bufio"
	"fmt"
	"io"
	"sort"
)

// Rewrite says how RewriteExplicitLE changes a data set.
type Rewrite struct {
	// Set replaces top-level elements of the data set, or inserts them in
	// tag order when absent. A value of odd length is padded (space for
	// text VRs, zero byte otherwise). SQ elements cannot be set.
	Set map[Tag]Value
	// Delete removes top-level elements (e.g. the Extended Offset Table,
	// 7FE0,0001 and 7FE0,0002, which describe encapsulated pixel data).
	Delete []Tag
	// PixelData, when not nil, supplies the new value of the top-level
	// PixelData element: PixelDataVR (OB or OW) and PixelDataLength (even)
	// are written as its header, then PixelData must write exactly
	// PixelDataLength bytes. The old value (native or encapsulated) is
	// skipped without being kept in memory.
	PixelData       func(w io.Writer) error
	PixelDataVR     string
	PixelDataLength uint32
}

// Value is an element value for Rewrite.Set.
type Value struct {
	VR    string
	Bytes []byte
}

// RewriteExplicitLE streams the Part 10 object in r to w as an Explicit
// VR Little Endian Part 10 object, like ToExplicitLE, and applies rw. It
// also reads encapsulated (compressed) objects: their data sets are
// explicit VR little endian, and the caller replaces the encapsulated
// PixelData through rw.PixelData (an encapsulated PixelData without
// rw.PixelData is an error wrapping ErrUnsupported). Memory stays
// bounded: values are copied in chunks.
func RewriteExplicitLE(w io.Writer, r io.Reader, rw Rewrite) error {
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
	bw := bufio.NewWriterSize(w, readChunk)
	if err := writeMeta(bw, meta); err != nil {
		return err
	}
	if ts.deflated {
		s.inflate()
	}
	c := &converter{s: s, w: bw, top: &Dataset{}}
	if err := c.rewriteTop(ts.sx, rw); err != nil {
		return err
	}
	if err := s.drain(); err != nil {
		return err
	}
	return bw.Flush()
}

func (c *converter) rewriteTop(sx syntax, rw Rewrite) error {
	type pending struct {
		tag Tag
		v   Value
	}
	var sets []pending
	for t, v := range rw.Set {
		if v.VR == "SQ" || t == tagPixelData || t.Group() <= 2 {
			return fmt.Errorf("dcm: Rewrite cannot set %08X", uint32(t))
		}
		sets = append(sets, pending{t, v})
	}
	sort.Slice(sets, func(i, j int) bool { return sets[i].tag < sets[j].tag })
	deleted := map[Tag]bool{}
	for _, t := range rw.Delete {
		deleted[t] = true
	}
	next := 0
	flush := func(before Tag, all bool) error {
		for next < len(sets) && (all || sets[next].tag < before) {
			if err := c.writeValue(sets[next].tag, sets[next].v); err != nil {
				return err
			}
			next++
		}
		return nil
	}
	wk := &c.wk
	wk.init(c.s, sx, c.top, 0, false)
	pixelDone := false
	for {
		ev, err := wk.next()
		if err != nil {
			return err
		}
		if ev.kind == walkEnd {
			break
		}
		if ev.depth > 0 || ev.kind != walkValue && ev.kind != walkSequence && ev.kind != walkEncapsulated {
			// Inside a top-level sequence: converted as it is.
			if err := c.event(ev); err != nil {
				return err
			}
			continue
		}
		if err := flush(ev.tag, false); err != nil {
			return err
		}
		replaced := next < len(sets) && sets[next].tag == ev.tag
		switch {
		case ev.tag == tagPixelData && rw.PixelData != nil:
			if err := wk.skip(ev); err != nil {
				return err
			}
			c.hdr = appendHeaderLE(c.hdr[:0], tagPixelData, rw.PixelDataVR, rw.PixelDataLength)
			if _, err := c.w.Write(c.hdr); err != nil {
				return err
			}
			cw := &countWriter{w: c.w}
			if err := rw.PixelData(cw); err != nil {
				return err
			}
			if cw.n != int64(rw.PixelDataLength) {
				return fmt.Errorf("dcm: Rewrite.PixelData wrote %d bytes, promised %d", cw.n, rw.PixelDataLength)
			}
			pixelDone = true
		case ev.kind == walkEncapsulated:
			return fmt.Errorf("%w: encapsulated pixel data needs Rewrite.PixelData", ErrUnsupported)
		case replaced || deleted[ev.tag]:
			if err := wk.skip(ev); err != nil {
				return err
			}
		default:
			if err := c.event(ev); err != nil {
				return err
			}
		}
	}
	if rw.PixelData != nil && !pixelDone {
		return fmt.Errorf("%w: no PixelData to replace", ErrInvalid)
	}
	return flush(0, true)
}

func (c *converter) writeValue(t Tag, v Value) error {
	b := v.Bytes
	if len(b)%2 == 1 {
		pad := byte(0)
		switch v.VR {
		case "AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UR", "UT":
			pad = ' '
		}
		b = append(b[:len(b):len(b)], pad)
	}
	vr := v.VR
	if !longVR(vr) && len(b) > 0xFFFF {
		return fmt.Errorf("dcm: Rewrite value of %08X too long for VR %s", uint32(t), vr)
	}
	c.hdr = appendHeaderLE(c.hdr[:0], t, vr, uint32(len(b)))
	if _, err := c.w.Write(c.hdr); err != nil {
		return err
	}
	_, err := c.w.Write(b)
	return err
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
