package dicomweb

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/cloudpacs/pacs/internal/dcm"
	"github.com/cloudpacs/pacs/internal/storage"
)

// Tags of the Store Instances Response Module (PS3.18 10.5.3).
const (
	tagRetrieveURL              dcm.Tag = 0x00081190
	tagFailedSOPSequence        dcm.Tag = 0x00081198
	tagReferencedSOPSequence    dcm.Tag = 0x00081199
	tagReferencedSOPClassUID    dcm.Tag = 0x00081150
	tagReferencedSOPInstanceUID dcm.Tag = 0x00081155
	tagFailureReason            dcm.Tag = 0x00081197
	tagWarningReason            dcm.Tag = 0x00081196
	tagInstanceAvailability     dcm.Tag = 0x00080056
)

// parseContentType is mime.ParseMediaType, falling back to the lenient
// Accept parser for unquoted values with '/' (type=application/dicom).
func parseContentType(s string) (string, map[string]string, bool) {
	mt, params, err := mime.ParseMediaType(s)
	if err == nil {
		return mt, params, true
	}
	if errors.Is(err, mime.ErrInvalidMediaParameter) {
		if r := parseAccept(s); len(r) == 1 {
			return r[0].typ, r[0].params, true
		}
	}
	return "", nil, false
}

// storeInstances is STOW-RS: POST /studies[/{study}] with a
// multipart/related body of application/dicom parts (or a single
// application/dicom body). The handler is an adapter: the parts become
// a storage.Source, and the archive's pipeline (StoreAll) reads, commits
// and budgets them; one bad part never fails the others.
func (h *Handler) storeInstances(c echo.Context) error {
	study, _, _, err := pathUIDs(c)
	if err != nil {
		return err
	}
	if !acceptsJSON(acceptRanges(c)) {
		return notAcceptablef("STOW-RS answers application/dicom+json only")
	}
	req := c.Request()
	mt, params, ok := parseContentType(req.Header.Get(echo.HeaderContentType))
	if !ok {
		return fmt.Errorf("%w: missing or malformed Content-Type; want multipart/related; type=\"application/dicom\"", errUnsupportedMediaType)
	}
	ctx := req.Context()
	body := http.MaxBytesReader(c.Response(), req.Body, h.maxUpload)
	res := stowResult{base: h.baseURL(c), study: study}
	var src storage.Source
	switch mt {
	case mtDICOM:
		src = &singleSource{body: body, study: study}
	case mtMultipart:
		if t := params["type"]; t != "" && !strings.EqualFold(t, mtDICOM) {
			return fmt.Errorf("%w: multipart/related type %q; this server stores type=\"application/dicom\"", errUnsupportedMediaType, t)
		}
		boundary := params["boundary"]
		if boundary == "" {
			return badRequestf("multipart/related without a boundary parameter")
		}
		// multipart.Reader reads through a 4 KiB buffer: behind a larger
		// one, the body comes off the connection in 64 KiB reads, not 4.
		br := bodyBufs.Get().(*bufio.Reader)
		br.Reset(body)
		defer func() {
			br.Reset(nil)
			bodyBufs.Put(br)
		}()
		src = &partSource{mr: multipart.NewReader(br, boundary), study: study}
	default:
		return fmt.Errorf("%w: %q; want multipart/related; type=\"application/dicom\" or application/dicom", errUnsupportedMediaType, mt)
	}
	if err := h.archive.StoreAll(ctx, src, res.add); err != nil {
		res.broken = err
	}
	if ctx.Err() != nil { // what is stored stays; nobody is there to answer
		return ctx.Err()
	}
	for _, f := range res.failed {
		h.log.Info("stow: instance failed", "reason", fmt.Sprintf("0x%04X", f.reason), "err", f.err)
	}
	if len(res.stored) == 0 && len(res.failed) == 0 {
		if res.broken != nil {
			return fmt.Errorf("%w: malformed multipart body: %w", errBadRequest, res.broken)
		}
		return badRequestf("the request holds no instance")
	}
	if res.broken != nil && !errors.Is(res.broken, storage.ErrBusy) {
		h.log.Info("stow: multipart body cut short", "err", res.broken)
	}
	code := res.status()
	res.warnings(c.Response().Header())
	if res.busy() {
		c.Response().Header().Set("Retry-After", retryAfterSeconds)
	}
	return c.Blob(code, mtDICOMJSON, res.appendJSON(nil))
}

