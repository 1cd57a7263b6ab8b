package codec

import (
	"fmt"
)

// JPEG Lossless, non-hierarchical (ITU T.81 process 14, SOF3, Huffman
// coded, predictors 1-7, point transform, restart intervals), written
// here: Go's image/jpeg does not do SOF3, and no well-kept pure-Go
// library does (the module proxy has only small unmaintained forks).

func init() {
	d := DecoderFunc(decodeJPEGLossless)
	Register(JPEGLossless, d)
	Register(JPEGLosslessSV1, d)
}

type huffTable struct {
	// Canonical decoding (T.81 F.2.2.3): for each code length l in 1..16,
	// codes in [minCode[l], maxCode[l]] map to vals[valPtr[l]+code-minCode[l]].
	minCode, maxCode [17]int32
	valPtr           [17]int32
	vals             []byte
	// lut: the first 8 bits -> length<<8 | value, 0 when longer.
	lut [256]uint16
	ok  bool
}

func (h *huffTable) build(counts [16]byte, vals []byte) error {
	h.vals = vals
	code, k := int32(0), int32(0)
	h.lut = [256]uint16{}
	for l := 1; l <= 16; l++ {
		n := int32(counts[l-1])
		if code+n > 1<<l { // checked before the table is filled: the codes must fit l bits
			return fmt.Errorf("%w: JPEG Huffman table over-subscribed", ErrCorrupt)
		}
		if n == 0 {
			h.maxCode[l] = -1
		} else {
			h.valPtr[l] = k
			h.minCode[l] = code
			if l <= 8 {
				for i := int32(0); i < n; i++ {
					c := code + i
					lo := c << (8 - l)
					for j := int32(0); j < 1<<(8-l); j++ {
						h.lut[lo+j] = uint16(l)<<8 | uint16(vals[k+i])
					}
				}
			}
			code += n
			k += n
			h.maxCode[l] = code - 1
		}
		code <<= 1
	}
	h.ok = true
	return nil
}

// readDHT reads the tables of a DHT marker segment (T.81 B.2.4.2) into
// the tables table picks by class (tc: 0 DC or lossless, 1 AC) and
// destination (th); a nil table is read past and not kept.
func readDHT(body []byte, table func(tc, th byte) *huffTable) error {
	for b := body; len(b) > 0; {
		if len(b) < 17 {
			return fmt.Errorf("%w: short JPEG DHT", ErrCorrupt)
		}
		tc, th := b[0]>>4, b[0]&15
		var counts [16]byte
		copy(counts[:], b[1:17])
		total := 0
		for _, c := range counts {
			total += int(c)
		}
		if th > 3 || tc > 1 || len(b) < 17+total || total > 256 {
			return fmt.Errorf("%w: bad JPEG DHT", ErrCorrupt)
		}
		if t := table(tc, th); t != nil {
			if err := t.build(counts, b[17:17+total]); err != nil {
				return err
			}
		}
		b = b[17+total:]
	}
	return nil
}

// bitReader reads entropy-coded bits, removing stuffed zero bytes; at a
// marker it stops and feeds zero bits (counted, so a stream that runs
// out is an error rather than a hang).
type bitReader struct {
	data   []byte
	pos    int
	acc    uint64
	n      uint // bits in acc
	marker byte // marker met (0: none)
	over   int  // zero bytes fed past the data
}

func (b *bitReader) fill() {
	for b.n <= 56 {
		var c byte
		if b.marker == 0 && b.pos < len(b.data) {
			c = b.data[b.pos]
			if c == 0xFF {
				if b.pos+1 < len(b.data) && b.data[b.pos+1] == 0 {
					b.pos += 2
				} else {
					if b.pos+1 < len(b.data) {
						b.marker = b.data[b.pos+1]
					} else {
						b.marker = 0xFF
					}
					c = 0
					b.over++
				}
			} else {
				b.pos++
			}
		} else {
			b.over++
		}
		b.acc |= uint64(c) << (56 - b.n)
		b.n += 8
	}
}

func (b *bitReader) bits(n uint) int32 {
	if n == 0 {
		return 0
	}
	if b.n < n {
		b.fill()
	}
	v := int32(b.acc >> (64 - n))
	b.acc <<= n
	b.n -= n
	return v
}

