package dicomweb

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/cloudpacs/pacs/internal/dcm"
	"github.com/cloudpacs/pacs/internal/storage"
)

// instances returns the instances a retrieve path names.
func (h *Handler) instances(ctx context.Context, study, series, sop string) ([]*storage.Instance, error) {
	if sop != "" {
		in, err := h.index.Instance(ctx, study, series, sop)
		if err != nil {
			return nil, err
		}
		return []*storage.Instance{in}, nil
	}
	insts, err := h.index.Instances(ctx, study, series)
	if err == nil && len(insts) == 0 {
		err = notFoundf("no instances")
	}
	return insts, err
}

// locate returns the instances a retrieve path names like instances,
// but without their metadata documents (storage.LocateInstance): for
// the retrieve paths that stream stored bytes. Paths that read
// Instance.Metadata (rendering, transcoding, reports) use instances.
func (h *Handler) locate(ctx context.Context, study, series, sop string) ([]*storage.Instance, error) {
	if sop != "" {
		in, err := h.archive.LocateInstance(ctx, study, series, sop, false)
		if err != nil {
			return nil, err
		}
		return []*storage.Instance{in}, nil
	}
	insts, err := h.archive.LocateInstances(ctx, study, series)
	if err == nil && len(insts) == 0 {
		err = notFoundf("no instances")
	}
	return insts, err
}

// dicomChoice is the negotiated representation of a DICOM retrieve.
type dicomChoice struct {
	multipart bool
	ts        string // "*": as stored; else the transfer syntax UID to send
}

// outTS is the transfer syntax inst is sent in, or "" if impossible.
func (ch dicomChoice) outTS(inst *storage.Instance) string {
	switch {
	case ch.ts == "*" || ch.ts == inst.TransferSyntaxUID:
		return inst.TransferSyntaxUID
	case ch.ts == tsExplicitLE && uncompressedTS(inst.TransferSyntaxUID):
		return tsExplicitLE
	case ch.ts == tsExplicitLE && canTranscode(inst):
		return tsExplicitLE
	}
	return ""
}

// chooseDICOM negotiates application/dicom retrieval (PS3.18 8.7.3):
// the first acceptable range, in preference order, that every instance
// can be sent in.
func chooseDICOM(ranges []mediaRange, insts []*storage.Instance, singleOK bool) (dicomChoice, error) {
	why := "this resource is available as multipart/related; type=\"application/dicom\""
	for _, m := range ranges {
		var ch dicomChoice
		switch {
		case m.typ == "*/*":
			ch = dicomChoice{multipart: true, ts: "*"}
		case m.typ == mtMultipart || m.typ == "multipart/*":
			if t := m.partType(); t != "" && t != mtDICOM && t != "*/*" && t != "application/*" {
				continue
			}
			ch = dicomChoice{multipart: true, ts: tsParam(m)}
		case m.typ == mtDICOM || m.typ == "application/*":
			if !singleOK {
				why = "a single-part application/dicom response holds one instance; ask for multipart/related; type=\"application/dicom\""
				continue
			}
			ch = dicomChoice{ts: tsParam(m)}
			if m.typ == "application/*" {
				ch.ts = "*"
			}
		default:
			continue
		}
		ok := true
		for _, in := range insts {
			if ch.outTS(in) == "" {
				ok = false
				why = fmt.Sprintf("instance %s is stored in transfer syntax %s and cannot be converted to %s yet; ask for transfer-syntax=* or %s",
					in.SOPInstanceUID, in.TransferSyntaxUID, ch.ts, in.TransferSyntaxUID)
				break
			}
		}
		if ok {
			return ch, nil
		}
	}
	return dicomChoice{}, notAcceptablef("%s", why)
}

// tsParam is the transfer-syntax parameter of m, defaulting to Explicit VR
// Little Endian (PS3.18 8.7.3.5.2).
func tsParam(m mediaRange) string {
	if ts := strings.TrimSpace(m.param("transfer-syntax")); ts != "" {
		return ts
	}
	return tsExplicitLE
}