// retryAfterSeconds is the Retry-After of a STOW refused, wholly or in
// part, because the ingest budget was full.
const retryAfterSeconds = "5"

// singleSource is a STOW body that is one application/dicom instance.
type singleSource struct {
	body  io.Reader
	study string
	done  bool
}

func (s *singleSource) Next(context.Context) (storage.Item, error) {
	if s.done {
		return storage.Item{}, io.EOF
	}
	s.done = true
	return storage.Item{Body: s.body, Study: s.study}, nil
}

// partSource yields the parts of a multipart/related STOW body.
type partSource struct {
	mr    *multipart.Reader
	study string
}

func (s *partSource) Next(context.Context) (storage.Item, error) {
	part, err := s.mr.NextRawPart() // raw: no quoted-printable decoding of binary data
	if err != nil {
		return storage.Item{}, err // io.EOF at the closing boundary
	}
	if ct := part.Header.Get(echo.HeaderContentType); ct != "" {
		if pmt, _, ok := parseContentType(ct); !ok || pmt != mtDICOM {
			// NextRawPart skips the rest of this part.
			return storage.Item{Err: fmt.Errorf("%w: part of type %q", errUnsupportedMediaType, ct)}, nil
		}
	}
	return storage.Item{Body: part, Study: s.study}, nil
}

type stowResult struct {
	base, study string
	stored      []storedItem
	failed      []failedItem
	// broken: the pipeline stopped before the end of the body (it broke
	// off, or the ingest budget stayed full: storage.ErrBusy).
	broken error
}

type storedItem struct {
	class, sop, series, study string
	warning                   int
	warningText               string
	duplicate                 bool // already stored: nothing changed
}

type failedItem struct {
	class, sop string
	reason     int
	err        error
}

// add records one instance's outcome (storage.StoreAll's report).
func (r *stowResult) add(o storage.Outcome) {
	if o.Err != nil {
		r.addFailure(o.Result, o.Err)
		return
	}
	in := o.Result.Instance
	it := storedItem{class: in.SOPClassUID, sop: in.SOPInstanceUID, series: in.SeriesInstanceUID, study: in.StudyInstanceUID, duplicate: o.Result.Duplicate}
	if o.Result.Warning != "" {
		it.warning, it.warningText = warningDoesNotMatch, o.Result.Warning
	}
	r.stored = append(r.stored, it)
}

func (r *stowResult) addFailure(sr storage.StoreResult, err error) {
	r.failed = append(r.failed, failedItem{class: sr.Instance.SOPClassUID, sop: sr.Instance.SOPInstanceUID, reason: failureReason(err), err: err})
}

// status is the response status per PS3.18 10.5.3 Table 10.5.3-1.
func (r *stowResult) status() int {
	if len(r.stored) > 0 {
		if len(r.failed) > 0 || r.broken != nil {
			return http.StatusAccepted
		}
		for _, s := range r.stored {
			if s.warning != 0 {
				return http.StatusAccepted
			}
		}
		return http.StatusOK
	}
	all := func(pred func(error) bool) bool {
		for _, f := range r.failed {
			if !pred(f.err) {
				return false
			}
		}
		return len(r.failed) > 0
	}
	var tooBig *http.MaxBytesError
	switch {
	case all(func(e error) bool { return errors.Is(e, errUnsupportedMediaType) }):
		return http.StatusUnsupportedMediaType
	case all(func(e error) bool { return errors.Is(e, storage.ErrUnavailable) || errors.Is(e, storage.ErrBusy) }):
		return http.StatusServiceUnavailable
	case len(r.failed) > 0 && errors.As(r.failed[0].err, &tooBig):
		return http.StatusRequestEntityTooLarge
	}
	return http.StatusConflict
}

// busy reports that the ingest budget refused an instance: the client
// should send the rest again later (Retry-After).
func (r *stowResult) busy() bool {
	if errors.Is(r.broken, storage.ErrBusy) {
		return true
	}
	for _, f := range r.failed {
		if errors.Is(f.err, storage.ErrBusy) {
			return true
		}
	}
	return false
}