func (b *bitReader) decode(h *huffTable) (int, error) {
	if b.n < 16 {
		b.fill()
	}
	if e := h.lut[b.acc>>56]; e != 0 {
		l := uint(e >> 8)
		b.acc <<= l
		b.n -= l
		return int(e & 0xFF), nil
	}
	code := int32(0)
	for l := 1; l <= 16; l++ {
		code = code<<1 | int32(b.acc>>63)
		b.acc <<= 1
		b.n--
		if h.maxCode[l] >= code && code >= h.minCode[l] && h.maxCode[l] >= 0 {
			return int(h.vals[h.valPtr[l]+code-h.minCode[l]]), nil
		}
	}
	return 0, fmt.Errorf("%w: bad JPEG Huffman code", ErrCorrupt)
}

// restart skips to just after the next RSTn marker and clears the bits.
func (b *bitReader) restart() error {
	b.acc, b.n = 0, 0
	if b.marker != 0 {
		// fill stopped at a marker at b.pos.
		if b.marker >= 0xD0 && b.marker <= 0xD7 {
			b.pos += 2
			b.marker = 0
			return nil
		}
		return fmt.Errorf("%w: JPEG marker FF%02X where a restart marker was expected", ErrCorrupt, b.marker)
	}
	for b.pos+1 < len(b.data) {
		if b.data[b.pos] == 0xFF && b.data[b.pos+1] >= 0xD0 && b.data[b.pos+1] <= 0xD7 {
			b.pos += 2
			return nil
		}
		b.pos++
	}
	return fmt.Errorf("%w: JPEG restart marker missing", ErrCorrupt)
}

type llComponent struct {
	id   byte
	h, v byte
}

func decodeJPEGLossless(_ string, frame []byte, info PixelInfo) (*Pixels, error) {
	info, err := info.normalized()
	if err != nil {
		return nil, err
	}
	mr, err := newMarkerReader(frame)
	if err != nil {
		return nil, err
	}
	var (
		dc        [4]huffTable
		comps     []llComponent
		precision int
		w, hgt    int
		ri        int
		planes    [][]int32
		scans     int
	)
	for {
		m, body, ok, err := mr.next()
		if err != nil {
			return nil, err
		}
		if !ok {
			break
		}
		switch {
		case m == 0xC3:
			if comps != nil {
				return nil, fmt.Errorf("%w: second JPEG frame header", ErrCorrupt)
			}
			if len(body) < 6 {
				return nil, fmt.Errorf("%w: short JPEG SOF3", ErrCorrupt)
			}
			precision = int(body[0])
			hgt = int(body[1])<<8 | int(body[2])
			w = int(body[3])<<8 | int(body[4])
			nf := int(body[5])
			if precision < 2 || precision > 16 || nf < 1 || nf > 4 || len(body) < 6+3*nf {
				return nil, fmt.Errorf("%w: JPEG SOF3 precision %d, %d components", ErrCorrupt, precision, nf)
			}
			for i := 0; i < nf; i++ {
				c := body[6+3*i:]
				comps = append(comps, llComponent{id: c[0], h: c[1] >> 4, v: c[1] & 15})
				if c[1] != 0x11 {
					return nil, fmt.Errorf("%w: JPEG Lossless with subsampled components", ErrUnsupported)
				}
			}
			if w != info.Columns || hgt != info.Rows || nf != info.SamplesPerPixel {
				return nil, fmt.Errorf("%w: JPEG frame %dx%dx%d, the data set says %dx%dx%d",
					ErrCorrupt, w, hgt, nf, info.Columns, info.Rows, info.SamplesPerPixel)
			}
			planes = make([][]int32, nf)
			for i := range planes {
				planes[i] = make([]int32, w*hgt)
			}
		case m == 0xC4:
			if err := readDHT(body, func(tc, th byte) *huffTable {
				if tc == 1 {
					return nil // AC tables have no use in a lossless scan
				}
				return &dc[th]
			}); err != nil {
				return nil, err
			}
		case m == 0xDD:
			if len(body) < 2 {
				return nil, fmt.Errorf("%w: short JPEG DRI", ErrCorrupt)
			}
			ri = int(body[0])<<8 | int(body[1])
		case m == 0xDA:
			if comps == nil {
				return nil, fmt.Errorf("%w: JPEG scan before the frame header", ErrCorrupt)
			}
			n, err := decodeLosslessScan(mr.scanData(), body, comps, planes, &dc, precision, w, hgt, ri)
			if err != nil {
				return nil, err
			}
			mr.consume(n)
			scans++
		case m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC:
			return nil, fmt.Errorf("%w: JPEG process SOF%d is not JPEG Lossless (SOF3)", ErrUnsupported, m-0xC0)
		}
	}
	if scans == 0 {
		return nil, fmt.Errorf("%w: JPEG stream has no scan", ErrCorrupt)
	}
	px := newPixels(info)
	conv := sampleConv(info)
	spp := len(planes)
	for s, p := range planes {
		for i, v := range p {
			px.Data[i*spp+s] = conv(uint32(v))
		}
	}
	return px, nil
}