// retrieveInstances is WADO-RS study, series and instance retrieval.
func (h *Handler) retrieveInstances(c echo.Context) error {
	study, series, sop, err := pathUIDs(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	insts, err := h.locate(ctx, study, series, sop)
	if err != nil {
		return err
	}
	ch, err := chooseDICOM(acceptRanges(c), insts, sop != "")
	if err != nil {
		return err
	}
	if !ch.multipart {
		return h.serveInstance(c, insts[0], ch.outTS(insts[0]))
	}
	return h.streamInstances(c, insts, ch)
}

// multipartETag is a weak validator of a multipart answer made of the
// given parts (the boundary differs between responses).
func multipartETag(parts ...string) string {
	sum := sha256.New()
	for _, p := range parts {
		io.WriteString(sum, p)
		sum.Write([]byte{0})
	}
	return `W/"` + hex.EncodeToString(sum.Sum(nil)[:16]) + `"`
}

// notModified answers 304 when If-None-Match holds etag.
func notModified(c echo.Context, etag string) bool {
	inm := c.Request().Header.Get("If-None-Match")
	if inm == "" {
		return false
	}
	weak := strings.TrimPrefix(etag, "W/")
	for t := range strings.SplitSeq(inm, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || strings.TrimPrefix(t, "W/") == weak {
			c.Response().Header().Set("ETag", etag)
			c.Response().WriteHeader(http.StatusNotModified)
			return true
		}
	}
	return false
}

func (h *Handler) streamInstances(c echo.Context, insts []*storage.Instance, ch dicomChoice) error {
	ctx := c.Request().Context()
	parts := make([]string, 0, len(insts))
	for _, in := range insts {
		parts = append(parts, in.SHA256+"/"+ch.outTS(in))
	}
	etag := multipartETag(parts...)
	if notModified(c, etag) {
		return nil
	}
	// Open the first object (and decode its first frame if it must be
	// transcoded) before the first byte, so a missing blob, an
	// unavailable store or pixel data that do not decode still get a
	// proper error status.
	var err error
	if insts[0], err = h.preflightTranscode(ctx, insts[0], ch.outTS(insts[0])); err != nil {
		return err
	}
	first, err := h.archive.OpenInstance(ctx, insts[0])
	if err != nil {
		return err
	}
	defer func() {
		if first != nil {
			first.Close()
		}
	}()
	res := c.Response()
	bw, flush, release := bufferedResponse(res)
	defer release()
	mw := multipart.NewWriter(bw)
	hdrs := make([]textproto.MIMEHeader, len(insts))
	for i, in := range insts {
		ts := ch.outTS(in)
		hdrs[i] = textproto.MIMEHeader{}
		hdrs[i].Set(echo.HeaderContentType, mtDICOM+"; transfer-syntax="+ts)
		if ts == in.TransferSyntaxUID {
			hdrs[i].Set(echo.HeaderContentLength, strconv.FormatInt(in.Size, 10))
		}
	}
	res.Header().Set(echo.HeaderContentType, `multipart/related; type="application/dicom"; boundary=`+mw.Boundary())
	res.Header().Set("ETag", etag)
	if n, ok := multipartLength(mw.Boundary(), hdrs); ok {
		res.Header().Set(echo.HeaderContentLength, strconv.FormatInt(n, 10))
	}
	res.WriteHeader(http.StatusOK)
	if c.Request().Method == http.MethodHead {
		return nil
	}
	for i, in := range insts {
		rc := first
		first = nil
		if i > 0 {
			if rc, err = h.archive.OpenInstance(ctx, in); err != nil {
				h.abortResponse(c, flush, fmt.Errorf("retrieve %s: %w", in.SOPInstanceUID, err)) // deleted meanwhile, or the store failed
			}
		}
		ts := ch.outTS(in)
		pw, err := mw.CreatePart(hdrs[i])
		if err == nil {
			err = h.copyInstance(ctx, pw, rc, in, ts)
		}
		rc.Close()
		if err != nil {
			h.abortResponse(c, flush, fmt.Errorf("retrieve %s: %w", in.SOPInstanceUID, err))
		}
	}
	if err := mw.Close(); err != nil {
		return err
	}
	return flush()
}

// copyInstance writes the instance read from rc in transfer syntax ts:
// as stored, converted between uncompressed syntaxes, or decoded from a
// compressed one (which needs the instance's metadata, not loaded by the
// retrieve lookups).
func (h *Handler) copyInstance(ctx context.Context, w io.Writer, rc io.Reader, in *storage.Instance, ts string) error {
	switch {
	case ts == in.TransferSyntaxUID:
		_, err := copyAll(w, rc)
		return err
	case !in.Encapsulated:
		return dcm.ToExplicitLE(w, rc)
	}
	if in.Metadata == nil {
		full, err := h.index.Instance(ctx, in.StudyInstanceUID, in.SeriesInstanceUID, in.SOPInstanceUID)
		if err != nil {
			return err
		}
		in = full
	}
	return transcodeError(transcodeToExplicitLE(ctx, w, rc, in, h.archive))
}

// serveInstance answers one instance as a single application/dicom part:
// as stored with http.ServeContent (Range, conditional requests), or
// converted to Explicit VR Little Endian as a stream.
func (h *Handler) serveInstance(c echo.Context, in *storage.Instance, ts string) error {
	res := c.Response()
	req := c.Request()
	res.Header().Set(echo.HeaderContentType, mtDICOM+"; transfer-syntax="+ts)
	if ts == in.TransferSyntaxUID {
		res.Header().Set("ETag", `"`+in.SHA256+`"`)
		rs := h.archive.InstanceContent(in).Seeker(req.Context())
		defer rs.Close()
		http.ServeContent(res, req, "", in.Created, rs)
		return nil
	}
	etag := `"` + in.SHA256 + "-" + ts + `"`
	if notModified(c, etag) {
		return nil
	}
	res.Header().Set("ETag", etag)
	if !in.Created.IsZero() {
		res.Header().Set("Last-Modified", in.Created.UTC().Format(http.TimeFormat))
	}
	rc, err := h.archive.OpenInstance(req.Context(), in)
	if err != nil {
		return err
	}
	defer rc.Close()
	if req.Method == http.MethodHead {
		res.WriteHeader(http.StatusOK)
		return nil
	}
	// The first write sends the 200: a conversion that fails before it
	// (a frame that does not decode) still gets its own status.
	return h.copyInstance(req.Context(), res, rc, in, ts)
}

// deleteResource is DELETE of a study, series or instance: the archive
// removes the index rows first (the commit point), then the blobs and
// the renderings cached from them, and rebuilds what remains of the
// study's metadata.
func (h *Handler) deleteResource(c echo.Context) error {
	study, series, sop, err := pathUIDs(c)
	if err != nil {
		return err
	}
	if err := h.archive.Delete(c.Request().Context(), study, series, sop); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// wadoURI is WADO-URI (PS3.18 9): one instance as application/dicom.
// transferSyntax absent: Explicit VR Little Endian when the stored syntax
// can be converted, else as stored; "*": as stored.
func (h *Handler) wadoURI(c echo.Context) error {
	q := c.QueryParams()
	if q.Get("requestType") != "WADO" {
		return badRequestf("requestType must be WADO")
	}
	study, series, sop := q.Get("studyUID"), q.Get("seriesUID"), q.Get("objectUID")
	for _, p := range [][2]string{{"studyUID", study}, {"seriesUID", series}, {"objectUID", sop}} {
		if p[1] == "" {
			return badRequestf("missing %s", p[0])
		}
		if !validUID(p[1]) {
			return badRequestf("malformed %s", p[0])
		}
	}
	ok := false
	cts := q.Get("contentType")
	if cts == "" {
		cts = mtDICOM
	}
	for ct := range strings.SplitSeq(cts, ",") {
		mt, _, _ := strings.Cut(strings.TrimSpace(ct), ";")
		if mt == mtDICOM || mt == "*/*" {
			ok = true
		}
	}
	if !ok {
		return h.wadoURIRendered(c, study, series, sop, cts) // wadouri.go
	}
	in, err := h.index.Instance(c.Request().Context(), study, series, sop)
	if err != nil {
		return err
	}
	ts := q.Get("transferSyntax")
	switch {
	case ts == "":
		ts = in.TransferSyntaxUID
		if uncompressedTS(ts) {
			ts = tsExplicitLE
		}
	case ts == "*":
		ts = in.TransferSyntaxUID
	default:
		if out := (dicomChoice{ts: ts}).outTS(in); out != "" {
			ts = out
		} else {
			return notAcceptablef("the instance is stored in %s and cannot be converted to %s yet", in.TransferSyntaxUID, ts)
		}
	}
	return h.serveInstance(c, in, ts)
}
