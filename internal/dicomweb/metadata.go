package dicomweb

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/labstack/echo/v4"

	"github.com/cloudpacs/pacs/internal/storage"
)

// retrieveMetadata is WADO-RS .../metadata at study, series and instance
// level: a DICOM JSON array of instance objects, BulkDataURIs pointing at
// this server. Study and series documents are built once per study
// version, kept gzip-compressed in the index cache, and served compressed
// to clients that accept gzip (DESIGN.md decision 4).
func (h *Handler) retrieveMetadata(c echo.Context) error {
	study, series, sop, err := pathUIDs(c)
	if err != nil {
		return err
	}
	if !acceptsJSON(acceptRanges(c)) {
		return notAcceptablef("metadata is available as application/dicom+json")
	}
	ctx := c.Request().Context()
	base := h.baseURL(c)
	res := c.Response()
	res.Header().Set("Vary", "Accept-Encoding")
	res.Header().Set("Cache-Control", "no-cache")
	bh := baseHash(base)

	if sop != "" {
		in, err := h.index.Instance(ctx, study, series, sop)
		if err != nil {
			return err
		}
		etag := `W/"` + in.SHA256[:min(len(in.SHA256), 32)] + "-" + bh + `"`
		if notModified(c, etag) {
			return nil
		}
		res.Header().Set("ETag", etag)
		doc := append([]byte{'['}, 0)[:1]
		doc = appendInstanceMetadata(doc, base, in)
		doc = append(doc, ']')
		return c.Blob(http.StatusOK, mtDICOMJSON, doc)
	}

	// The version is read before the instances, so a document built from
	// newer rows is at worst cached under a stale version, never served.
	version, err := h.index.StudyVersion(ctx, study)
	if err != nil {
		return err
	}
	key := metadataKey(series, bh)
	etag := `W/"` + strconv.FormatInt(version, 36) + "-" + bh + "-" + fnvHex(key) + `"`
	if notModified(c, etag) {
		return nil
	}
	gz, err := h.index.CachedMetadata(ctx, study, key, version)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		h.log.Warn("metadata cache read failed", "err", err)
	}
	var doc []byte
	if err != nil || len(gz) == 0 {
		res.Header().Set("X-Cache", "miss")
		h.metadataBuilds.Add(1)
		gz, doc, err = h.buildMetadata(ctx, study, series, base, !acceptsGzip(c.Request()))
		if err != nil {
			return err
		}
		if err := h.index.PutCachedMetadata(ctx, study, key, version, gz); err != nil {
			h.log.Warn("metadata cache write failed", "err", err)
		}
	} else {
		res.Header().Set("X-Cache", "hit")
	}
	res.Header().Set("ETag", etag)
	if acceptsGzip(c.Request()) {
		res.Header().Set(echo.HeaderContentEncoding, "gzip")
		return c.Blob(http.StatusOK, mtDICOMJSON, gz)
	}
	if doc != nil {
		return c.Blob(http.StatusOK, mtDICOMJSON, doc)
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return fmt.Errorf("metadata cache: %w", err)
	}
	defer zr.Close()
	res.Header().Set(echo.HeaderContentType, mtDICOMJSON)
	res.WriteHeader(http.StatusOK)
	if c.Request().Method == http.MethodHead {
		return nil
	}
	_, err = io.Copy(res, zr)
	return err
}

// metadataKey names a cached metadata document (storage.Index
// CachedMetadata): the study's (series == "") or a series', for one base
// URL (by its hash bh).
func metadataKey(series, bh string) string {
	if series == "" {
		return "study/" + bh
	}
	return "series/" + series + "/" + bh
}

// docWriter streams one metadata document (a JSON array of instance
// objects) into a gzip stream, and into plain bytes when asked.
type docWriter struct {
	gz    bytes.Buffer
	zw    *gzip.Writer
	plain *bytes.Buffer
	n     int
}

var gzipWriters = sync.Pool{New: func() any {
	zw, _ := gzip.NewWriterLevel(io.Discard, gzip.BestSpeed)
	return zw
}}

func newDocWriter(plain bool) *docWriter {
	d := &docWriter{zw: gzipWriters.Get().(*gzip.Writer)}
	d.gz.Grow(64 << 10)
	d.zw.Reset(&d.gz)
	if plain {
		d.plain = bytes.NewBuffer(make([]byte, 0, 256<<10))
	}
	d.write([]byte{'['})
	return d
}

func (d *docWriter) write(b []byte) {
	d.zw.Write(b) // writes to a bytes.Buffer: never fails
	if d.plain != nil {
		d.plain.Write(b)
	}
}

// add appends one instance object; scratch is reused between calls.
func (d *docWriter) add(scratch []byte, instURL string, metadata []byte) []byte {
	scratch = scratch[:0]
	if d.n > 0 {
		scratch = append(scratch, ',')
	}
	d.n++
	if len(metadata) == 0 {
		scratch = append(scratch, "{}"...)
	} else {
		scratch = appendReplacingPlaceholder(scratch, metadata, instURL)
	}
	d.write(scratch)
	return scratch
}

