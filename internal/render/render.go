package render

import (
	"errors"
	"fmt"
	"image"
	"math"

	"github.com/cloudpacs/pacs/internal/codec"
)

// ErrBadParam marks a rendering parameter the caller gave wrong (HTTP 400).
var ErrBadParam = errors.New("render: bad parameter")

// Options are the per-request rendering choices.
type Options struct {
	// Window overrides the VOI of the data set (grey images only).
	Window *Window
	// Viewport scales and crops the result; nil keeps the full image.
	Viewport *Viewport
	// Annotation lists the text groups to burn in (ParseAnnotation):
	// drawn after the viewport, so the text keeps its size.
	Annotation []string
	// Frame (1-based) and Frames (the instance's count) for the
	// technique annotation; 0 leaves the frame line out.
	Frame, Frames int
}

// Render runs the PS3.4 grayscale or colour pipeline on one decoded
// frame and returns an *image.Gray or *image.RGBA.
//
// Grey: stored value → Modality LUT (rescale or LUT) → VOI (the
// requested window, else the first window of the data set, else the VOI
// LUT, else the min–max of the frame) → 8 bits → inverted for
// MONOCHROME1 or Presentation LUT Shape INVERSE.
// Colour: RGB as is; YBR_FULL (and YBR_FULL_422, YBR_ICT after
// decoding) → RGB; YBR_RCT → RGB; PALETTE COLOR through the palette.
func Render(px *codec.Pixels, a *Attrs, o Options) (image.Image, error) {
	var img image.Image
	var err error
	var lut *GreyLUT
	switch px.PhotometricInterpretation {
	case "MONOCHROME1", "MONOCHROME2", "":
		if px.SamplesPerPixel != 1 {
			return nil, fmt.Errorf("%w: %s with %d samples per pixel", codec.ErrCorrupt, px.PhotometricInterpretation, px.SamplesPerPixel)
		}
		img, lut, err = renderGrey(px, a, o.Window)
	case "PALETTE COLOR":
		img, err = renderPalette(px, a)
	case "RGB", "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT", "YBR_PARTIAL_422", "YBR_PARTIAL_420":
		img, err = renderColour(px)
	default:
		return nil, fmt.Errorf("%w: photometric interpretation %q", codec.ErrUnsupported, px.PhotometricInterpretation)
	}
	if err != nil {
		return nil, err
	}
	if o.Viewport != nil {
		if img, err = o.Viewport.Apply(img); err != nil {
			return nil, err
		}
	}
	if len(o.Annotation) > 0 {
		var win *Window
		voiLUT := false
		if lut != nil {
			win, voiLUT = lut.Window, lut.Window == nil
		}
		top, bottom := AnnotationLines(a, o.Annotation, o.Frame, o.Frames, win, voiLUT)
		img = Annotate(img, top, bottom)
	}
	return img, nil
}

// GreyLUT maps stored values [Min, Min+len(Out)) to 8-bit output.
type GreyLUT struct {
	Min int32
	Out []uint8
	// Window is the VOI window applied; nil when the VOI LUT was.
	Window *Window
}

func renderGrey(px *codec.Pixels, a *Attrs, win *Window) (*image.Gray, *GreyLUT, error) {
	lut, err := BuildGreyLUT(px, a, win)
	if err != nil {
		return nil, nil, err
	}
	img := image.NewGray(image.Rect(0, 0, px.Columns, px.Rows))
	out := img.Pix[:len(px.Data)]
	tab, base := lut.Out, lut.Min
	for i, v := range px.Data {
		out[i] = tab[v-base]
	}
	return img, lut, nil
}

