package dcm

import "io"

// walkKind is what walker.next found.
type walkKind uint8

const (
	// walkEnd: the data set ended (end of input, or zero padding after it).
	walkEnd walkKind = iota
	// walkValue: an element with a defined-length value, which follows in
	// the stream (length bytes).
	walkValue
	// walkSequence: an SQ element (also an undefined-length UN, or an
	// undefined-length element in implicit VR); its items follow.
	walkSequence
	// walkEncapsulated: an undefined-length PixelData; its fragments follow.
	walkEncapsulated
	// walkItem: an item of the current sequence starts; its elements follow.
	walkItem
	// walkItemEnd: the current item ended (its length or its delimiter).
	walkItemEnd
	// walkSequenceEnd: the current sequence ended (its length or its delimiter).
	walkSequenceEnd
	// walkFragment: an item of encapsulated pixel data (the first is the
	// Basic Offset Table); its value follows in the stream (length bytes).
	walkFragment
	// walkFragmentsEnd: the sequence delimiter after the fragments.
	walkFragmentsEnd
)

// walkEvent is one step of a walk.
type walkEvent struct {
	kind walkKind
	// elemHeader is the header just read; its vr is resolved (the
	// dictionary's for implicit VR, SQ for walkSequence). Empty for
	// walkEnd and for the end of an item or sequence by its length.
	elemHeader
	// sx is the syntax of the value (walkValue, walkFragment) or of the
	// items (walkSequence, walkEncapsulated).
	sx syntax
	// depth is the number of items open around the element or fragment,
	// 0 at the top level.
	depth int
}

// walkLevel is an open sequence, item or pixel data value.
type walkLevel struct {
	end   int64 // absolute end offset, -1 for undefined length
	items int32 // items read, for walkEncapsulated
	kind  walkKind
	sx    syntax
}

// walker reads one data set element by element, in stream order: the
// one place that knows element and item headers, undefined lengths and
// delimiters, sequence nesting, the VR rules of the transfer syntax and
// the limits. Parse, ToExplicitLE and RewriteExplicitLE consume it.
//
// A consumer calls init, then next until walkEnd or an error; next's
// event stays valid until the next call. After walkValue or walkFragment
// the consumer may read the value from the stream (value, or its own
// reads of part or all of it); next skips what it left unread. skip
// passes over a whole sequence or pixel data value. Errors wrap
// ErrInvalid for malformed or truncated input.
type walker struct {
	s   *stream
	top *Dataset // top-level elements read so far, for implicit VRs
	// budget is charged elementCost per element and item and the values
	// read with value, when charging.
	budget   int64
	charging bool
	depth    int       // walkItem levels open
	rest     int64     // end offset of the pending value, -1 when none
	n        int       // levels open, the data set's included
	ev       walkEvent // what next returned last
	// levels: the data set, and for each depth a sequence and an item,
	// and an encapsulated pixel data value. An array, not a slice into
	// itself, so that a consumer holding the walker stays on the stack.
	levels [2*maxDepth + 2]walkLevel
}

// init starts a walk of the data set that follows in s, encoded in sx.
// When charging, budget is what values may still take; the walker's
// budget field has what is left.
func (w *walker) init(s *stream, sx syntax, top *Dataset, budget int64, charging bool) {
	w.s, w.top, w.budget, w.charging = s, top, budget, charging
	w.depth, w.rest, w.n = 0, -1, 1
	w.levels[0] = walkLevel{kind: walkItem, end: -1, sx: sx}
}

func (w *walker) charge(n int64) error {
	if !w.charging {
		return nil
	}
	return charge(&w.budget, n)
}

func (w *walker) push(l walkLevel) { w.levels[w.n] = l; w.n++ }

// value reads the rest of the pending value (after walkValue or
// walkFragment) into a new slice, charged to the budget.
func (w *walker) value() ([]byte, error) {
	n := w.rest - w.s.pos
	if err := w.charge(n); err != nil {
		return nil, err
	}
	return w.s.readValue(n)
}

// next reads up to and including the next header and reports it.
func (w *walker) next() (*walkEvent, error) {
	s := w.s
	if w.rest >= 0 {
		if err := s.skip(w.rest - s.pos); err != nil {
			return nil, err
		}
		w.rest = -1
	}
	l := &w.levels[w.n-1]
	switch l.kind {
	case walkItem:
		return w.element(l)
	case walkSequence:
		return w.item(l)
	}
	return w.fragment(l)
}

