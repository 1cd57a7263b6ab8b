package dicomweb

import (
	"bytes"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net/http"
	"strconv"
	"strings"

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
	key := "study/" + bh
	if series != "" {
		key = "series/" + series + "/" + bh
	}
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
		insts, err := h.index.Instances(ctx, study, series)
		if err != nil {
			return err
		}
		if len(insts) == 0 {
			return notFoundf("no instances")
		}
		doc = make([]byte, 0, 64<<10)
		doc = append(doc, '[')
		for i, in := range insts {
			if i > 0 {
				doc = append(doc, ',')
			}
			doc = appendInstanceMetadata(doc, base, in)
		}
		doc = append(doc, ']')
		gz = gzipBytes(doc)
		if err := h.index.PutCachedMetadata(ctx, study, key, version, gz); err != nil {
			h.log.Warn("metadata cache write failed", "err", err)
		}
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

// appendInstanceMetadata appends the instance JSON with its bulk data
// placeholders replaced by the instance URL.
func appendInstanceMetadata(dst []byte, base string, in *storage.Instance) []byte {
	if len(in.Metadata) == 0 {
		return append(dst, "{}"...)
	}
	return appendReplacingPlaceholder(dst, in.Metadata, instanceURL(base, in.StudyInstanceUID, in.SeriesInstanceUID, in.SOPInstanceUID))
}

func gzipBytes(b []byte) []byte {
	var buf bytes.Buffer
	buf.Grow(len(b)/6 + 64)
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
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
