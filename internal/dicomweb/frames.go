package dicomweb

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/cloudpacs/pacs/internal/codec"
	"github.com/cloudpacs/pacs/internal/render"
	"github.com/cloudpacs/pacs/internal/storage"
)

// maxFrameList bounds the number of frames one request may list.
const maxFrameList = 10000

// parseFrameList parses "1" or "1,3,5" (1-based frame numbers).
func parseFrameList(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 || f[0] == '+' {
			return nil, badRequestf("malformed frame list %q: want 1-based numbers separated by commas", truncate(s, 64))
		}
		out = append(out, n)
		if len(out) > maxFrameList {
			return nil, badRequestf("more than %d frames requested", maxFrameList)
		}
	}
	return out, nil
}

// frameChoice is the negotiated representation of frames or bulk data.
type frameChoice struct {
	multipart bool
	partType  string // media type of each part
	ts        string // transfer syntax of the bytes sent; "" for a rendered image
	// made: the frames are not sent as the archive reads them but made
	// from them (makeFrame, transcode.go): decoded to native bytes
	// (partType application/octet-stream) or rendered (image/jpeg,
	// image/png).
	made bool
}

func (f frameChoice) contentType() string {
	if f.ts == "" {
		return f.partType
	}
	return f.partType + "; transfer-syntax=" + f.ts
}

// chooseFrames negotiates frame retrieval (PS3.18 8.7.3.5, 8.7.4) in two
// passes over the acceptable ranges. First the frames as the archive
// reads them: native frames as application/octet-stream in Explicit VR
// Little Endian (big endian objects are swapped by the archive);
// encapsulated frames as stored, either in the media type of their
// transfer syntax (image/jpeg, image/jls, image/jp2, image/dicom-rle,
// video/…) or as application/octet-stream with transfer-syntax=* or the
// stored syntax. Then, only when decode is set and nothing stored is
// acceptable, frames made from them: application/octet-stream in
// Explicit VR Little Endian (also when no transfer syntax is named) for
// frames stored compressed, and image/jpeg or image/png of any frame
// that decodes (rendered with the default window).
func chooseFrames(ranges []mediaRange, in *storage.Instance, count int, decode bool) (frameChoice, error) {
	stored := in.TransferSyntaxUID
	native := !in.Encapsulated
	storedMT := frameMediaType(stored)
	why := ""
	if native {
		why = "frames of this instance are uncompressed: ask for multipart/related; type=\"application/octet-stream\""
	} else {
		why = fmt.Sprintf("frames of this instance are stored compressed (%s, %s) and cannot be decoded to what was asked: ask for multipart/related; type=\"application/octet-stream\"; transfer-syntax=* or type=%q", stored, storedMT, storedMT)
	}
	for _, m := range ranges {
		if m.typ == "*/*" {
			if native {
				return frameChoice{multipart: true, partType: mtOctetStream, ts: tsExplicitLE}, nil
			}
			return frameChoice{multipart: true, partType: storedMT, ts: stored}, nil
		}
		single, typ, ok := m.frameType(count)
		if !ok {
			continue
		}
		ts := strings.TrimSpace(m.param("transfer-syntax"))
		octet := typ == mtOctetStream || typ == "*/*" || typ == "application/*"
		if native {
			if octet && (ts == "" || ts == "*" || ts == tsExplicitLE || ts == stored) {
				return frameChoice{multipart: !single, partType: mtOctetStream, ts: tsExplicitLE}, nil
			}
			continue
		}
		if octet && (ts == "*" || ts == stored) {
			return frameChoice{multipart: !single, partType: mtOctetStream, ts: stored}, nil
		}
		if sameMediaType(typ, storedMT) || typ == "image/*" && strings.HasPrefix(storedMT, "image/") ||
			typ == "video/*" && strings.HasPrefix(storedMT, "video/") {
			if ts == "" || ts == "*" || ts == stored {
				return frameChoice{multipart: !single, partType: storedMT, ts: stored}, nil
			}
		}
	}
	if decode {
		if ch, ok := chooseMadeFrames(ranges, in, count); ok {
			return ch, nil
		}
	}
	return frameChoice{}, notAcceptablef("%s", why)
}

// chooseMadeFrames is chooseFrames' second pass.
func chooseMadeFrames(ranges []mediaRange, in *storage.Instance, count int) (frameChoice, bool) {
	for _, m := range ranges {
		single, typ, ok := m.frameType(count)
		if !ok {
			continue
		}
		ts := strings.TrimSpace(m.param("transfer-syntax"))
		switch typ {
		case mtOctetStream, "application/*", "*/*":
			if canTranscode(in) && (ts == "" || ts == tsExplicitLE) {
				return frameChoice{multipart: !single, partType: mtOctetStream, ts: tsExplicitLE, made: true}, true
			}
		case render.MediaJPEG, "image/jpg", render.MediaPNG:
			if ts != "" && ts != "*" {
				continue
			}
			if _, ok := codec.Lookup(in.TransferSyntaxUID); !ok {
				continue
			}
			mt := render.MediaJPEG
			if typ == render.MediaPNG {
				mt = render.MediaPNG
			}
			return frameChoice{multipart: !single, partType: mt, made: true}, true
		}
	}
	return frameChoice{}, false
}

