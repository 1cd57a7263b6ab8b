package codec

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
)

// JPEG Baseline (process 1, 8-bit) with the standard library's
// image/jpeg, which also reads process 2/4 streams of 8-bit precision.
// 12-bit streams it refuses; they go to the sequential DCT decoder of
// jpeg12.go.

func init() {
	d := DecoderFunc(decodeJPEGBaseline)
	Register(JPEGBaseline8Bit, d)
	Register(JPEGExtended12Bit, d) // 12-bit streams: jpeg12.go
}

func decodeJPEGBaseline(ts string, frame []byte, info PixelInfo) (*Pixels, error) {
	info, err := info.normalized()
	if err != nil {
		return nil, err
	}
	if p := jpegPrecision(frame); p == 12 {
		return decodeJPEGDCT(frame, info)
	} else if p > 8 {
		return nil, fmt.Errorf("%w: %d-bit JPEG DCT", ErrUnsupported, p)
	}
	img, err := jpeg.Decode(bytes.NewReader(frame))
	if err != nil {
		var ue jpeg.UnsupportedError
		if errors.As(err, &ue) {
			return nil, fmt.Errorf("%w: JPEG: %v", ErrUnsupported, err)
		}
		return nil, fmt.Errorf("%w: JPEG: %v", ErrCorrupt, err)
	}
	b := img.Bounds()
	if b.Dx() != info.Columns || b.Dy() != info.Rows {
		return nil, fmt.Errorf("%w: JPEG is %dx%d, the data set says %dx%d", ErrCorrupt, b.Dx(), b.Dy(), info.Columns, info.Rows)
	}
	px := newPixels(info)
	w, h := info.Columns, info.Rows
	conv := sampleConv(info)
	switch m := img.(type) {
	case *image.Gray:
		if info.SamplesPerPixel != 1 {
			return nil, fmt.Errorf("%w: grey JPEG for %d samples per pixel", ErrCorrupt, info.SamplesPerPixel)
		}
		for y := 0; y < h; y++ {
			row := m.Pix[y*m.Stride : y*m.Stride+w]
			d := px.Data[y*w : (y+1)*w]
			for x, v := range row {
				d[x] = conv(uint32(v))
			}
		}
	case *image.YCbCr:
		if info.SamplesPerPixel != 3 {
			return nil, fmt.Errorf("%w: colour JPEG for %d samples per pixel", ErrCorrupt, info.SamplesPerPixel)
		}
		// Like dcmtk's default (+cp): the colour transform is undone only
		// when the data set says the stream is YCbCr (YBR_*). An "RGB"
		// label means the components are R, G, B whatever the markers say.
		ybr := info.PhotometricInterpretation != "RGB"
		upsampleYCbCr(px.Data, m, ybr)
		px.PhotometricInterpretation = "RGB"
	case *image.RGBA:
		if info.SamplesPerPixel != 3 {
			return nil, fmt.Errorf("%w: colour JPEG for %d samples per pixel", ErrCorrupt, info.SamplesPerPixel)
		}
		for y := 0; y < h; y++ {
			row := m.Pix[y*m.Stride:]
			d := px.Data[y*w*3:]
			for x := 0; x < w; x++ {
				d[3*x], d[3*x+1], d[3*x+2] = int32(row[4*x]), int32(row[4*x+1]), int32(row[4*x+2])
			}
		}
		px.PhotometricInterpretation = "RGB"
	default:
		return nil, fmt.Errorf("%w: JPEG colour model %T (CMYK?)", ErrUnsupported, img)
	}
	return px, nil
}

// upsampleYCbCr writes m as interleaved samples: chrominance upsampled
// the way libjpeg does by default ("fancy" triangular filter for
// horizontal 2:1, the 3/4-1/4 weights in both directions for 2:2), then
// converted to RGB when toRGB, else kept as the three raw components.
func upsampleYCbCr(dst []int32, m *image.YCbCr, toRGB bool) {
	b := m.Bounds()
	w, h := b.Dx(), b.Dy()
	cw, ch := chromaSize(m.SubsampleRatio, w, h)
	cb := upsamplePlane(m.Cb, m.CStride, cw, ch, w, h)
	cr := upsamplePlane(m.Cr, m.CStride, cw, ch, w, h)
	for y := 0; y < h; y++ {
		yr := m.Y[y*m.YStride:]
		d := dst[y*w*3:]
		for x := 0; x < w; x++ {
			Y, U, V := int32(yr[x]), cb[y*w+x], cr[y*w+x]
			if !toRGB {
				d[3*x], d[3*x+1], d[3*x+2] = Y, U, V
				continue
			}
			d[3*x], d[3*x+1], d[3*x+2] = ycc2rgb(Y, U, V)
		}
	}
}

