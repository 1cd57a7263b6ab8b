package codec

import (
	"fmt"
	"math"
)

// JPEG sequential DCT, Huffman coded (ITU T.81 processes 1, 2 and 4:
// SOF0/SOF1), at 8- or 12-bit precision, written here for the 12-bit
// streams of JPEG Extended (1.2.840.10008.1.2.4.51) that Go's image/jpeg
// refuses. It shares the marker reader (jpegmarker.go) with the lossless
// decoder and reuses that decoder's Huffman tables and bit reader
// (jpegll.go). Chosen over cgo to dcmtk's libijg12 because that library
// ships without its headers in libdcmtk-dev (only dcmtk's C++ wrapper
// classes), and a sequential DCT decoder is small; exactness is
// not required for a lossy syntax (the IDCT here is floating point,
// within ±1 of libjpeg's integer IDCT). Progressive (SOF2) and
// arithmetic-coded streams stay ErrUnsupported.

// zigzag maps the zig-zag index of a coefficient to its natural index.
var zigzag = [64]int{
	0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5,
	12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28,
	35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51,
	58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
}

// idctCos[x][u] = C(u)/2 * cos((2x+1)uπ/16).
var idctCos = func() (t [8][8]float64) {
	for x := 0; x < 8; x++ {
		for u := 0; u < 8; u++ {
			c := 1.0
			if u == 0 {
				c = 1 / math.Sqrt2
			}
			t[x][u] = c / 2 * math.Cos(float64(2*x+1)*float64(u)*math.Pi/16)
		}
	}
	return t
}()

type dctComponent struct {
	id     byte
	h, v   int
	tq     int
	bw, bh int     // blocks per line / column (padded to whole MCUs)
	plane  []int32 // bw*8 × bh*8 samples
	pred   int32
}

// maxDCTPixels bounds the planes a header may make us allocate (the data
// set's geometry is checked first; this is a second guard).
const maxDCTPixels = 1 << 28

