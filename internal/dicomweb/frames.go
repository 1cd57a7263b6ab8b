package dicomweb

import (
	"bytes"
	"compress/flate"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/cloudpacs/pacs/internal/dcm"
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
	ts        string // transfer syntax of the bytes sent
}

func (f frameChoice) contentType() string {
	return f.partType + "; transfer-syntax=" + f.ts
}

// chooseFrames negotiates frame retrieval (PS3.18 8.7.3.5, 8.7.4): native
// frames as application/octet-stream in Explicit VR Little Endian (big
// endian objects are swapped by the archive); encapsulated frames as
// stored, either in the media type of their transfer syntax (image/jpeg,
// image/jls, image/jp2, image/dicom-rle, video/…) or as
// application/octet-stream with transfer-syntax=* or the stored syntax.
func chooseFrames(ranges []mediaRange, in *storage.Instance, count int) (frameChoice, error) {
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
		single := false
		typ := ""
		switch {
		case m.typ == mtMultipart || m.typ == "multipart/*":
			typ = m.partType()
			if typ == "" {
				typ = mtOctetStream
			}
		default:
			if count != 1 {
				continue
			}
			single, typ = true, m.typ
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
	return frameChoice{}, notAcceptablef("%s", why)
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
	in, err := storage.LocateInstance(c.Request().Context(), h.index, study, series, sop, false)
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
	ch, err := chooseFrames(acceptRanges(c), in, len(list))
	if err != nil {
		// Not acceptable as stored: decode (to native or a rendered
		// image), which needs the instance's metadata.
		if tc, ok := chooseTranscodedFrames(acceptRanges(c), in, len(list)); ok {
			full, ferr := h.index.Instance(c.Request().Context(), in.StudyInstanceUID, in.SeriesInstanceUID, in.SOPInstanceUID)
			if ferr != nil {
				return ferr
			}
			return h.serveTranscodedFrames(c, full, list, tc)
		}
		return err
	}
	return h.serveFrames(c, in, list, ch)
}

// frameSize is the number of bytes frame n (1-based) is delivered in.
func frameSize(in *storage.Instance, n int) int64 {
	var size int64
	for _, s := range in.Frames[n-1] {
		size += s.Length
	}
	return size
}

// frameSeeker is a rangeSeeker over frame n: direct ranged blob reads
// when the frame is one span of stored bytes that need no change, else
// the archive's frame stream.
func (h *Handler) frameSeeker(c echo.Context, in *storage.Instance, n int) *rangeSeeker {
	ctx := c.Request().Context()
	rs := &rangeSeeker{size: frameSize(in, n)}
	if f := in.Frames[n-1]; len(f) == 1 && !in.Deflated && !in.BigEndian {
		span := f[0]
		rs.open = func(off, length int64) (io.ReadCloser, error) {
			return h.archive.Blobs.Open(ctx, in.BlobKey, span.Offset+off, length)
		}
		return rs
	}
	rs.stream = func() (io.ReadCloser, error) {
		rc, _, err := h.archive.OpenFrame(ctx, in, n)
		return rc, err
	}
	return rs
}

func (h *Handler) serveFrames(c echo.Context, in *storage.Instance, list []int, ch frameChoice) error {
	res := c.Response()
	req := c.Request()
	if !ch.multipart {
		n := list[0]
		res.Header().Set(echo.HeaderContentType, ch.contentType())
		res.Header().Set("ETag", `"`+in.SHA256+"-f"+strconv.Itoa(n)+`"`)
		rs := h.frameSeeker(c, in, n)
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
	frames := h.archive.OpenFrames(c.Request().Context(), in)
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
		hdrs[i].Set(echo.HeaderContentLength, strconv.FormatInt(frameSize(in, n), 10))
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
		size := frameSize(in, n)
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
	in, err := storage.LocateInstance(ctx, h.index, study, series, sop, true) // the bulk spans, no metadata
	if err != nil {
		return err
	}
	if path == "7FE00010" && len(in.Frames) > 0 {
		all := make([]int, len(in.Frames))
		for i := range all {
			all[i] = i + 1
		}
		if in.Encapsulated {
			ch, err := chooseFrames(acceptRanges(c), in, len(all))
			if err != nil {
				return err
			}
			return h.serveFrames(c, in, all, ch)
		}
		var size int64
		for _, n := range all {
			size += frameSize(in, n)
		}
		rs := &rangeSeeker{size: size, stream: func() (io.ReadCloser, error) { return h.allFrames(c, in) }}
		if fs := in.Frames; !in.Deflated && !in.BigEndian && contiguous(fs) {
			start := fs[0][0].Offset
			rs.stream, rs.open = nil, func(off, n int64) (io.ReadCloser, error) {
				return h.archive.Blobs.Open(ctx, in.BlobKey, start+off, n)
			}
		}
		return h.serveBulk(c, in, path, rs, tsExplicitLE)
	}
	span, err := h.bulkSpan(c, in, path)
	if err != nil {
		return err
	}
	rs := &rangeSeeker{size: span.Length, open: func(off, n int64) (io.ReadCloser, error) {
		return h.archive.Blobs.Open(ctx, in.BlobKey, span.Offset+off, n)
	}}
	if in.Deflated {
		rs.open, rs.stream = nil, func() (io.ReadCloser, error) { return h.openInflated(c, in, span) }
	}
	return h.serveBulk(c, in, path, rs, in.TransferSyntaxUID)
}

func contiguous(fs []dcm.Frame) bool {
	var end int64 = -1
	for _, f := range fs {
		if len(f) != 1 || (end >= 0 && f[0].Offset != end) {
			return false
		}
		end = f[0].Offset + f[0].Length
	}
	return len(fs) > 0
}

// allFrames streams every frame of a native image, one after another,
// through one FrameReader (a deflated data set is inflated once).
func (h *Handler) allFrames(c echo.Context, in *storage.Instance) (io.ReadCloser, error) {
	pr, pw := io.Pipe()
	go func() {
		defer func() { // off the handler's goroutine: no server recovery here
			if v := recover(); v != nil {
				h.log.Error("frames: reader panicked", "panic", v, "stack", string(debug.Stack()))
				pw.CloseWithError(fmt.Errorf("frames: panic: %v", v))
			}
		}()
		frames := h.archive.OpenFrames(c.Request().Context(), in)
		defer frames.Close()
		for n := 1; n <= len(in.Frames); n++ {
			r, _, err := frames.Frame(n)
			if err != nil {
				pw.CloseWithError(err)
				return
			}
			if _, err = copyAll(pw, r); err != nil {
				pw.CloseWithError(err)
				return
			}
		}
		pw.Close()
	}()
	return pr, nil
}

// bulkSpan finds a non-PixelData bulk value in the spans recorded at
// ingest or, for rows without them (Bulk == nil), by re-reading the
// stored object's header with dcm.Parse.
func (h *Handler) bulkSpan(c echo.Context, in *storage.Instance, path string) (dcm.Span, error) {
	if in.Bulk != nil {
		for _, b := range in.Bulk {
			if b.Path == path {
				return b.Span, nil
			}
		}
		return dcm.Span{}, notFoundf("no bulk data at %s", path)
	}
	h.reparses.Add(1)
	rc, err := h.archive.OpenInstance(c.Request().Context(), in)
	if err != nil {
		return dcm.Span{}, err
	}
	defer rc.Close()
	hdr, err := dcm.Parse(rc)
	if err != nil {
		return dcm.Span{}, fmt.Errorf("bulk: re-reading stored instance: %w", err) // stored data no longer parses: 500
	}
	for _, b := range hdr.Bulk() {
		if strings.EqualFold(b.Path, path) {
			return b.Span, nil
		}
	}
	return dcm.Span{}, notFoundf("no bulk data at %s", path)
}

// openInflated reads span of the inflated data set of a deflated object.
// Span offsets count from the start of the object as if the data set were
// stored inflated (dcm.Header.Deflated): the inflated stream starts at
// DataSetOffset.
func (h *Handler) openInflated(c echo.Context, in *storage.Instance, span dcm.Span) (io.ReadCloser, error) {
	rc, err := h.archive.Blobs.Open(c.Request().Context(), in.BlobKey, in.DataSetOffset, -1)
	if err != nil {
		return nil, err
	}
	fr := flate.NewReader(rc)
	if _, err := io.CopyN(io.Discard, fr, span.Offset-in.DataSetOffset); err != nil {
		rc.Close()
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{io.LimitReader(fr, span.Length), rc}, nil
}

// serveBulk answers one bulk value: single part application/octet-stream
// if asked for, else a one-part multipart/related (PS3.18 8.7.3.5).
func (h *Handler) serveBulk(c echo.Context, in *storage.Instance, path string, rs *rangeSeeker, ts string) error {
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
	size := rs.size
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