// BuildGreyLUT computes the whole grey pipeline once per stored value
// present in the frame (at most 2^16 entries for 16-bit data, far fewer
// pixel operations than per-pixel float maths).
func BuildGreyLUT(px *codec.Pixels, a *Attrs, win *Window) (*GreyLUT, error) {
	if len(px.Data) == 0 {
		return nil, fmt.Errorf("%w: empty frame", codec.ErrCorrupt)
	}
	lo, hi := px.Data[0], px.Data[0]
	for _, v := range px.Data {
		if v < lo {
			lo = v
		} else if v > hi {
			hi = v
		}
	}
	if int64(hi)-int64(lo) >= 1<<24 {
		return nil, fmt.Errorf("%w: pixel value range %d..%d too wide to render", codec.ErrUnsupported, lo, hi)
	}
	n := int(hi-lo) + 1
	// Modality values for every stored value present.
	mod := make([]float64, n)
	switch {
	case a.ModalityLUT != nil:
		for i := range mod {
			mod[i] = float64(a.ModalityLUT.lookup(lo + int32(i)))
		}
	default:
		slope := a.RescaleSlope
		if slope == 0 {
			slope = 1
		}
		for i := range mod {
			mod[i] = float64(lo+int32(i))*slope + a.RescaleIntercept
		}
	}
	out := make([]uint8, n)
	// Inversion happens before the cut to 8 bits, as in dcmtk.
	invert := px.PhotometricInterpretation == "MONOCHROME1" || a.PresentationLUTShape == "INVERSE"
	var w Window
	useLUT := false
	switch {
	case win != nil:
		w = *win
	case len(a.Windows) > 0 && a.Windows[0].Width > 0:
		w = a.Windows[0]
	case a.VOILUT != nil:
		useLUT = true
	default:
		w = minMaxWindow(px.Data, mod, lo)
	}
	switch {
	case useLUT:
		l := a.VOILUT
		scale := 255 / float64(int(1)<<l.Bits-1)
		for i, m := range mod {
			y := float64(l.lookup(int32(math.Floor(m)))) * scale
			if invert {
				y = 255 - y
			}
			out[i] = uint8(math.Round(y))
		}
	default:
		if err := checkWindow(w); err != nil {
			return nil, err
		}
		for i, m := range mod {
			out[i] = applyWindow(w, m, invert)
		}
	}
	g := &GreyLUT{Min: lo, Out: out}
	if !useLUT {
		g.Window = &w
	}
	return g, nil
}

func checkWindow(w Window) error {
	switch w.Function {
	case "", "LINEAR":
		if !(w.Width >= 1) {
			return fmt.Errorf("%w: window width %g < 1 for LINEAR", ErrBadParam, w.Width)
		}
	case "LINEAR_EXACT", "SIGMOID":
		if !(w.Width > 0) {
			return fmt.Errorf("%w: window width %g <= 0", ErrBadParam, w.Width)
		}
	default:
		return fmt.Errorf("%w: VOI LUT function %q", ErrBadParam, w.Function)
	}
	if math.IsNaN(w.Center) || math.IsInf(w.Center, 0) || math.IsInf(w.Width, 0) {
		return fmt.Errorf("%w: window center %g width %g", ErrBadParam, w.Center, w.Width)
	}
	return nil
}

// applyWindow is PS3.3 C.11.2.1.2 with output range 0..255.
// The result is truncated, not rounded, like dcmtk's.
func applyWindow(w Window, x float64, invert bool) uint8 {
	const ymax = 255.0
	var y float64
	c, wd := w.Center, w.Width
	switch w.Function {
	case "LINEAR_EXACT":
		switch {
		case x <= c-wd/2:
			y = 0
		case x > c+wd/2:
			y = ymax
		default:
			y = ((x-c)/wd + 0.5) * ymax
		}
	case "SIGMOID":
		y = ymax / (1 + math.Exp(-4*(x-c)/wd))
	default:
		switch {
		case x <= c-0.5-(wd-1)/2:
			y = 0
		case x > c-0.5+(wd-1)/2:
			y = ymax
		default:
			y = ((x-(c-0.5))/(wd-1) + 0.5) * ymax
		}
	}
	if invert {
		y = ymax - y
	}
	y = math.Floor(y)
	if y < 0 {
		return 0
	}
	if y > ymax {
		return ymax
	}
	return uint8(y)
}