// maxWarnings bounds the Warning header lines of one STOW response.
const maxWarnings = 20

// warnings says in words why each failed instance failed, and what is
// wrong with each instance stored with a warning, as Warning header lines
// (code 299, as PS3.18 uses them), so that the sender need not read our log.
func (r *stowResult) warnings(h http.Header) {
	n := 0
	add := func(text string) {
		if n < maxWarnings {
			addWarning(h, text)
		}
		n++
	}
	for _, f := range r.failed {
		who := "an instance"
		if f.sop != "" {
			who = "instance " + f.sop
		}
		add(fmt.Sprintf("%s not stored (failure reason 0x%04X): %s", who, f.reason, failureText(f.err)))
	}
	if r.broken != nil && !errors.Is(r.broken, storage.ErrBusy) && len(r.stored) > 0 {
		add("the rest of the request was not read: " + failureText(fmt.Errorf("%w: %w", errBadRequest, r.broken)))
	}
	for _, s := range r.stored {
		if s.warningText != "" {
			add(fmt.Sprintf("instance %s stored with warning 0x%04X: %s", s.sop, s.warning, s.warningText))
		}
	}
	if n > maxWarnings {
		addWarning(h, fmt.Sprintf("%d more warnings not shown", n-maxWarnings))
	}
}

// studyURL is the RetrieveURL of the study the request stored into: the
// path's, or the one study all stored instances belong to.
func (r *stowResult) studyURL() string {
	s := r.study
	if s == "" {
		for _, it := range r.stored {
			if s == "" {
				s = it.study
			} else if s != it.study {
				return ""
			}
		}
	}
	if s == "" || len(r.stored) == 0 {
		return ""
	}
	return r.base + "/studies/" + s
}

func (r *stowResult) appendJSON(dst []byte) []byte {
	var ds, item dataset
	if u := r.studyURL(); u != "" {
		ds.str(tagRetrieveURL, "UR", u)
	}
	if len(r.failed) > 0 || r.broken != nil && !errors.Is(r.broken, storage.ErrBusy) {
		seq := []byte(`{"vr":"SQ","Value":[`)
		n := 0
		for _, f := range r.failed {
			if n > 0 {
				seq = append(seq, ',')
			}
			n++
			item.reset()
			// Unknown UIDs (the part never parsed that far) are left
			// out rather than sent empty.
			if f.class != "" {
				item.str(tagReferencedSOPClassUID, "UI", f.class)
			}
			if f.sop != "" {
				item.str(tagReferencedSOPInstanceUID, "UI", f.sop)
			}
			item.num(tagFailureReason, "US", f.reason)
			seq = item.appendTo(seq)
		}
		// The unreadable rest of the body (after a refusal for lack of
		// room the rest is simply unread: the refused item says why).
		if r.broken != nil && !errors.Is(r.broken, storage.ErrBusy) && len(r.stored) > 0 {
			if n > 0 {
				seq = append(seq, ',')
			}
			reason := reasonCannotUnderstand
			var tooBig *http.MaxBytesError
			if errors.As(r.broken, &tooBig) {
				reason = reasonOutOfResources
			}
			item.reset()
			item.num(tagFailureReason, "US", reason)
			seq = item.appendTo(seq)
		}
		ds.raw(tagFailedSOPSequence, append(seq, "]}"...))
	}
	if len(r.stored) > 0 {
		seq := []byte(`{"vr":"SQ","Value":[`)
		for i, s := range r.stored {
			if i > 0 {
				seq = append(seq, ',')
			}
			item.reset()
			item.str(tagReferencedSOPClassUID, "UI", s.class)
			item.str(tagReferencedSOPInstanceUID, "UI", s.sop)
			item.str(tagRetrieveURL, "UR", instanceURL(r.base, s.study, s.series, s.sop))
			if s.warning != 0 {
				item.num(tagWarningReason, "US", s.warning)
			}
			seq = item.appendTo(seq)
		}
		ds.raw(tagReferencedSOPSequence, append(seq, "]}"...))
	}
	return ds.appendTo(dst)
}
