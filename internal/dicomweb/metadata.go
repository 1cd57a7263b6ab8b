package dicomweb

import (
	"bytes"
	"context"
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
// this server. Study and series documents are precomputed by the archive
// without a base URL (storage.Archive.MetadataDocument); the base URL of
// the request is put in here, and the result is kept gzip-compressed in
// a bounded memory cache (docCache), so that a repeated request is one
// map lookup and a write (DESIGN.md decision 4). Clients that accept
// gzip get those bytes as they are.
//
// X-Cache says "hit" when no document was built from instance rows for
// the request (it came from the memory cache, or from the archive's
// precomputed document with the base URL put in), "miss" when the
// archive had to build it from the rows (the first request after a
// change that the background rebuild had not caught up with).
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

	// The version is read before the document, which is thus never older
	// than the version its ETag and cache key name (see
	// storage.Archive.MetadataDocument).
	version, err := h.index.StudyVersion(ctx, study)
	if err != nil {
		return err
	}
	key := docKey{study: study, doc: "study", base: base, version: version}
	if series != "" {
		key.doc = "series/" + series
	}
	etag := `W/"` + strconv.FormatInt(version, 36) + "-" + bh + "-" + fnvHex(key.doc) + `"`
	if notModified(c, etag) {
		return nil
	}
	gz, built, err := h.metadataDocument(ctx, key, series)
	if err != nil {
		return err
	}
	if built {
		res.Header().Set("X-Cache", "miss")
	} else {
		res.Header().Set("X-Cache", "hit")
	}
	res.Header().Set("ETag", etag)
	if acceptsGzip(c.Request()) {
		res.Header().Set(echo.HeaderContentEncoding, "gzip")
		return c.Blob(http.StatusOK, mtDICOMJSON, gz)
	}
	zr, err := getGzipReader(gz)
	if err != nil {
		return fmt.Errorf("metadata: %w", err)
	}
	defer gzipReaders.Put(zr)
	res.Header().Set(echo.HeaderContentType, mtDICOMJSON)
	res.WriteHeader(http.StatusOK)
	if c.Request().Method == http.MethodHead {
		return nil
	}
	_, err = io.Copy(res, zr)
	return err
}

// metadataDocument returns the study or series document named by k as
// served (gzip, k.base in), from the memory cache or from the archive's
// base-free document; built reports that the archive built that from
// instance rows. Concurrent requests for one k make it once.
func (h *Handler) metadataDocument(ctx context.Context, k docKey, series string) (gz []byte, built bool, err error) {
	if gz, ok := h.metaCache.get(k); ok {
		return gz, false, nil
	}
	// Shared by every request waiting for it, so it runs without any one
	// request's cancellation; a request that gives up stops waiting.
	ch := h.metaFlight.DoChan(k.study+"\x00"+k.doc+"\x00"+strconv.FormatInt(k.version, 36)+"\x00"+k.base, func() (any, error) {
		if gz, ok := h.metaCache.peek(k); ok { // made by a flight that just ended
			return servedDoc{gz: gz}, nil
		}
		free, built, err := h.archive.MetadataDocument(context.WithoutCancel(ctx), k.study, series, k.version)
		if err != nil {
			return nil, err
		}
		h.metaRebases.Add(1)
		gz, err := rebase(free, k.base)
		if err != nil {
			return nil, fmt.Errorf("metadata document of %s: %w", k.study, err)
		}
		h.metaCache.put(k, gz)
		return servedDoc{gz: gz, built: built}, nil
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, false, r.Err
		}
		d := r.Val.(servedDoc)
		return d.gz, d.built, nil
	case <-ctx.Done():
		return nil, false, ctx.Err()
	}
}

type servedDoc struct {
	gz    []byte
	built bool
}

// rebase turns a base-free metadata document (gzip; every
// storage.BulkPlaceholder stands for the DICOMweb root URL) into the
// document served for base: inflated, each placeholder replaced by base
// (JSON-escaped), compressed again (gzip, BestSpeed). It streams: memory
// is the two compressed documents and a read buffer.
func rebase(free []byte, base string) ([]byte, error) {
	zr, err := getGzipReader(free)
	if err != nil {
		return nil, err
	}
	defer gzipReaders.Put(zr)
	var out bytes.Buffer
	out.Grow(len(free) + len(free)/16 + 512)
	zw := gzipWriters.Get().(*gzip.Writer)
	zw.Reset(&out)
	defer func() {
		zw.Reset(io.Discard)
		gzipWriters.Put(zw)
	}()
	esc := appendJSONStringContent(make([]byte, 0, len(base)+8), base)
	bp := rebaseBufs.Get().(*[]byte)
	defer rebaseBufs.Put(bp)
	ph := storage.BulkPlaceholder[0]
	for {
		n, rerr := zr.Read(*bp)
		chunk := (*bp)[:n]
		for len(chunk) > 0 {
			i := bytes.IndexByte(chunk, ph)
			if i < 0 {
				zw.Write(chunk) // writes to a bytes.Buffer: never fails
				break
			}
			zw.Write(chunk[:i])
			zw.Write(esc)
			chunk = chunk[i+1:]
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return nil, rerr
		}
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

var (
	gzipWriters = sync.Pool{New: func() any {
		zw, _ := gzip.NewWriterLevel(io.Discard, gzip.BestSpeed)
		return zw
	}}
	gzipReaders sync.Pool // of *gzip.Reader
	rebaseBufs  = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}
)

// getGzipReader returns a pooled reader of gz; put it back into
// gzipReaders when done.
func getGzipReader(gz []byte) (*gzip.Reader, error) {
	zr, _ := gzipReaders.Get().(*gzip.Reader)
	if zr == nil {
		zr = new(gzip.Reader)
	}
	if err := zr.Reset(bytes.NewReader(gz)); err != nil {
		gzipReaders.Put(zr)
		return nil, err
	}
	return zr, nil
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
