package reports

import (
	"bytes"
	"compress/flate"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/cloudpacs/pacs/internal/dcm"
	"github.com/cloudpacs/pacs/internal/storage"
)

// ErrNoDocument: the instance has no Encapsulated Document value.
var ErrNoDocument = errors.New("reports: no encapsulated document")

// Encapsulated is the Encapsulated Document (0042,0011) of an instance,
// ready to be read by byte range.
type Encapsulated struct {
	// Size is the document's length: EncapsulatedDocumentLength
	// (0042,0015) when present and not beyond the value (the value is
	// padded to even length), else the value's length.
	Size     int64
	MIMEType string // MIMETypeOfEncapsulatedDocument, "application/pdf" when absent
	inline   []byte
	open     func(ctx context.Context, off, n int64) (io.ReadCloser, error)
}

// Open reads [off, off+n) of the document (n < 0: to the end).
func (e *Encapsulated) Open(ctx context.Context, off, n int64) (io.ReadCloser, error) {
	if off < 0 || off > e.Size {
		return nil, fmt.Errorf("reports: offset %d outside the document (%d bytes)", off, e.Size)
	}
	if n < 0 || off+n > e.Size {
		n = e.Size - off
	}
	if e.inline != nil {
		return io.NopCloser(bytes.NewReader(e.inline[off : off+n])), nil
	}
	return e.open(ctx, off, n)
}

// OpenEncapsulated locates the encapsulated document of in: decoded from
// the metadata when it was small enough to be kept inline (InlineBinary),
// else a ranged read of the stored object at the bulk value's offset
// (deflated objects are inflated from the start of the data set). Rows
// indexed before bulk spans were recorded (in.Bulk == nil) cost one
// re-parse of the stored header.
func OpenEncapsulated(ctx context.Context, a *storage.Archive, in *storage.Instance) (*Encapsulated, error) {
	ds, err := parseDataset(in.Metadata)
	if err != nil {
		return nil, fmt.Errorf("reports: metadata of %s: %w", in.SOPInstanceUID, err)
	}
	e := &Encapsulated{MIMEType: strings.TrimSpace(ds.str(tMIMEType))}
	if e.MIMEType == "" {
		e.MIMEType = "application/pdf"
	}
	docLen := int64(-1)
	if s := ds.str(tEncapsulatedDocLength); s != "" {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil && n >= 0 {
			docLen = n
		}
	}
	el := ds[tEncapsulatedDocument]
	switch {
	case el == nil:
		return nil, fmt.Errorf("%w in %s", ErrNoDocument, in.SOPInstanceUID)
	case el.InlineBinary != "":
		b, err := base64.StdEncoding.DecodeString(el.InlineBinary)
		if err != nil {
			return nil, fmt.Errorf("reports: InlineBinary of %s: %w", in.SOPInstanceUID, err)
		}
		if docLen >= 0 && docLen <= int64(len(b)) {
			b = b[:docLen]
		}
		e.inline, e.Size = b, int64(len(b))
		return e, nil
	case el.BulkDataURI != "":
		path := strings.TrimPrefix(el.BulkDataURI, storage.BulkPlaceholder)
		path = strings.TrimPrefix(path, "/bulk/")
		span, err := bulkSpan(ctx, a, in, path)
		if err != nil {
			return nil, err
		}
		e.Size = span.Length
		if docLen >= 0 && docLen <= span.Length {
			e.Size = docLen
		}
		e.open = func(ctx context.Context, off, n int64) (io.ReadCloser, error) {
			if in.Deflated {
				return openInflated(ctx, a, in, span.Offset+off, n)
			}
			return a.Blobs.Open(ctx, in.BlobKey, span.Offset+off, n)
		}
		return e, nil
	}
	e.inline = []byte{} // an empty value
	return e, nil
}

func bulkSpan(ctx context.Context, a *storage.Archive, in *storage.Instance, path string) (dcm.Span, error) {
	refs := in.Bulk
	if refs == nil {
		rc, err := a.OpenInstance(ctx, in)
		if err != nil {
			return dcm.Span{}, err
		}
		defer rc.Close()
		h, err := dcm.Parse(rc)
		if err != nil {
			return dcm.Span{}, fmt.Errorf("reports: re-reading %s: %w", in.SOPInstanceUID, err)
		}
		refs = h.Bulk()
	}
	for _, b := range refs {
		if strings.EqualFold(b.Path, path) {
			return b.Span, nil
		}
	}
	return dcm.Span{}, fmt.Errorf("%w: no bulk value %s in %s", ErrNoDocument, path, in.SOPInstanceUID)
}

// openInflated reads n bytes at off of a Deflated Explicit VR Little
// Endian object. Offsets count as if the data set were stored inflated
// (dcm.Span): the deflate stream starts at in.DataSetOffset.
func openInflated(ctx context.Context, a *storage.Archive, in *storage.Instance, off, n int64) (io.ReadCloser, error) {
	if off < in.DataSetOffset {
		return nil, fmt.Errorf("reports: offset %d inside the file meta group of %s", off, in.SOPInstanceUID)
	}
	rc, err := a.Blobs.Open(ctx, in.BlobKey, in.DataSetOffset, -1)
	if err != nil {
		return nil, err
	}
	fr := flate.NewReader(rc)
	if _, err := io.CopyN(io.Discard, fr, off-in.DataSetOffset); err != nil {
		rc.Close()
		return nil, fmt.Errorf("reports: inflate %s: %w", in.SOPInstanceUID, err)
	}
	return struct {
		io.Reader
		io.Closer
	}{io.LimitReader(fr, n), rc}, nil
}
