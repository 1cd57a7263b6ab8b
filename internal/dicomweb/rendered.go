package dicomweb

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/cloudpacs/pacs/internal/codec"
	"github.com/cloudpacs/pacs/internal/render"
	"github.com/cloudpacs/pacs/internal/storage"
	"github.com/cloudpacs/pacs/internal/thumbs"
)

// Rendered resources (PS3.18 10.4.1.1.3) and thumbnails (10.4.1.1.4).
//
//	.../rendered    study, series: multipart/related, first frame of every
//	                image instance; instance: its first frame; frames: one
//	                image, or multipart/related for a list.
//	.../thumbnail   study, series, instance, frame: one small JPEG of a
//	                representative frame (middle instance of the first
//	                series with images; first frame), cached in the blob
//	                store (internal/thumbs).
//
// Query parameters: window=center,width[,linear|linear-exact|sigmoid],
// viewport=vw,vh[,sx,sy,sw,sh], quality=1..100 (JPEG),
// annotation=patient,technique (burned-in text, render.Annotate; other
// values 400); Accept (or ?accept=) image/jpeg (default) or image/png.
// Stored pixel data that do not decode answer 422 (undecodable), a
// syntax without decoder 406. docs/rendering.md describes them all.

// registerRendered adds the rendered and thumbnail routes to g.
func registerRendered(g *echo.Group, h *Handler) {
	rr := &renderedHandler{h: h, r: thumbs.New(h.archive)}
	get := []string{http.MethodGet, http.MethodHead}
	for _, p := range []string{
		"/studies/:study",
		"/studies/:study/series/:series",
		"/studies/:study/series/:series/instances/:instance",
		"/studies/:study/series/:series/instances/:instance/frames/:frames",
	} {
		g.Match(get, p+"/rendered", rr.rendered)
		g.Match(get, p+"/thumbnail", rr.thumbnail)
	}
}

type renderedHandler struct {
	h *Handler
	r *thumbs.Renderer
}

// renderError maps pipeline errors to statuses with a readable reason:
// a bad parameter is 400, a pixel format without decoder 406, stored
// pixel data that do not decode 422 (undecodable).
func renderError(err error) error {
	switch {
	case errors.Is(err, render.ErrBadParam):
		return badRequestf("%v", err)
	case errors.Is(err, codec.ErrCorrupt):
		return undecodable("render", err)
	case errors.Is(err, codec.ErrUnsupported):
		return notAcceptablef("cannot render this instance: %v", err)
	}
	return err
}

// frameError says which frame of in a rendering failed on.
func frameError(in *storage.Instance, frame int, err error) error {
	return fmt.Errorf("frame %d of %s, stored as %s (%s): %w", frame, in.SOPInstanceUID, codec.Name(in.TransferSyntaxUID), in.TransferSyntaxUID, err)
}

// chooseImage negotiates the rendered media type.
func chooseImage(ranges []mediaRange) (string, error) {
	best, bestQ := "", -1.0
	for _, m := range ranges {
		var t string
		switch m.typ {
		case render.MediaJPEG, "image/jpg", "image/*", "*/*":
			t = render.MediaJPEG
		case render.MediaPNG:
			t = render.MediaPNG
		default:
			continue
		}
		if m.q > bestQ && m.q > 0 {
			best, bestQ = t, m.q
		}
	}
	if best == "" {
		return "", notAcceptablef("rendered resources are available as image/jpeg or image/png")
	}
	return best, nil
}

type renderParams struct {
	mediaType string
	quality   int
	opts      render.Options
	key       string // canonical form for ETags
}