// frameType is the media type of one frame that m asks for: its part
// type (default application/octet-stream) when m is multipart/related,
// else m itself when one frame is asked for (single). ok is false when
// m cannot carry count frames.
func (m mediaRange) frameType(count int) (single bool, typ string, ok bool) {
	if m.typ == mtMultipart || m.typ == "multipart/*" {
		if typ = m.partType(); typ == "" {
			typ = mtOctetStream
		}
		return false, typ, true
	}
	if count != 1 {
		return false, "", false
	}
	return true, m.typ, true
}

// retrieveFrames is WADO-RS .../frames/{list}.
func (h *Handler) retrieveFrames(c echo.Context) error {
	study, series, sop, err := pathUIDs(c)
	if err != nil {
		return err
	}
	list, err := parseFrameList(c.Param("frames"))
	if err != nil {
		return err
	}
	// Frames are ranged reads at the recorded offsets: no metadata.
	in, err := h.archive.LocateInstance(c.Request().Context(), study, series, sop, false)
	if err != nil {
		return err
	}
	if len(in.Frames) == 0 {
		return notFoundf("the instance has no pixel data frames")
	}
	for _, n := range list {
		if n > len(in.Frames) {
			return notFoundf("frame %d does not exist: the instance has %d frames", n, len(in.Frames))
		}
	}
	ch, err := chooseFrames(acceptRanges(c), in, len(list), true)
	if err != nil {
		return err
	}
	if ch.made {
		// Decoding (to native or a rendered image) needs the
		// instance's metadata.
		full, err := h.index.Instance(c.Request().Context(), in.StudyInstanceUID, in.SeriesInstanceUID, in.SOPInstanceUID)
		if err != nil {
			return err
		}
		return h.serveTranscodedFrames(c, full, list, ch)
	}
	return h.serveFrames(c, in, list, ch)
}

func (h *Handler) serveFrames(c echo.Context, in *storage.Instance, list []int, ch frameChoice) error {
	res := c.Response()
	req := c.Request()
	if !ch.multipart {
		n := list[0]
		res.Header().Set(echo.HeaderContentType, ch.contentType())
		res.Header().Set("ETag", `"`+in.SHA256+"-f"+strconv.Itoa(n)+`"`)
		frame, err := h.archive.Frames(in).Frame(n)
		if err != nil {
			return err
		}
		rs := frame.Seeker(req.Context())
		defer rs.Close()
		http.ServeContent(res, req, "", in.Created, rs)
		return nil
	}
	parts := []string{in.SHA256, ch.contentType()}
	for _, n := range list {
		parts = append(parts, strconv.Itoa(n))
	}
	etag := multipartETag(parts...)
	if notModified(c, etag) {
		return nil
	}
	// The first frame opens before the first byte is written. One
	// FrameReader reads them all: the data set of a deflated instance is
	// inflated once for the whole list, not from its start for each frame.
	set := h.archive.Frames(in)
	frames := set.Reader(req.Context())
	defer frames.Close()
	first, _, err := frames.Frame(list[0])
	if err != nil {
		return err
	}
	bw, flush, release := bufferedResponse(res)
	defer release()
	mw := multipart.NewWriter(bw)
	base := instanceURL(h.baseURL(c), in.StudyInstanceUID, in.SeriesInstanceUID, in.SOPInstanceUID)
	hdrs := make([]textproto.MIMEHeader, len(list))
	for i, n := range list {
		hdrs[i] = textproto.MIMEHeader{}
		hdrs[i].Set(echo.HeaderContentType, ch.contentType())
		hdrs[i].Set(echo.HeaderContentLength, strconv.FormatInt(set.Size(n), 10))
		hdrs[i].Set("Content-Location", base+"/frames/"+strconv.Itoa(n))
	}
	res.Header().Set(echo.HeaderContentType, `multipart/related; type="`+ch.partType+`"; boundary=`+mw.Boundary())
	res.Header().Set("ETag", etag)
	if !in.Created.IsZero() {
		res.Header().Set("Last-Modified", in.Created.UTC().Format(http.TimeFormat))
	}
	if n, ok := multipartLength(mw.Boundary(), hdrs); ok {
		res.Header().Set(echo.HeaderContentLength, strconv.FormatInt(n, 10))
	}
	res.WriteHeader(http.StatusOK)
	if req.Method == http.MethodHead {
		return nil
	}
	for i, n := range list {
		size := set.Size(n)
		r := first
		if i > 0 {
			if r, _, err = frames.Frame(n); err != nil {
				h.abortResponse(c, flush, fmt.Errorf("frame %d: %w", n, err))
			}
		}
		pw, err := mw.CreatePart(hdrs[i])
		if err == nil {
			_, err = copyN(pw, r, size)
		}
		if err != nil {
			h.abortResponse(c, flush, fmt.Errorf("frame %d: %w", n, err))
		}
	}
	if err := mw.Close(); err != nil {
		return err
	}
	return flush()
}