// finish ends the array and returns the gzip bytes and, if asked for,
// the plain document.
func (d *docWriter) finish() (gz, plain []byte) {
	d.write([]byte{']'})
	d.zw.Close()
	d.zw.Reset(io.Discard)
	gzipWriters.Put(d.zw)
	d.zw = nil
	if d.plain != nil {
		plain = d.plain.Bytes()
	}
	return d.gz.Bytes(), plain
}

// abort returns the gzip writer to the pool after a failed build.
func (d *docWriter) abort() {
	if d.zw != nil {
		d.zw.Reset(io.Discard)
		gzipWriters.Put(d.zw)
		d.zw = nil
	}
}

// eachMetadata calls fn with the metadata of the study's (series')
// instances in order: streamed when the index can (storage.
// MetadataLister), else from Index.Instances.
func (h *Handler) eachMetadata(ctx context.Context, study, series string, fn func(series, sop string, md []byte) error) error {
	if ml, ok := h.index.(storage.MetadataLister); ok {
		return ml.EachMetadata(ctx, study, series, fn)
	}
	insts, err := h.index.Instances(ctx, study, series)
	if err != nil {
		return err
	}
	for _, in := range insts {
		if err := fn(in.SeriesInstanceUID, in.SOPInstanceUID, in.Metadata); err != nil {
			return err
		}
	}
	return nil
}

// buildMetadata builds the study (series == "") or series metadata
// document for base: gzip-compressed, and also plain when plain is set.
func (h *Handler) buildMetadata(ctx context.Context, study, series, base string, plain bool) (gz, doc []byte, err error) {
	d := newDocWriter(plain)
	defer d.abort()
	var scratch []byte
	prefix := base + "/studies/" + study + "/series/"
	err = h.eachMetadata(ctx, study, series, func(se, sop string, md []byte) error {
		scratch = d.add(scratch, prefix+se+"/instances/"+sop, md)
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	if d.n == 0 {
		return nil, nil, notFoundf("no instances")
	}
	gz, doc = d.finish()
	return gz, doc, nil
}

// buildStudyMetadata builds, in one pass over the study's instances, the
// study document and every series document for base, and caches them
// under version (PutCachedMetadata drops them if the study changed since).
func (h *Handler) buildStudyMetadata(ctx context.Context, study, base string, version int64) error {
	bh := baseHash(base)
	all := newDocWriter(false)
	defer all.abort()
	var (
		cur       *docWriter
		curSeries string
		scratch   []byte
	)
	defer func() {
		if cur != nil {
			cur.abort()
		}
	}()
	flush := func() error {
		if cur == nil {
			return nil
		}
		gz, _ := cur.finish()
		cur = nil
		return h.index.PutCachedMetadata(ctx, study, metadataKey(curSeries, bh), version, gz)
	}
	prefix := base + "/studies/" + study + "/series/"
	err := h.eachMetadata(ctx, study, "", func(se, sop string, md []byte) error {
		if cur == nil || se != curSeries {
			if err := flush(); err != nil {
				return err
			}
			cur, curSeries = newDocWriter(false), se
		}
		url := prefix + se + "/instances/" + sop
		scratch = all.add(scratch, url, md)
		scratch = cur.add(scratch, url, md)
		return ctx.Err()
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		return err
	}
	gz, _ := all.finish()
	return h.index.PutCachedMetadata(ctx, study, metadataKey("", bh), version, gz)
}

// appendInstanceMetadata appends the instance JSON with its bulk data
// placeholders replaced by the instance URL.
func appendInstanceMetadata(dst []byte, base string, in *storage.Instance) []byte {
	if len(in.Metadata) == 0 {
		return append(dst, "{}"...)
	}
	return appendReplacingPlaceholder(dst, in.Metadata, instanceURL(base, in.StudyInstanceUID, in.SeriesInstanceUID, in.SOPInstanceUID))
}

// acceptsGzip reports whether Accept-Encoding allows gzip.
func acceptsGzip(r *http.Request) bool {
	for _, ae := range r.Header.Values("Accept-Encoding") {
		for e := range strings.SplitSeq(ae, ",") {
			name, params, _ := strings.Cut(strings.TrimSpace(e), ";")
			if !strings.EqualFold(strings.TrimSpace(name), "gzip") && strings.TrimSpace(name) != "*" {
				continue
			}
			if q, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
				if f, err := strconv.ParseFloat(q, 64); err == nil && f == 0 {
					return false
				}
			}
			return true
		}
	}
	return false
}

func fnvHex(s string) string {
	f := fnv.New64a()
	io.WriteString(f, s)
	return strconv.FormatUint(f.Sum64(), 36)
}

func baseHash(base string) string { return fnvHex(base) }