// minMaxWindow spans the modality values present in the frame (the
// window dcmtk's +Wm computes).
func minMaxWindow(data []int32, mod []float64, lo int32) Window {
	seen := make([]bool, len(mod))
	for _, v := range data {
		seen[v-lo] = true
	}
	mn, mx := math.Inf(1), math.Inf(-1)
	for i, ok := range seen {
		if ok {
			mn = math.Min(mn, mod[i])
			mx = math.Max(mx, mod[i])
		}
	}
	return Window{Center: (mn + mx + 1) / 2, Width: mx - mn + 1}
}

func renderColour(px *codec.Pixels) (*image.RGBA, error) {
	if px.SamplesPerPixel != 3 {
		return nil, fmt.Errorf("%w: %s with %d samples per pixel", codec.ErrCorrupt, px.PhotometricInterpretation, px.SamplesPerPixel)
	}
	img := image.NewRGBA(image.Rect(0, 0, px.Columns, px.Rows))
	shift := uint(0)
	if px.BitsStored > 8 {
		shift = uint(px.BitsStored - 8)
	}
	d, p := px.Data, img.Pix
	conv := colourConv(px.PhotometricInterpretation)
	for i, j := 0, 0; i+2 < len(d); i, j = i+3, j+4 {
		r, g, b := conv(d[i]>>shift, d[i+1]>>shift, d[i+2]>>shift)
		p[j], p[j+1], p[j+2], p[j+3] = clamp8(r), clamp8(g), clamp8(b), 255
	}
	return img, nil
}

func colourConv(pi string) func(a, b, c int32) (int32, int32, int32) {
	switch pi {
	case "YBR_FULL", "YBR_FULL_422", "YBR_ICT":
		return ybrFullToRGB
	case "YBR_PARTIAL_422", "YBR_PARTIAL_420":
		return ybrPartialToRGB
	case "YBR_RCT":
		// Reversible colour transform, inverse (ITU T.800 G.2); chroma
		// carries an offset of 128 in 8-bit unsigned data.
		return func(y, cb, cr int32) (int32, int32, int32) {
			cb, cr = cb-128, cr-128
			g := y - ((cb + cr) >> 2)
			return cr + g, g, cb + g
		}
	}
	return func(r, g, b int32) (int32, int32, int32) { return r, g, b }
}

// ybrFullToRGB is PS3.3 C.7.6.3.1.2, in fixed point with rounding.
func ybrFullToRGB(y, cb, cr int32) (int32, int32, int32) {
	cb -= 128
	cr -= 128
	const half = 1 << 15
	return y + (91881*cr+half)>>16, y + (-22554*cb-46802*cr+half)>>16, y + (116130*cb+half)>>16
}

func ybrPartialToRGB(y, cb, cr int32) (int32, int32, int32) {
	fy := 1.1644 * float64(y-16)
	fb, fr := float64(cb-128), float64(cr-128)
	return int32(math.Round(fy + 1.5960*fr)), int32(math.Round(fy - 0.3917*fb - 0.8129*fr)), int32(math.Round(fy + 2.0172*fb))
}

func clamp8(v int32) uint8 {
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return uint8(v)
}

func renderPalette(px *codec.Pixels, a *Attrs) (*image.RGBA, error) {
	if a.Red == nil || a.Green == nil || a.Blue == nil {
		return nil, fmt.Errorf("%w: PALETTE COLOR without palette LUTs", codec.ErrCorrupt)
	}
	if px.SamplesPerPixel != 1 {
		return nil, fmt.Errorf("%w: PALETTE COLOR with %d samples per pixel", codec.ErrCorrupt, px.SamplesPerPixel)
	}
	img := image.NewRGBA(image.Rect(0, 0, px.Columns, px.Rows))
	to8 := func(l *LUT, v int32) uint8 {
		x := l.lookup(v)
		if l.Bits > 8 {
			return uint8(x >> uint(l.Bits-8))
		}
		return uint8(x)
	}
	for i, v := range px.Data {
		j := 4 * i
		img.Pix[j], img.Pix[j+1], img.Pix[j+2], img.Pix[j+3] = to8(a.Red, v), to8(a.Green, v), to8(a.Blue, v), 255
	}
	return img, nil
}
