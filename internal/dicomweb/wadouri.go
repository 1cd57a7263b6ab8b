package dicomweb

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/gif"
	"math"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/cloudpacs/pacs/internal/render"
	"github.com/cloudpacs/pacs/internal/reports"
	"github.com/cloudpacs/pacs/internal/storage"
	"github.com/cloudpacs/pacs/internal/thumbs"
)

// WADO-URI renderings (PS3.18 9.1.2.1.5, 9.1.2.2): wadoURI hands over
// the requests whose contentType list has no DICOM type.
//
//	image/jpeg, image/png, image/gif  frameNumber (default 1), windowCenter
//	                                  + windowWidth, rows, columns, region
//	                                  (xmin,ymin,xmax,ymax in 0..1),
//	                                  imageQuality (JPEG), annotation
//	                                  (patient,technique: burned-in text)
//	application/pdf                   Encapsulated PDF instances
//	text/html, text/plain             SR instances
//
// The first type of the list that the instance can be given in wins.
// Not supported, answered 406: presentationUID (presentation states),
// anonymize=yes.

const mtGIF = "image/gif"

// wadoURIRendered answers a WADO-URI request for a non-DICOM contentType.
func (h *Handler) wadoURIRendered(c echo.Context, study, series, sop, cts string) error {
	q := c.QueryParams()
	in, err := h.index.Instance(c.Request().Context(), study, series, sop)
	if err != nil {
		return err
	}
	kind := reports.KindOf(in.SOPClassUID)
	why := fmt.Sprintf("contentType %q is not available for this instance; it is available as application/dicom", cts)
	for ct := range strings.SplitSeq(cts, ",") {
		mt, _, _ := strings.Cut(strings.TrimSpace(ct), ";")
		mt = strings.ToLower(strings.TrimSpace(mt))
		switch mt {
		case render.MediaJPEG, "image/jpg", render.MediaPNG, mtGIF, "image/*":
			if len(in.Frames) == 0 {
				why = "the instance has no pixel data to render as " + mt
				if kind == reports.KindPDF {
					why += "; ask for contentType=application/pdf"
				} else if kind == reports.KindSR {
					why += "; ask for contentType=text/html or text/plain"
				}
				continue
			}
			if q.Get("presentationUID") != "" {
				return notAcceptablef("presentationUID: applying presentation states is not supported")
			}
			switch mt {
			case "image/jpg", "image/*":
				mt = render.MediaJPEG
			}
			return h.wadoImage(c, in, mt)
		case mtPDF, mtHTML, mtPlain, "text/*", "application/*":
			want := reports.KindSR
			if mt == mtPDF || mt == "application/*" {
				want = reports.KindPDF
				mt = mtPDF
			} else if mt == "text/*" {
				mt = mtHTML
			}
			if kind != want {
				why = fmt.Sprintf("contentType %s is for %s instances; this is not one", mt, map[reports.Kind]string{
					reports.KindSR: "Structured Report", reports.KindPDF: "Encapsulated PDF"}[want])
				continue
			}
			if strings.EqualFold(q.Get("anonymize"), "yes") {
				return notAcceptablef("anonymize=yes is not supported for reports")
			}
			return h.writeReport(c, in, mt)
		}
	}
	return notAcceptablef("%s", why)
}

// wadoImage renders one frame of in per the PS3.18 9.1.2.2 parameters.
func (h *Handler) wadoImage(c echo.Context, in *storage.Instance, mt string) error {
	q := c.QueryParams()
	var opts render.Options
	frame := 1
	if s := q.Get("frameNumber"); s != "" {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return badRequestf("frameNumber=%q: want a frame number from 1", s)
		}
		if n > len(in.Frames) {
			return notFoundf("frame %d does not exist: the instance has %d frames", n, len(in.Frames))
		}
		frame = n
	}
	wc, ww := q.Get("windowCenter"), q.Get("windowWidth")
	if (wc == "") != (ww == "") {
		return badRequestf("windowCenter and windowWidth go together")
	}
	if wc != "" {
		w, err := render.ParseWindow(wc + "," + ww)
		if err != nil {
			return renderError(err)
		}
		opts.Window = w
	}
	quality := 0
	if s := q.Get("imageQuality"); s != "" {
		var err error
		if quality, err = render.ParseQuality(s); err != nil {
			return renderError(err)
		}
	}
	if vs := q["annotation"]; len(vs) > 0 {
		var err error
		if opts.Annotation, err = render.ParseAnnotation(vs...); err != nil {
			return renderError(err)
		}
	}
	vp, err := wadoViewport(q.Get("rows"), q.Get("columns"), q.Get("region"), in.Instance.Rows, in.Instance.Columns)
	if err != nil {
		return err
	}
	opts.Viewport = vp
	etag := etagOf(in.SHA256, "wado", strconv.Itoa(frame), mt, wc, ww, q.Get("rows"), q.Get("columns"), q.Get("region"), strconv.Itoa(quality), strings.Join(opts.Annotation, ","))
	if notModified(c, etag) {
		return nil
	}
	img, err := thumbs.New(h.archive).Frame(c.Request().Context(), in, frame, opts)
	if err != nil {
		return renderError(frameError(in, frame, err))
	}
	var buf bytes.Buffer
	if mt == mtGIF {
		err = encodeGIF(&buf, img)
	} else {
		err = render.Encode(&buf, img, mt, quality)
	}
	if err != nil {
		return err
	}
	c.Response().Header().Set("ETag", etag)
	return c.Blob(http.StatusOK, mt, buf.Bytes())
}

