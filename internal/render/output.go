package render

import (
	"fmt"
	"image"
	"image/jpeg"
	"image/png"
	"io"
	"strconv"
	"strings"

	"github.com/disintegration/imaging"
)

// Media types Encode writes.
const (
	MediaJPEG = "image/jpeg"
	MediaPNG  = "image/png"
)

// DefaultQuality is the JPEG quality when the request names none.
const DefaultQuality = 90

// maxViewport bounds the output size a request may ask for.
const maxViewport = 8192

// Viewport is PS3.18 8.3.5.1.3 viewport=vw,vh[,sx,sy,sw,sh]: the region
// (sx,sy,sw,sh) of the image (whole image when Region is false; negative
// sw/sh flip) scaled to fit vw×vh, aspect ratio kept.
type Viewport struct {
	VW, VH         int
	Region         bool
	SX, SY, SW, SH int
}

// ParseWindow parses window=center,width[,function] (function
// linear, linear-exact or sigmoid, any case).
func ParseWindow(s string) (*Window, error) {
	parts := strings.Split(s, ",")
	if len(parts) < 2 || len(parts) > 3 {
		return nil, fmt.Errorf("%w: window=%q: want center,width[,function]", ErrBadParam, s)
	}
	c, err1 := strconv.ParseFloat(strings.TrimSpace(parts[0]), 64)
	w, err2 := strconv.ParseFloat(strings.TrimSpace(parts[1]), 64)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("%w: window=%q: center and width must be numbers", ErrBadParam, s)
	}
	win := &Window{Center: c, Width: w}
	if len(parts) == 3 {
		f := strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(parts[2]), "-", "_"))
		switch f {
		case "LINEAR", "LINEAR_EXACT", "SIGMOID":
			win.Function = f
		default:
			return nil, fmt.Errorf("%w: window function %q: want linear, linear-exact or sigmoid", ErrBadParam, parts[2])
		}
	}
	if err := checkWindow(*win); err != nil {
		return nil, err
	}
	return win, nil
}

// ParseViewport parses viewport=vw,vh[,sx,sy,sw,sh]. Empty sx..sh
// fields mean 0 for sx, sy and "to the edge" for sw, sh.
func ParseViewport(s string) (*Viewport, error) {
	parts := strings.Split(s, ",")
	if len(parts) != 2 && len(parts) != 6 {
		return nil, fmt.Errorf("%w: viewport=%q: want vw,vh[,sx,sy,sw,sh]", ErrBadParam, s)
	}
	nums := make([]int, len(parts))
	for i, p := range parts {
		p = strings.TrimSpace(p)
		if p == "" && i >= 2 {
			continue
		}
		n, err := strconv.Atoi(p)
		if err != nil {
			return nil, fmt.Errorf("%w: viewport=%q: %q is not an integer", ErrBadParam, s, p)
		}
		nums[i] = n
	}
	v := &Viewport{VW: nums[0], VH: nums[1]}
	if v.VW < 1 || v.VH < 1 || v.VW > maxViewport || v.VH > maxViewport {
		return nil, fmt.Errorf("%w: viewport size %dx%d: want 1..%d", ErrBadParam, v.VW, v.VH, maxViewport)
	}
	if len(parts) == 6 {
		v.Region = true
		v.SX, v.SY, v.SW, v.SH = nums[2], nums[3], nums[4], nums[5]
		if v.SX < 0 || v.SY < 0 {
			return nil, fmt.Errorf("%w: viewport source origin %d,%d is negative", ErrBadParam, v.SX, v.SY)
		}
	}
	return v, nil
}

// Apply crops and scales img.
func (v *Viewport) Apply(img image.Image) (image.Image, error) {
	b := img.Bounds()
	if v.Region {
		sw, sh := v.SW, v.SH
		flipH, flipV := sw < 0, sh < 0
		if sw == 0 {
			sw = b.Dx() - v.SX
		}
		if sh == 0 {
			sh = b.Dy() - v.SY
		}
		if flipH {
			sw = -sw
		}
		if flipV {
			sh = -sh
		}
		r := image.Rect(v.SX, v.SY, v.SX+sw, v.SY+sh).Intersect(b)
		if r.Empty() {
			return nil, fmt.Errorf("%w: viewport source region %d,%d,%d,%d is outside the %dx%d image", ErrBadParam, v.SX, v.SY, v.SW, v.SH, b.Dx(), b.Dy())
		}
		img = imaging.Crop(img, r)
		if flipH {
			img = imaging.FlipH(img)
		}
		if flipV {
			img = imaging.FlipV(img)
		}
		b = img.Bounds()
	}
	// Fit inside vw×vh keeping the aspect ratio.
	w, h := v.VW, b.Dy()*v.VW/b.Dx()
	if h > v.VH {
		w, h = b.Dx()*v.VH/b.Dy(), v.VH
	}
	w, h = max(w, 1), max(h, 1)
	if w == b.Dx() && h == b.Dy() {
		return img, nil
	}
	filter := imaging.Linear
	if w < b.Dx() {
		filter = imaging.Box // area average when shrinking: no aliasing, fast
	}
	out := imaging.Resize(img, w, h, filter)
	if _, grey := img.(*image.Gray); grey {
		return toGray(out), nil
	}
	return out, nil
}

// toGray keeps grey results grey so that JPEG encodes one component.
func toGray(m *image.NRGBA) *image.Gray {
	g := image.NewGray(m.Rect)
	for i := range g.Pix {
		g.Pix[i] = m.Pix[4*i]
	}
	return g
}

// Encode writes img as mediaType (MediaJPEG or MediaPNG); quality
// 1..100 applies to JPEG, 0 means DefaultQuality.
func Encode(w io.Writer, img image.Image, mediaType string, quality int) error {
	switch mediaType {
	case MediaJPEG:
		if quality == 0 {
			quality = DefaultQuality
		}
		return jpeg.Encode(w, img, &jpeg.Options{Quality: quality})
	case MediaPNG:
		e := png.Encoder{CompressionLevel: png.BestSpeed}
		return e.Encode(w, img)
	}
	return fmt.Errorf("%w: media type %q", ErrBadParam, mediaType)
}

// ParseQuality parses quality=1..100.
func ParseQuality(s string) (int, error) {
	q, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || q < 1 || q > 100 {
		return 0, fmt.Errorf("%w: quality=%q: want 1..100", ErrBadParam, s)
	}
	return q, nil
}