func parseRenderParams(c echo.Context) (renderParams, error) {
	var p renderParams
	var err error
	if p.mediaType, err = chooseImage(acceptRanges(c)); err != nil {
		return p, err
	}
	q := c.QueryParams()
	if s := q.Get("window"); s != "" {
		if p.opts.Window, err = render.ParseWindow(s); err != nil {
			return p, renderError(err)
		}
	}
	if s := q.Get("viewport"); s != "" {
		if p.opts.Viewport, err = render.ParseViewport(s); err != nil {
			return p, renderError(err)
		}
	}
	if s := q.Get("quality"); s != "" {
		if p.quality, err = render.ParseQuality(s); err != nil {
			return p, renderError(err)
		}
	}
	if vs := q["annotation"]; len(vs) > 0 {
		if p.opts.Annotation, err = render.ParseAnnotation(vs...); err != nil {
			return p, renderError(err)
		}
	}
	p.key = fmt.Sprintf("%s|%s|%s|%d|%s", p.mediaType, q.Get("window"), q.Get("viewport"), p.quality, strings.Join(p.opts.Annotation, ","))
	return p, nil
}

func (rr *renderedHandler) encode(c echo.Context, in *storage.Instance, frame int, p renderParams) ([]byte, error) {
	img, err := rr.r.Frame(c.Request().Context(), in, frame, p.opts)
	if err != nil {
		return nil, renderError(frameError(in, frame, err))
	}
	var buf bytes.Buffer
	if err := render.Encode(&buf, img, p.mediaType, p.quality); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func etagOf(parts ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return `"` + hex.EncodeToString(sum[:12]) + `"`
}

func (rr *renderedHandler) rendered(c echo.Context) error {
	study, series, sop, err := pathUIDs(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	var in *storage.Instance
	if sop != "" {
		if in, err = rr.h.index.Instance(ctx, study, series, sop); err != nil {
			return err
		}
		if c.Param("frames") == "" && isReport(in) { // SR, PDF: reports.go
			return rr.h.renderedReport(c, in)
		}
	}
	p, err := parseRenderParams(c)
	if err != nil {
		return err
	}
	if sop == "" {
		insts, err := rr.h.instances(ctx, study, series, "")
		if err != nil {
			return err
		}
		var imgs []*storage.Instance
		for _, in := range insts {
			if len(in.Frames) > 0 {
				imgs = append(imgs, in)
			}
		}
		if len(imgs) == 0 {
			return notFoundf("no instance with pixel data")
		}
		return rr.multipart(c, imgs, nil, p)
	}
	if len(in.Frames) == 0 {
		return notFoundf("the instance has no pixel data to render")
	}
	frames := []int{1}
	if s := c.Param("frames"); s != "" {
		if frames, err = parseFrameList(s); err != nil {
			return err
		}
		for _, n := range frames {
			if n > len(in.Frames) {
				return notFoundf("frame %d does not exist: the instance has %d frames", n, len(in.Frames))
			}
		}
	}
	if len(frames) > 1 {
		return rr.multipart(c, []*storage.Instance{in}, frames, p)
	}
	etag := etagOf(in.SHA256, strconv.Itoa(frames[0]), p.key)
	if notModified(c, etag) {
		return nil
	}
	b, err := rr.encode(c, in, frames[0], p)
	if err != nil {
		return err
	}
	c.Response().Header().Set("ETag", etag)
	return c.Blob(http.StatusOK, p.mediaType, b)
}

// multipart streams one rendered part per instance (first frame), or
// per frame of insts[0] when frames is set. Parts render one at a time,
// so memory stays bounded by one image.
func (rr *renderedHandler) multipart(c echo.Context, insts []*storage.Instance, frames []int, p renderParams) error {
	type part struct {
		in    *storage.Instance
		frame int
	}
	var parts []part
	if frames != nil {
		for _, n := range frames {
			parts = append(parts, part{insts[0], n})
		}
	} else {
		for _, in := range insts {
			parts = append(parts, part{in, 1})
		}
	}
	// The first part renders before the headers go out, so that an
	// unrenderable resource still gets a proper status.
	first, err := rr.encode(c, parts[0].in, parts[0].frame, p)
	if err != nil {
		return err
	}
	res := c.Response()
	mw := multipart.NewWriter(res)
	res.Header().Set(echo.HeaderContentType, `multipart/related; type="`+p.mediaType+`"; boundary=`+mw.Boundary())
	res.WriteHeader(http.StatusOK)
	if c.Request().Method == http.MethodHead {
		return nil
	}
	for i, pt := range parts {
		b := first
		if i > 0 {
			if b, err = rr.encode(c, pt.in, pt.frame, p); err != nil {
				// Headers are out: skip what cannot be rendered.
				rr.h.log.Warn("rendered part skipped", "sop", pt.in.SOPInstanceUID, "frame", pt.frame, "err", err)
				continue
			}
		}
		hdr := textproto.MIMEHeader{}
		hdr.Set("Content-Type", p.mediaType)
		hdr.Set("Content-Location", instanceURL(rr.h.baseURL(c), pt.in.StudyInstanceUID, pt.in.SeriesInstanceUID, pt.in.SOPInstanceUID)+
			"/frames/"+strconv.Itoa(pt.frame)+"/rendered")
		w, err := mw.CreatePart(hdr)
		if err != nil {
			return err
		}
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	return mw.Close()
}

func (rr *renderedHandler) thumbnail(c echo.Context) error {
	study, series, sop, err := pathUIDs(c)
	if err != nil {
		return err
	}
	mt, err := chooseImage(acceptRanges(c))
	if err != nil {
		return err
	}
	if mt != render.MediaJPEG {
		// Thumbnails are cached as JPEG only.
		mt = render.MediaJPEG
	}
	w, hgt, quality := thumbs.DefaultSize, thumbs.DefaultSize, 0
	if s := c.QueryParam("viewport"); s != "" {
		v, err := render.ParseViewport(s)
		if err != nil {
			return renderError(err)
		}
		if v.Region {
			return badRequestf("thumbnail viewport takes vw,vh only")
		}
		w, hgt = v.VW, v.VH
	}
	if s := c.QueryParam("quality"); s != "" {
		if quality, err = render.ParseQuality(s); err != nil {
			return renderError(err)
		}
	}
	ctx := c.Request().Context()
	var in *storage.Instance
	frame := 1
	switch {
	case sop != "":
		if in, err = rr.h.index.Instance(ctx, study, series, sop); err != nil {
			return err
		}
		if s := c.Param("frames"); s != "" {
			list, err := parseFrameList(s)
			if err != nil {
				return err
			}
			frame = list[0]
		}
	default:
		insts, err := rr.h.instances(ctx, study, series, "")
		if err != nil {
			return err
		}
		in = representative(insts)
	}
	if in == nil || len(in.Frames) == 0 {
		return notFoundf("no image to make a thumbnail of")
	}
	if frame > len(in.Frames) {
		return notFoundf("frame %d does not exist: the instance has %d frames", frame, len(in.Frames))
	}
	etag := etagOf(in.SHA256, strconv.Itoa(frame), strconv.Itoa(w), strconv.Itoa(hgt), strconv.Itoa(quality))
	if notModified(c, etag) {
		return nil
	}
	b, err := rr.r.Thumbnail(ctx, in, frame, w, hgt, quality)
	if err != nil {
		return renderError(frameError(in, frame, err))
	}
	c.Response().Header().Set("ETag", etag)
	c.Response().Header().Set("Cache-Control", "private, max-age=3600")
	return c.Blob(http.StatusOK, mt, b)
}

// representative picks the middle image instance of the first series
// that has images (instances come ordered by series, then number).
func representative(insts []*storage.Instance) *storage.Instance {
	var series []*storage.Instance
	for _, in := range insts {
		if len(in.Frames) == 0 {
			continue
		}
		if len(series) > 0 && in.SeriesInstanceUID != series[0].SeriesInstanceUID {
			break
		}
		series = append(series, in)
	}
	if len(series) == 0 {
		return nil
	}
	return series[len(series)/2]
}
