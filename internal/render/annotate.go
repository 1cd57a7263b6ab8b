package render

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"strconv"
	"strings"
	"unicode"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
	"golang.org/x/text/unicode/norm"
)

// Annotation groups of PS3.18 8.3.5.1.1 (annotation=patient,technique).
const (
	AnnotatePatient   = "patient"
	AnnotateTechnique = "technique"
)

// Text holds the attributes burned in by annotations.
type Text struct {
	PatientName, PatientID, PatientBirthDate, PatientSex string
	Modality, KVP, SliceThickness                        string
}

// ParseAnnotation parses annotation=patient,technique (either, both, any
// order, any case; repeated values allowed). Anything else is
// ErrBadParam.
func ParseAnnotation(values ...string) ([]string, error) {
	var patient, technique bool
	for _, v := range values {
		for p := range strings.SplitSeq(v, ",") {
			switch strings.ToLower(strings.TrimSpace(p)) {
			case AnnotatePatient:
				patient = true
			case AnnotateTechnique:
				technique = true
			default:
				return nil, fmt.Errorf("%w: annotation=%q: want patient and/or technique", ErrBadParam, v)
			}
		}
	}
	var out []string
	if patient {
		out = append(out, AnnotatePatient)
	}
	if technique {
		out = append(out, AnnotateTechnique)
	}
	return out, nil
}

// AnnotationLines returns the text of the requested groups: patient
// lines (name; ID; birth date and sex) go to the top-left corner,
// technique lines (modality, kVp, slice thickness; window; frame) to the
// bottom-left. win is the VOI window the image was rendered with (nil:
// none, e.g. colour or VOI LUT); frames is the frame count (0: unknown).
func AnnotationLines(a *Attrs, groups []string, frame, frames int, win *Window, voiLUT bool) (top, bottom []string) {
	t := a.Text
	for _, g := range groups {
		switch g {
		case AnnotatePatient:
			add := func(s string) {
				if s = strings.TrimSpace(s); s != "" {
					top = append(top, s)
				}
			}
			add(personName(t.PatientName))
			if t.PatientID != "" {
				add("ID " + t.PatientID)
			}
			add(strings.TrimSpace(formatDate(t.PatientBirthDate) + " " + t.PatientSex))
		case AnnotateTechnique:
			var l []string
			if t.Modality != "" {
				l = append(l, t.Modality)
			}
			if t.KVP != "" {
				l = append(l, t.KVP+" kVp")
			}
			if t.SliceThickness != "" {
				l = append(l, "ST "+t.SliceThickness+" mm")
			}
			if len(l) > 0 {
				bottom = append(bottom, strings.Join(l, "  "))
			}
			switch {
			case win != nil:
				s := "WC " + num(win.Center) + " WW " + num(win.Width)
				if win.Function != "" && win.Function != "LINEAR" {
					s += " " + strings.ToLower(win.Function)
				}
				bottom = append(bottom, s)
			case voiLUT:
				bottom = append(bottom, "VOI LUT")
			}
			if frame > 0 {
				s := "Frame " + strconv.Itoa(frame)
				if frames > 1 {
					s += "/" + strconv.Itoa(frames)
				}
				bottom = append(bottom, s)
			}
		}
	}
	return top, bottom
}

func num(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// personName shows a PN value "Family^Given^Middle^Prefix^Suffix" as
// "Family, Given Middle" (the first of its groups).
func personName(pn string) string {
	pn, _, _ = strings.Cut(pn, "=")
	parts := strings.Split(pn, "^")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	if len(parts) == 1 {
		return parts[0]
	}
	given := strings.TrimSpace(strings.Join(parts[1:min(3, len(parts))], " "))
	if parts[0] == "" || given == "" {
		return parts[0] + given
	}
	return parts[0] + ", " + given
}

// formatDate shows a DA value YYYYMMDD as YYYY-MM-DD.
func formatDate(da string) string {
	if len(da) == 8 {
		return da[:4] + "-" + da[4:6] + "-" + da[6:]
	}
	return da
}

// ascii folds s to what the 7x13 font draws: accents dropped, other
// non-ASCII runes shown as '?'.
func ascii(s string) string {
	var b strings.Builder
	for _, r := range norm.NFD.String(s) {
		switch {
		case unicode.Is(unicode.Mn, r):
		case r >= 0x20 && r < 0x7f:
			b.WriteRune(r)
		default:
			b.WriteByte('?')
		}
	}
	return b.String()
}

// Text metrics of the burned-in font (basicfont 7x13).
const (
	textPad     = 3
	textAdvance = 7
	textHeight  = 13
)

// AnnotationBox returns the rectangle Annotate darkens for lines in the
// given corner of bounds (top: top-left, else bottom-left); empty when
// lines is.
func AnnotationBox(bounds image.Rectangle, lines []string, top bool) image.Rectangle {
	if len(lines) == 0 {
		return image.Rectangle{}
	}
	w := 0
	for _, l := range lines {
		w = max(w, len(ascii(l)))
	}
	bw, bh := 2*textPad+w*textAdvance, 2*textPad+len(lines)*textHeight
	r := image.Rect(bounds.Min.X, bounds.Min.Y, bounds.Min.X+bw, bounds.Min.Y+bh)
	if !top {
		r = image.Rect(bounds.Min.X, bounds.Max.Y-bh, bounds.Min.X+bw, bounds.Max.Y)
	}
	return r.Intersect(bounds)
}

// Annotate burns lines of text into img: the top lines in the top-left
// corner, the bottom lines in the bottom-left, each block white on a
// near-black box so that it reads on any image. Grey images stay grey;
// others become RGBA. Text that does not fit is clipped.
func Annotate(img image.Image, top, bottom []string) image.Image {
	if len(top) == 0 && len(bottom) == 0 {
		return img
	}
	var dst draw.Image
	var fg, bg image.Image
	switch m := img.(type) {
	case *image.Gray:
		dst = m
		fg, bg = image.NewUniform(color.Gray{Y: 255}), image.NewUniform(color.Gray{Y: 16})
	case *image.RGBA:
		dst = m
	default:
		rgba := image.NewRGBA(img.Bounds())
		draw.Draw(rgba, rgba.Rect, img, img.Bounds().Min, draw.Src)
		dst = rgba
	}
	if fg == nil {
		fg, bg = image.NewUniform(color.RGBA{255, 255, 255, 255}), image.NewUniform(color.RGBA{16, 16, 16, 255})
	}
	b := dst.Bounds()
	for i, lines := range [][]string{top, bottom} {
		box := AnnotationBox(b, lines, i == 0)
		if box.Empty() {
			continue
		}
		draw.Draw(dst, box, bg, image.Point{}, draw.Src)
		d := font.Drawer{Dst: clipped{dst, box}, Src: fg, Face: basicfont.Face7x13}
		for j, l := range lines {
			d.Dot = fixed.P(box.Min.X+textPad, box.Min.Y+textPad+j*textHeight+basicfont.Face7x13.Ascent)
			d.DrawString(ascii(l))
		}
	}
	return dst
}

// clipped confines drawing to r (glyphs of clipped lines must not spill
// out of their box).
type clipped struct {
	draw.Image
	r image.Rectangle
}

func (c clipped) Bounds() image.Rectangle { return c.r }