// ycc2rgb is the JFIF / PS3.3 YBR_FULL conversion in libjpeg's fixed
// point (16 fractional bits, rounded), clamped to 0..255.
func ycc2rgb(y, cb, cr int32) (int32, int32, int32) {
	const (
		one  = 1 << 16
		half = one >> 1
	)
	cb -= 128
	cr -= 128
	r := y + (91881*cr+half)>>16
	g := y + (-22554*cb-46802*cr+half)>>16
	b := y + (116130*cb+half)>>16
	return clamp255(r), clamp255(g), clamp255(b)
}

func clamp255(v int32) int32 {
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return v
}

func chromaSize(r image.YCbCrSubsampleRatio, w, h int) (int, int) {
	switch r {
	case image.YCbCrSubsampleRatio422:
		return (w + 1) / 2, h
	case image.YCbCrSubsampleRatio420:
		return (w + 1) / 2, (h + 1) / 2
	case image.YCbCrSubsampleRatio440:
		return w, (h + 1) / 2
	case image.YCbCrSubsampleRatio411:
		return (w + 3) / 4, h
	case image.YCbCrSubsampleRatio410:
		return (w + 3) / 4, (h + 1) / 2
	}
	return w, h
}

// upsamplePlane scales a cw×ch chroma plane to w×h. Factor 2 in a
// direction uses the triangular filter (3/4 nearer + 1/4 farther sample),
// other factors replicate.
func upsamplePlane(src []byte, stride, cw, ch, w, h int) []int32 {
	out := make([]int32, w*h)
	fx, fy := (w+cw-1)/cw, (h+ch-1)/ch
	at := func(x, y int) int32 {
		if x < 0 {
			x = 0
		} else if x >= cw {
			x = cw - 1
		}
		if y < 0 {
			y = 0
		} else if y >= ch {
			y = ch - 1
		}
		return int32(src[y*stride+x])
	}
	switch {
	case fx == 1 && fy == 1:
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				out[y*w+x] = at(x, y)
			}
		}
	case fx == 2 && fy == 1:
		// libjpeg h2v1_fancy_upsample: (3*near + far + 1 or 2) >> 2.
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				c := x / 2
				if x%2 == 0 {
					out[y*w+x] = (3*at(c, y) + at(c-1, y) + 1) >> 2
				} else {
					out[y*w+x] = (3*at(c, y) + at(c+1, y) + 2) >> 2
				}
			}
		}
	case fx == 2 && fy == 2:
		// libjpeg h2v2_fancy_upsample: vertical 3:1 sums, then horizontal
		// 3:1 with rounding (+8 / +7) >> 4.
		for y := 0; y < h; y++ {
			cy := y / 2
			ny := cy - 1
			if y%2 == 1 {
				ny = cy + 1
			}
			col := func(c int) int32 { return 3*at(c, cy) + at(c, ny) }
			for x := 0; x < w; x++ {
				c := x / 2
				if x%2 == 0 {
					out[y*w+x] = (3*col(c) + col(c-1) + 8) >> 4
				} else {
					out[y*w+x] = (3*col(c) + col(c+1) + 7) >> 4
				}
			}
		}
	default:
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				out[y*w+x] = at(x/fx, y/fy)
			}
		}
	}
	return out
}

// jpegPrecision returns the sample precision of the first SOF marker, 0
// when there is none.
func jpegPrecision(b []byte) int {
	for i := 2; i+4 < len(b); {
		if b[i] != 0xFF {
			return 0
		}
		m := b[i+1]
		if m == 0xFF {
			i++
			continue
		}
		if m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC {
			if i+4 < len(b) {
				return int(b[i+4])
			}
			return 0
		}
		if m == 0xDA || m == 0xD9 {
			return 0
		}
		i += 2 + (int(b[i+2])<<8 | int(b[i+3]))
	}
	return 0
}