// wadoViewport maps rows, columns and region to a render.Viewport: the
// region (fractions of the image, PS3.18 9.1.2.2.6) is cut first, then
// scaled to fit rows × columns keeping the aspect ratio (one of them
// alone bounds that dimension only). nil: the whole image as is.
func wadoViewport(rowsS, colsS, regionS string, imgRows, imgCols int) (*render.Viewport, error) {
	const maxSide = 8192
	dim := func(name, s string) (int, error) {
		if s == "" {
			return 0, nil
		}
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 || n > maxSide {
			return 0, badRequestf("%s=%q: want 1..%d", name, s, maxSide)
		}
		return n, nil
	}
	rows, err := dim("rows", rowsS)
	if err != nil {
		return nil, err
	}
	cols, err := dim("columns", colsS)
	if err != nil {
		return nil, err
	}
	if rows == 0 && cols == 0 && regionS == "" {
		return nil, nil
	}
	vp := &render.Viewport{VW: cols, VH: rows}
	if regionS != "" {
		parts := strings.Split(regionS, ",")
		if len(parts) != 4 {
			return nil, badRequestf("region=%q: want xmin,ymin,xmax,ymax (fractions 0..1)", regionS)
		}
		var f [4]float64
		for i, p := range parts {
			v, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
			if err != nil || v < 0 || v > 1 || math.IsNaN(v) {
				return nil, badRequestf("region=%q: values must be fractions from 0 to 1", regionS)
			}
			f[i] = v
		}
		if f[0] >= f[2] || f[1] >= f[3] {
			return nil, badRequestf("region=%q: xmin < xmax and ymin < ymax are required", regionS)
		}
		if imgRows <= 0 || imgCols <= 0 {
			return nil, notAcceptablef("region: the image size is not known for this instance")
		}
		x0, y0 := int(math.Round(f[0]*float64(imgCols))), int(math.Round(f[1]*float64(imgRows)))
		x1, y1 := int(math.Round(f[2]*float64(imgCols))), int(math.Round(f[3]*float64(imgRows)))
		vp.Region = true
		vp.SX, vp.SY, vp.SW, vp.SH = x0, y0, max(x1-x0, 1), max(y1-y0, 1)
		if vp.VW == 0 && vp.VH == 0 {
			vp.VW, vp.VH = vp.SW, vp.SH
		}
	}
	if vp.VW == 0 {
		vp.VW = maxSide
	}
	if vp.VH == 0 {
		vp.VH = maxSide
	}
	return vp, nil
}

// greyPalette maps grey levels to themselves, so grey images are exact
// in GIF.
var greyPalette = func() color.Palette {
	p := make(color.Palette, 256)
	for i := range p {
		p[i] = color.Gray{Y: uint8(i)}
	}
	return p
}()

// encodeGIF writes img as a GIF: grey images exactly (256 grey levels),
// colour ones quantised by image/gif (Plan 9 palette, Floyd–Steinberg).
func encodeGIF(buf *bytes.Buffer, img image.Image) error {
	if g, ok := img.(*image.Gray); ok {
		p := &image.Paletted{Pix: g.Pix, Stride: g.Stride, Rect: g.Rect, Palette: greyPalette}
		return gif.Encode(buf, p, nil)
	}
	return gif.Encode(buf, img, nil)
}