// retrieveBulk is WADO-RS .../bulk/{path}: the value of a BulkDataURI.
// PixelData (7FE00010) of native images is all frames in one part;
// encapsulated PixelData is one part per frame. Other bulk values are
// ranged reads at the spans recorded at ingest (Instance.Bulk); only rows
// indexed before those were recorded re-read the stored header.
func (h *Handler) retrieveBulk(c echo.Context) error {
	study, series, sop, err := pathUIDs(c)
	if err != nil {
		return err
	}
	path := strings.ToUpper(strings.Trim(c.Param("*"), "/"))
	if path == "" || strings.Trim(path, "0123456789ABCDEF/") != "" || len(path) > 512 {
		return badRequestf("malformed bulk data path")
	}
	ctx := c.Request().Context()
	in, err := h.archive.LocateInstance(ctx, study, series, sop, true) // the bulk spans, no metadata
	if err != nil {
		return err
	}
	if path == "7FE00010" && len(in.Frames) > 0 {
		set := h.archive.Frames(in)
		if in.Encapsulated {
			all := make([]int, set.Len())
			for i := range all {
				all[i] = i + 1
			}
			ch, err := chooseFrames(acceptRanges(c), in, len(all), false)
			if err != nil {
				return err
			}
			return h.serveFrames(c, in, all, ch)
		}
		return h.serveBulk(c, in, path, set.All(), tsExplicitLE)
	}
	v, err := h.archive.Bulk(ctx, in, path)
	if errors.Is(err, storage.ErrNoBulkValue) {
		return notFoundf("no bulk data at %s", path)
	} else if err != nil {
		return err
	}
	return h.serveBulk(c, in, path, v.Content, in.TransferSyntaxUID)
}

// serveBulk answers one bulk value: single part application/octet-stream
// if asked for, else a one-part multipart/related (PS3.18 8.7.3.5).
func (h *Handler) serveBulk(c echo.Context, in *storage.Instance, path string, value storage.Content, ts string) error {
	single := false
	ok := false
	for _, m := range acceptRanges(c) {
		switch {
		case m.typ == "*/*" || m.typ == mtMultipart || m.typ == "multipart/*":
			if t := m.partType(); t == "" || t == mtOctetStream || t == "*/*" || t == "application/*" {
				ok = true
			}
		case m.typ == mtOctetStream || m.typ == "application/*":
			ok, single = true, true
		}
		if ok {
			break
		}
	}
	if !ok {
		return notAcceptablef("bulk data is available as application/octet-stream or multipart/related; type=\"application/octet-stream\"")
	}
	res := c.Response()
	req := c.Request()
	ct := mtOctetStream + "; transfer-syntax=" + ts
	etag := `"` + in.SHA256 + "-b" + path + `"`
	size := value.Size
	rs := value.Seeker(req.Context())
	defer rs.Close()
	if single {
		res.Header().Set(echo.HeaderContentType, ct)
		res.Header().Set("ETag", etag)
		http.ServeContent(res, req, "", in.Created, rs)
		return nil
	}
	etag = "W/" + etag
	if notModified(c, etag) {
		return nil
	}
	var first bytes.Buffer // peek one byte so that a failing open is still a status
	if _, err := io.CopyN(&first, rs, min(size, 1)); err != nil {
		return err
	}
	mw := multipart.NewWriter(res)
	res.Header().Set(echo.HeaderContentType, `multipart/related; type="application/octet-stream"; boundary=`+mw.Boundary())
	res.Header().Set("ETag", etag)
	res.WriteHeader(http.StatusOK)
	if req.Method == http.MethodHead {
		return nil
	}
	hdr := textproto.MIMEHeader{}
	hdr.Set(echo.HeaderContentType, ct)
	hdr.Set(echo.HeaderContentLength, strconv.FormatInt(size, 10))
	pw, err := mw.CreatePart(hdr)
	if err != nil {
		return err
	}
	if _, err := copyAll(pw, io.MultiReader(&first, rs)); err != nil {
		return err
	}
	return mw.Close()
}
