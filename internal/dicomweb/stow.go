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
	"runtime/debug"
	"strings"
	"sync"

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
// application/dicom body). Each part streams into Archive.Ingest and
// commits while the next part is read (storeParts); one bad part never
// fails the others.
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
	switch mt {
	case mtDICOM:
		res.add(h.archive.Store(ctx, body, study))
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
		h.storeParts(ctx, multipart.NewReader(br, boundary), study, &res)
		br.Reset(nil)
		bodyBufs.Put(br)
	default:
		return fmt.Errorf("%w: %q; want multipart/related; type=\"application/dicom\" or application/dicom", errUnsupportedMediaType, mt)
	}
	for study := range res.changedStudies() { // even if the client hung up: what is stored stays
		h.changed(study, res.base)
	}
	h.purgeThumbnails(ctx, res.replacedSHAs) // thumbnails of replaced bytes are never served again
	if ctx.Err() != nil {
		return ctx.Err()
	}
	for _, f := range res.failed {
		h.log.Info("stow: instance failed", "reason", fmt.Sprintf("0x%04X", f.reason), "err", f.err)
	}
	code := res.status()
	if len(res.stored) == 0 && len(res.failed) == 0 {
		if res.broken != nil {
			return fmt.Errorf("%w: malformed multipart body: %w", errBadRequest, res.broken)
		}
		return badRequestf("the request holds no instance")
	}
	if res.broken != nil {
		h.log.Info("stow: multipart body cut short", "err", res.broken)
	}
	return c.Blob(code, mtDICOMJSON, res.appendJSON(nil))
}

// stowCommits bounds the parts of one STOW request whose commit (blob
// fsync and rename, or S3 upload, then the index row) runs while the
// next part is read. Each holds what its blob writer buffers (a file:
// nothing; S3: up to one part size for a small object).
const stowCommits = 8

// storeParts stores the parts of a multipart/related body in order. A
// part is read (streamed into its blob writer, hashed, parsed) by this
// goroutine, one after the other, as the body arrives; its commit then
// runs on its own goroutine, at most stowCommits at a time, while the
// next part is read. The results are added to res in part order, once
// every commit finished. One part's failure never touches the others.
func (h *Handler) storeParts(ctx context.Context, mr *multipart.Reader, study string, res *stowResult) {
	type outcome struct {
		r   storage.StoreResult
		err error
	}
	var (
		outcomes []*outcome
		wg       sync.WaitGroup
		slots    = make(chan struct{}, stowCommits)
	)
	defer func() {
		wg.Wait()
		for _, o := range outcomes {
			res.add(o.r, o.err)
		}
	}()
	for {
		part, err := mr.NextRawPart() // raw: no quoted-printable decoding of binary data
		if err == io.EOF {
			return
		}
		if err != nil {
			res.broken = err
			return
		}
		o := &outcome{}
		outcomes = append(outcomes, o)
		if ct := part.Header.Get(echo.HeaderContentType); ct != "" {
			pmt, _, ok := parseContentType(ct)
			if !ok || pmt != mtDICOM {
				o.err = fmt.Errorf("%w: part of type %q", errUnsupportedMediaType, ct)
				continue // NextRawPart skips the rest of this part
			}
		}
		p, err := h.archive.Ingest(ctx, part, study)
		if err != nil {
			o.r, o.err = storage.StoreResult{Instance: p.Instance()}, err
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) || ctx.Err() != nil {
				return
			}
			continue
		}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done(): // the client is gone: commit nothing more
			p.Abort()
			o.r, o.err = storage.StoreResult{Instance: p.Instance()}, fmt.Errorf("storage: store: %w", ctx.Err())
			return
		}
		wg.Go(func() {
			defer func() {
				<-slots
				// A panic here is off the handler's goroutine, out of
				// reach of the HTTP server's recovery: fail the part,
				// not the process.
				if v := recover(); v != nil {
					h.log.Error("stow: commit panicked", "panic", v, "stack", string(debug.Stack()))
					o.r, o.err = storage.StoreResult{Instance: p.Instance()}, fmt.Errorf("stow: commit: panic: %v", v)
				}
			}()
			o.r, o.err = p.Commit(ctx)
		})
	}
}

type stowResult struct {
	base, study string
	stored      []storedItem
	failed      []failedItem
	broken      error // the multipart body broke off
	// replacedSHAs are the SHA-256s of instances a replace overwrote.
	replacedSHAs []string
}

type storedItem struct {
	class, sop, series, study string
	warning                   int
	duplicate                 bool // already stored: nothing changed
}

// changedStudies are the studies that stored instances changed.
func (r *stowResult) changedStudies() map[string]struct{} {
	out := map[string]struct{}{}
	for _, s := range r.stored {
		if !s.duplicate {
			out[s.study] = struct{}{}
		}
	}
	return out
}

type failedItem struct {
	class, sop string
	reason     int
	err        error
}

func (r *stowResult) add(sr storage.StoreResult, err error) {
	if err != nil {
		r.addFailure(sr, err)
		return
	}
	in := sr.Instance
	if sr.ReplacedSHA256 != "" {
		r.replacedSHAs = append(r.replacedSHAs, sr.ReplacedSHA256)
	}
	r.stored = append(r.stored, storedItem{class: in.SOPClassUID, sop: in.SOPInstanceUID, series: in.SeriesInstanceUID, study: in.StudyInstanceUID, duplicate: sr.Duplicate})
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
	case all(func(e error) bool { return errors.Is(e, storage.ErrUnavailable) }):
		return http.StatusServiceUnavailable
	case len(r.failed) > 0 && errors.As(r.failed[0].err, &tooBig):
		return http.StatusRequestEntityTooLarge
	}
	return http.StatusConflict
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
	if len(r.failed) > 0 || r.broken != nil {
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
		if r.broken != nil && len(r.stored) > 0 { // the unreadable rest of the body
			if n > 0 {
				seq = append(seq, ',')
			}
			item.reset()
			item.num(tagFailureReason, "US", reasonCannotUnderstand)
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