func decodeJPEGDCT(frame []byte, info PixelInfo) (*Pixels, error) {
	mr, err := newMarkerReader(frame)
	if err != nil {
		return nil, err
	}
	var (
		qt         [4][64]int32
		qtOK       [4]bool
		dc, ac     [4]huffTable
		comps      []*dctComponent
		precision  int
		w, h       int
		hmax, vmax int
		ri         int
		scans      int
		adobe      = -1 // Adobe APP14 transform flag
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
		case m == 0xC0 || m == 0xC1:
			if comps != nil {
				return nil, fmt.Errorf("%w: second JPEG frame header", ErrCorrupt)
			}
			if len(body) < 6 {
				return nil, fmt.Errorf("%w: short JPEG SOF", ErrCorrupt)
			}
			precision = int(body[0])
			h = int(body[1])<<8 | int(body[2])
			w = int(body[3])<<8 | int(body[4])
			nf := int(body[5])
			if (precision != 8 && precision != 12) || nf < 1 || nf > 4 || len(body) < 6+3*nf {
				return nil, fmt.Errorf("%w: JPEG SOF precision %d, %d components", ErrCorrupt, precision, nf)
			}
			if w != info.Columns || h != info.Rows || nf != info.SamplesPerPixel {
				return nil, fmt.Errorf("%w: JPEG frame %dx%dx%d, the data set says %dx%dx%d",
					ErrCorrupt, w, h, nf, info.Columns, info.Rows, info.SamplesPerPixel)
			}
			for i := 0; i < nf; i++ {
				c := body[6+3*i:]
				dc := &dctComponent{id: c[0], h: int(c[1] >> 4), v: int(c[1] & 15), tq: int(c[2])}
				if dc.h < 1 || dc.h > 4 || dc.v < 1 || dc.v > 4 || dc.tq > 3 {
					return nil, fmt.Errorf("%w: JPEG component sampling %dx%d, table %d", ErrCorrupt, dc.h, dc.v, dc.tq)
				}
				hmax, vmax = max(hmax, dc.h), max(vmax, dc.v)
				comps = append(comps, dc)
			}
			mcux, mcuy := (w+8*hmax-1)/(8*hmax), (h+8*vmax-1)/(8*vmax)
			total := 0
			for _, c := range comps {
				c.bw, c.bh = mcux*c.h, mcuy*c.v
				total += c.bw * c.bh * 64
			}
			if total > maxDCTPixels {
				return nil, fmt.Errorf("%w: JPEG frame too large", ErrUnsupported)
			}
			for _, c := range comps {
				c.plane = make([]int32, c.bw*c.bh*64)
			}
		case m == 0xC4:
			if err := readDHT(body, func(tc, th byte) *huffTable {
				if tc == 1 {
					return &ac[th]
				}
				return &dc[th]
			}); err != nil {
				return nil, err
			}
		case m == 0xDB:
			for b := body; len(b) > 0; {
				pq, tq := int(b[0]>>4), int(b[0]&15)
				n := 1 + 64*(pq+1)
				if pq > 1 || tq > 3 || len(b) < n {
					return nil, fmt.Errorf("%w: bad JPEG DQT", ErrCorrupt)
				}
				for k := 0; k < 64; k++ {
					if pq == 0 {
						qt[tq][zigzag[k]] = int32(b[1+k])
					} else {
						qt[tq][zigzag[k]] = int32(b[1+2*k])<<8 | int32(b[2+2*k])
					}
				}
				qtOK[tq] = true
				b = b[n:]
			}
		case m == 0xDD:
			if len(body) < 2 {
				return nil, fmt.Errorf("%w: short JPEG DRI", ErrCorrupt)
			}
			ri = int(body[0])<<8 | int(body[1])
		case m == 0xEE:
			if len(body) >= 12 && string(body[:5]) == "Adobe" {
				adobe = int(body[11])
			}
		case m == 0xDA:
			if comps == nil {
				return nil, fmt.Errorf("%w: JPEG scan before the frame header", ErrCorrupt)
			}
			for _, c := range comps {
				if !qtOK[c.tq] {
					return nil, fmt.Errorf("%w: JPEG quantisation table %d not defined", ErrCorrupt, c.tq)
				}
			}
			n, err := decodeDCTScan(mr.scanData(), body, comps, &qt, &dc, &ac, precision, hmax, vmax, w, h, ri)
			if err != nil {
				return nil, err
			}
			mr.consume(n)
			scans++
		case m == 0xC2 || m == 0xC6 || m == 0xCA || m == 0xCE:
			return nil, fmt.Errorf("%w: progressive JPEG (SOF%d) at %d-bit precision", ErrUnsupported, m-0xC0, precision)
		case m >= 0xC3 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC:
			return nil, fmt.Errorf("%w: JPEG process SOF%d", ErrUnsupported, m-0xC0)
		}
	}
	if scans == 0 {
		return nil, fmt.Errorf("%w: JPEG stream has no scan", ErrCorrupt)
	}
	px := newPixels(info)
	conv := sampleConv(info)
	spp := len(comps)
	maxv := int32(1)<<uint(precision) - 1
	for ci, c := range comps {
		stride := c.bw * 8
		for y := 0; y < h; y++ {
			sy := y * c.v / vmax
			for x := 0; x < w; x++ {
				sx := x * c.h / hmax
				px.Data[(y*w+x)*spp+ci] = c.plane[sy*stride+sx]
			}
		}
	}
	if spp == 3 {
		// Like dcmtk: the YCbCr transform is undone unless the data set
		// labels the components RGB (or an Adobe marker says so).
		if info.PhotometricInterpretation != "RGB" && adobe != 0 {
			half := float64(maxv+1) / 2
			d := px.Data
			for i := 0; i+2 < len(d); i += 3 {
				y, cb, cr := float64(d[i]), float64(d[i+1])-half, float64(d[i+2])-half
				d[i] = clampTo(y+1.402*cr, maxv)
				d[i+1] = clampTo(y-0.344136*cb-0.714136*cr, maxv)
				d[i+2] = clampTo(y+1.772*cb, maxv)
			}
		}
		px.PhotometricInterpretation = "RGB"
	}
	for i, v := range px.Data {
		px.Data[i] = conv(uint32(v))
	}
	return px, nil
}

func clampTo(f float64, maxv int32) int32 {
	v := int32(math.Round(f))
	return min(max(v, 0), maxv)
}