// decodeLosslessScan decodes one scan whose entropy-coded data start at
// data[0]; it returns the number of bytes consumed.
func decodeLosslessScan(data, sos []byte, comps []llComponent, planes [][]int32, dc *[4]huffTable, precision, w, h, ri int) (int, error) {
	if len(sos) < 1 {
		return 0, fmt.Errorf("%w: short JPEG SOS", ErrCorrupt)
	}
	ns := int(sos[0])
	if ns < 1 || ns > len(comps) || len(sos) < 1+2*ns+3 {
		return 0, fmt.Errorf("%w: bad JPEG SOS", ErrCorrupt)
	}
	idx := make([]int, ns)
	tabs := make([]*huffTable, ns)
	for i := 0; i < ns; i++ {
		id, td := sos[1+2*i], sos[2+2*i]>>4
		idx[i] = -1
		for j, c := range comps {
			if c.id == id {
				idx[i] = j
			}
		}
		if idx[i] < 0 || td > 3 || !dc[td].ok {
			return 0, fmt.Errorf("%w: JPEG scan names component %d or table %d that is not defined", ErrCorrupt, id, td)
		}
		tabs[i] = &dc[td]
	}
	pred := int(sos[1+2*ns])
	pt := int(sos[3+2*ns] & 15)
	if pred < 1 || pred > 7 {
		return 0, fmt.Errorf("%w: JPEG Lossless predictor %d", ErrCorrupt, pred)
	}
	if pt >= precision {
		return 0, fmt.Errorf("%w: JPEG point transform %d with precision %d", ErrCorrupt, pt, precision)
	}
	br := &bitReader{data: data}
	initial := int32(1) << uint(precision-pt-1)
	const mod = 0xFFFF
	total := w * h
	restartLeft := ri
	// firstRow: the row at which the image or the last restart interval
	// began; its samples predict from the left only.
	firstRow, firstSample := 0, true
	for i := 0; i < total; i++ {
		if ri > 0 {
			if restartLeft == 0 {
				if err := br.restart(); err != nil {
					return 0, err
				}
				restartLeft = ri
				firstRow, firstSample = i/w, true
			}
			restartLeft--
		}
		x, y := i%w, i/w
		for k := 0; k < ns; k++ {
			p := planes[idx[k]]
			var px int32
			switch {
			case firstSample:
				px = initial
			case y == firstRow:
				px = p[i-1]
			case x == 0:
				px = p[i-w]
			default:
				ra, rb, rc := p[i-1], p[i-w], p[i-w-1]
				switch pred {
				case 1:
					px = ra
				case 2:
					px = rb
				case 3:
					px = rc
				case 4:
					px = ra + rb - rc
				case 5:
					px = ra + (rb-rc)>>1
				case 6:
					px = rb + (ra-rc)>>1
				case 7:
					px = (ra + rb) >> 1
				}
			}
			s, err := br.decode(tabs[k])
			if err != nil {
				return 0, err
			}
			var diff int32
			switch {
			case s == 0:
			case s == 16:
				diff = 32768
			case s > 16:
				return 0, fmt.Errorf("%w: JPEG Lossless difference category %d", ErrCorrupt, s)
			default:
				diff = br.bits(uint(s))
				if diff < 1<<uint(s-1) {
					diff += -1<<uint(s) + 1
				}
			}
			p[i] = (px + diff) & mod
		}
		firstSample = false
		if br.over > 64 {
			return 0, fmt.Errorf("%w: JPEG entropy-coded data end early", ErrCorrupt)
		}
	}
	// Undo the point transform and keep precision bits.
	if pt > 0 {
		for _, c := range idx {
			p := planes[c]
			for i := range p {
				p[i] = (p[i] << uint(pt)) & mod
			}
		}
	}
	// Consumed bytes: up to the marker that ends the scan.
	end := br.pos
	for end < len(data) && !(data[end] == 0xFF && end+1 < len(data) && data[end+1] != 0 && (data[end+1] < 0xD0 || data[end+1] > 0xD7)) {
		end++
	}
	return end, nil
}