// element reads the next element of a data set or item.
func (w *walker) element(l *walkLevel) (*walkEvent, error) {
	s := w.s
	top := w.n == 1
	if l.end >= 0 {
		if s.pos == l.end {
			return w.pop(walkItemEnd, elemHeader{}), nil
		}
		if s.pos > l.end {
			return nil, invalidf("element overruns its item at offset %d", s.pos)
		}
	}
	sx := l.sx
	ev := &w.ev
	h := &ev.elemHeader
	err := s.readHeaderTo(h, sx)
	if err == io.EOF {
		if top {
			return w.emit(walkEvent{kind: walkEnd}), nil
		}
		// Inside an item: the input ended before its delimiter.
		return nil, s.ioErr(io.ErrUnexpectedEOF)
	}
	if err != nil {
		return nil, err
	}
	switch h.tag {
	case tagItemDelimitation:
		if !top && l.end < 0 {
			return w.pop(walkItemEnd, *h), nil
		}
		return nil, invalidf("unexpected item delimiter at offset %d", h.off)
	case tagSequenceDelimitation, tagItem:
		return nil, invalidf("unexpected item tag %08X at offset %d", uint32(h.tag), h.off)
	case 0:
		if top && h.length == 0 {
			return w.emit(walkEvent{kind: walkEnd}), nil // zero padding after the data set; drained by the caller
		}
	}
	if err := w.charge(0); err != nil {
		return nil, err
	}
	if h.vr == "" {
		h.vr = implicitVR(h.tag, w.top)
	}
	ev.kind, ev.sx, ev.depth = walkValue, sx, w.depth
	if h.length == undefinedLength {
		switch {
		case h.tag == tagPixelData:
			ev.kind = walkEncapsulated
			ev.sx = implicitOf(sx)
			w.push(walkLevel{kind: walkEncapsulated, end: -1, sx: ev.sx})
			return ev, nil
		case h.vr == "UN":
			// PS3.5 6.2.2: UN with undefined length is a sequence in implicit VR LE.
			ev.sx = implicitLE
		case h.vr == "SQ" || !sx.explicit:
		default:
			return nil, invalidf("undefined length for VR %s, tag %08X at offset %d", h.vr, uint32(h.tag), h.off)
		}
		ev.vr = "SQ"
	} else if h.vr != "SQ" {
		w.rest = s.pos + int64(h.length)
		return ev, nil
	}
	if w.depth >= maxDepth {
		return nil, invalidf("sequences nested deeper than %d", maxDepth)
	}
	ev.kind = walkSequence
	end := int64(-1)
	if h.length != undefinedLength {
		end = s.pos + int64(h.length)
	}
	w.push(walkLevel{kind: walkSequence, end: end, sx: ev.sx})
	return ev, nil
}

// item reads the next item header of a sequence.
func (w *walker) item(l *walkLevel) (*walkEvent, error) {
	s := w.s
	if l.end >= 0 {
		if s.pos == l.end {
			return w.pop(walkSequenceEnd, elemHeader{}), nil
		}
		if s.pos > l.end {
			return nil, invalidf("item overruns its sequence at offset %d", s.pos)
		}
	}
	h, err := s.readHeader(implicitOf(l.sx))
	if err == io.EOF {
		return nil, s.ioErr(io.ErrUnexpectedEOF)
	}
	if err != nil {
		return nil, err
	}
	switch h.tag {
	case tagSequenceDelimitation:
		if l.end < 0 {
			return w.pop(walkSequenceEnd, h), nil
		}
		return nil, invalidf("sequence delimiter in a defined-length sequence at offset %d", h.off)
	case tagItem:
	default:
		return nil, invalidf("unexpected tag %08X in sequence at offset %d", uint32(h.tag), h.off)
	}
	if err := w.charge(0); err != nil {
		return nil, err
	}
	end := int64(-1)
	if h.length != undefinedLength {
		end = s.pos + int64(h.length)
		if l.end >= 0 && end > l.end {
			return nil, invalidf("item length exceeds its sequence at offset %d", h.off)
		}
	}
	ev := w.emit(walkEvent{kind: walkItem, elemHeader: h, sx: l.sx, depth: w.depth})
	w.push(walkLevel{kind: walkItem, end: end, sx: l.sx})
	w.depth++
	return ev, nil
}

// fragment reads the next item header of encapsulated pixel data.
func (w *walker) fragment(l *walkLevel) (*walkEvent, error) {
	s := w.s
	h, err := s.readHeader(l.sx)
	if err == io.EOF {
		return nil, s.ioErr(io.ErrUnexpectedEOF)
	}
	if err != nil {
		return nil, err
	}
	if h.tag == tagSequenceDelimitation {
		return w.pop(walkFragmentsEnd, h), nil
	}
	if h.tag != tagItem || h.length == undefinedLength {
		return nil, invalidf("bad pixel data item %08X at offset %d", uint32(h.tag), h.off)
	}
	if l.items > maxFragments { // the Basic Offset Table and maxFragments fragments
		return nil, invalidf("more than %d pixel data fragments", maxFragments)
	}
	l.items++
	w.rest = s.pos + int64(h.length)
	return w.emit(walkEvent{kind: walkFragment, elemHeader: h, sx: l.sx, depth: w.depth}), nil
}

// pop closes the innermost level with an event of kind k.
func (w *walker) pop(k walkKind, h elemHeader) *walkEvent {
	w.n--
	if w.levels[w.n].kind == walkItem {
		w.depth--
	}
	return w.emit(walkEvent{kind: k, elemHeader: h, depth: w.depth})
}

// emit keeps ev as the walker's current event (valid until the next
// call to next) and returns it.
func (w *walker) emit(ev walkEvent) *walkEvent {
	w.ev = ev
	return &w.ev
}

// skip skips the rest of the element of the last event: the value of a
// walkValue or walkFragment, or the whole of a walkSequence or
// walkEncapsulated, checked as if read.
func (w *walker) skip(ev *walkEvent) error {
	if ev.kind != walkSequence && ev.kind != walkEncapsulated {
		return nil // next skips the value
	}
	for open := w.n; w.n >= open; {
		if _, err := w.next(); err != nil {
			return err
		}
	}
	return nil
}