// decodeDCTScan decodes one sequential scan whose entropy-coded data
// start at data[0]; it returns the number of bytes consumed.
func decodeDCTScan(data, sos []byte, comps []*dctComponent, qt *[4][64]int32, dc, ac *[4]huffTable, precision, hmax, vmax, w, h, ri int) (int, error) {
	if len(sos) < 1 {
		return 0, fmt.Errorf("%w: short JPEG SOS", ErrCorrupt)
	}
	ns := int(sos[0])
	if ns < 1 || ns > len(comps) || len(sos) < 1+2*ns+3 {
		return 0, fmt.Errorf("%w: bad JPEG SOS", ErrCorrupt)
	}
	sc := make([]*dctComponent, ns)
	dct, act := make([]*huffTable, ns), make([]*huffTable, ns)
	for i := 0; i < ns; i++ {
		id, t := sos[1+2*i], sos[2+2*i]
		for _, c := range comps {
			if c.id == id {
				sc[i] = c
			}
		}
		td, ta := t>>4, t&15
		if sc[i] == nil || td > 3 || ta > 3 || !dc[td].ok || !ac[ta].ok {
			return 0, fmt.Errorf("%w: JPEG scan names component %d or tables %d/%d that are not defined", ErrCorrupt, id, td, ta)
		}
		dct[i], act[i] = &dc[td], &ac[ta]
		sc[i].pred = 0
	}
	if ss, se := sos[1+2*ns], sos[2+2*ns]; ss != 0 || se != 63 {
		return 0, fmt.Errorf("%w: JPEG spectral selection %d..%d in a sequential scan", ErrUnsupported, ss, se)
	}
	// MCU layout: one component → its blocks one by one (covering only
	// the component's real extent); several → hmax×vmax interleaved MCUs.
	var mcux, mcuy int
	if ns == 1 {
		c := sc[0]
		cw := (w*c.h + hmax - 1) / hmax
		ch := (h*c.v + vmax - 1) / vmax
		mcux, mcuy = (cw+7)/8, (ch+7)/8
	} else {
		mcux, mcuy = (w+8*hmax-1)/(8*hmax), (h+8*vmax-1)/(8*vmax)
	}
	br := &bitReader{data: data}
	var blk [64]int32
	offset := int32(1) << uint(precision-1)
	maxv := int32(1)<<uint(precision) - 1
	restartLeft := ri
	for my := 0; my < mcuy; my++ {
		for mx := 0; mx < mcux; mx++ {
			if ri > 0 {
				if restartLeft == 0 {
					if err := br.restart(); err != nil {
						return 0, err
					}
					restartLeft = ri
					for _, c := range sc {
						c.pred = 0
					}
				}
				restartLeft--
			}
			for k, c := range sc {
				bh, bv := c.h, c.v
				if ns == 1 {
					bh, bv = 1, 1
				}
				for by := 0; by < bv; by++ {
					for bx := 0; bx < bh; bx++ {
						if err := decodeBlock(br, &blk, dct[k], act[k], &c.pred); err != nil {
							return 0, err
						}
						bxa, bya := mx*bh+bx, my*bv+by
						if bxa >= c.bw || bya >= c.bh {
							continue
						}
						stride := c.bw * 8
						idctBlock(&blk, &qt[c.tq], c.plane[bya*8*stride+bxa*8:], stride, offset, maxv)
					}
				}
			}
			if br.over > 64 {
				return 0, fmt.Errorf("%w: JPEG entropy-coded data end early", ErrCorrupt)
			}
		}
	}
	end := br.pos
	for end < len(data) && !(data[end] == 0xFF && end+1 < len(data) && data[end+1] != 0 && (data[end+1] < 0xD0 || data[end+1] > 0xD7)) {
		end++
	}
	return end, nil
}

func extend(v int32, s int) int32 {
	if v < 1<<uint(s-1) {
		v += -1<<uint(s) + 1
	}
	return v
}

// decodeBlock reads one block's quantised coefficients in natural order.
func decodeBlock(br *bitReader, blk *[64]int32, dc, ac *huffTable, pred *int32) error {
	*blk = [64]int32{}
	s, err := br.decode(dc)
	if err != nil {
		return err
	}
	if s > 16 {
		return fmt.Errorf("%w: JPEG DC category %d", ErrCorrupt, s)
	}
	var diff int32
	if s > 0 {
		diff = extend(br.bits(uint(s)), s)
	}
	*pred += diff
	blk[0] = *pred
	for k := 1; k < 64; {
		rs, err := br.decode(ac)
		if err != nil {
			return err
		}
		r, s := rs>>4, rs&15
		if s == 0 {
			if r != 15 {
				break // EOB
			}
			k += 16
			continue
		}
		k += r
		if k > 63 {
			return fmt.Errorf("%w: JPEG AC coefficient index past 63", ErrCorrupt)
		}
		blk[zigzag[k]] = extend(br.bits(uint(s)), s)
		k++
	}
	return nil
}

// idctBlock dequantises and inverse-transforms blk into dst (8 rows of
// stride), level-shifted and clamped to 0..maxv.
func idctBlock(blk *[64]int32, q *[64]int32, dst []int32, stride int, offset, maxv int32) {
	var f, tmp [64]float64
	for i := range f {
		f[i] = float64(blk[i] * q[i])
	}
	// Rows: tmp[v][x] = Σu C[x][u] f[v][u].
	for v := 0; v < 8; v++ {
		row := f[v*8 : v*8+8]
		for x := 0; x < 8; x++ {
			c := &idctCos[x]
			tmp[v*8+x] = c[0]*row[0] + c[1]*row[1] + c[2]*row[2] + c[3]*row[3] +
				c[4]*row[4] + c[5]*row[5] + c[6]*row[6] + c[7]*row[7]
		}
	}
	// Columns.
	for x := 0; x < 8; x++ {
		for y := 0; y < 8; y++ {
			c := &idctCos[y]
			s := c[0]*tmp[x] + c[1]*tmp[8+x] + c[2]*tmp[16+x] + c[3]*tmp[24+x] +
				c[4]*tmp[32+x] + c[5]*tmp[40+x] + c[6]*tmp[48+x] + c[7]*tmp[56+x]
			v := int32(math.Round(s)) + offset
			dst[y*stride+x] = min(max(v, 0), maxv)
		}
	}
}
