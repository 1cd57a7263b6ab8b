// Package thumbs renders frames of stored instances (read, decode,
// pixel pipeline, encode) and keeps thumbnails in the blob store.
//
// Thumbnail keys: thumbs/<sha[0:2]>/<sha[2:4]>/<sha256 of the instance>-f<frame>-<w>x<h>-q<quality>.jpg.
// The instance's SHA-256 is in the key, so a replaced instance (new
// bytes) never sees the old thumbnail. DeleteFor removes an instance's
// thumbnails when it is deleted; those of a replaced instance stay as
// unreachable orphans (storage.StoreResult does not carry the replaced
// SHA-256).
package thumbs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"io"
	"strconv"
	"strings"

	"golang.org/x/sync/singleflight"

	"github.com/cloudpacs/pacs/internal/codec"
	"github.com/cloudpacs/pacs/internal/render"
	"github.com/cloudpacs/pacs/internal/storage"
)

// Thumbnail defaults.
const (
	DefaultSize    = 128
	DefaultQuality = 75
	// maxFrameBytes bounds one frame read into memory for decoding.
	maxFrameBytes = 1 << 30
)

// Renderer reads, decodes and renders frames of archived instances.
type Renderer struct {
	Archive *storage.Archive
	group   singleflight.Group
}

// New returns a Renderer over a.
func New(a *storage.Archive) *Renderer { return &Renderer{Archive: a} }

// Attrs reads the pipeline attributes of inst from its metadata. Bulk
// LUT data (palettes or LUTs longer than dcm.BulkThreshold) are ranged
// reads of the stored object at the spans recorded at ingest
// (Instance.Bulk); rows indexed before those were recorded re-read the
// stored header once.
func (r *Renderer) Attrs(ctx context.Context, inst *storage.Instance) (*render.Attrs, error) {
	return render.AttrsFromJSON(inst.Metadata, r.bulkLoader(ctx, inst))
}

// maxBulkLUT bounds one bulk LUT value read into memory (a 16-bit LUT of
// 65536 entries is 128 KiB).
const maxBulkLUT = 1 << 20

func (r *Renderer) bulkLoader(ctx context.Context, inst *storage.Instance) render.BulkLoader {
	return func(uri string) ([]byte, error) {
		_, path, ok := strings.Cut(uri, "/bulk/")
		if !ok || path == "" {
			return nil, fmt.Errorf("thumbs: bulk data URI %q of %s is not this archive's", uri, inst.SOPInstanceUID)
		}
		v, err := r.Archive.Bulk(ctx, inst, strings.ToUpper(path))
		if err != nil {
			return nil, err
		}
		return readBulk(ctx, inst, v)
	}
}

// readBulk reads one bulk LUT value into memory. Big-endian words are
// swapped to the little-endian order the pipeline reads (OW, US, SS
// values).
func readBulk(ctx context.Context, inst *storage.Instance, v storage.BulkValue) ([]byte, error) {
	if v.Size < 0 || v.Size > maxBulkLUT {
		return nil, fmt.Errorf("%w: bulk LUT value of %d bytes", codec.ErrUnsupported, v.Size)
	}
	rc, err := v.Open(ctx, 0, -1)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	buf := make([]byte, v.Size)
	if _, err := io.ReadFull(rc, buf); err != nil {
		return nil, fmt.Errorf("thumbs: read bulk data of %s: %w", inst.SOPInstanceUID, err)
	}
	if inst.BigEndian && (v.VR == "OW" || v.VR == "US" || v.VR == "SS") {
		for i := 0; i+1 < len(buf); i += 2 {
			buf[i], buf[i+1] = buf[i+1], buf[i]
		}
	}
	return buf, nil
}

// Frame renders frame n (1-based) of inst.
func (r *Renderer) Frame(ctx context.Context, inst *storage.Instance, n int, o render.Options) (image.Image, error) {
	if len(inst.Frames) == 0 {
		return nil, fmt.Errorf("thumbs: %s has no pixel data: %w", inst.SOPInstanceUID, storage.ErrNotFound)
	}
	a, err := r.Attrs(ctx, inst)
	if err != nil {
		return nil, err
	}
	rc, size, err := r.Archive.OpenFrame(ctx, inst, n)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	if size > maxFrameBytes {
		return nil, fmt.Errorf("%w: frame of %d bytes", codec.ErrUnsupported, size)
	}
	buf := make([]byte, size)
	if _, err := io.ReadFull(rc, buf); err != nil {
		return nil, fmt.Errorf("thumbs: read frame %d of %s: %w", n, inst.SOPInstanceUID, err)
	}
	px, err := codec.Decode(inst.TransferSyntaxUID, buf, a.Pixel)
	if err != nil {
		return nil, err
	}
	o.Frame, o.Frames = n, len(inst.Frames)
	return render.Render(px, a.ForFrame(n), o)
}

// Key is the blob key of a thumbnail: under storage.DerivedPrefix of the
// instance's SHA-256, so that the archive drops it when those bytes are
// replaced or deleted.
func Key(inst *storage.Instance, frame, w, h, quality int) string {
	return storage.DerivedPrefix(inst.SHA256) + "f" + strconv.Itoa(frame) +
		"-" + strconv.Itoa(w) + "x" + strconv.Itoa(h) + "-q" + strconv.Itoa(quality) + ".jpg"
}

// Thumbnail returns a JPEG of frame n of inst fitting w×h (0: DefaultSize),
// from the blob store when cached, else rendered (default window) and
// stored. Concurrent requests for the same thumbnail render it once.
func (r *Renderer) Thumbnail(ctx context.Context, inst *storage.Instance, n, w, h, quality int) ([]byte, error) {
	if w <= 0 {
		w = DefaultSize
	}
	if h <= 0 {
		h = DefaultSize
	}
	if quality <= 0 {
		quality = DefaultQuality
	}
	key := Key(inst, n, w, h, quality)
	if b, err := r.read(ctx, key); err == nil {
		return b, nil
	} else if !errors.Is(err, storage.ErrNotFound) {
		return nil, err
	}
	v, err, _ := r.group.Do(key, func() (any, error) {
		img, err := r.Frame(ctx, inst, n, render.Options{Viewport: &render.Viewport{VW: w, VH: h}})
		if err != nil {
			return nil, err
		}
		var buf bytes.Buffer
		if err := render.Encode(&buf, img, render.MediaJPEG, quality); err != nil {
			return nil, err
		}
		// A failed cache write costs only a re-render next time.
		_ = r.write(context.WithoutCancel(ctx), key, buf.Bytes())
		return buf.Bytes(), nil
	})
	if err != nil {
		return nil, err
	}
	return v.([]byte), nil
}

func (r *Renderer) read(ctx context.Context, key string) ([]byte, error) {
	rc, err := r.Archive.Blobs.Open(ctx, key, 0, -1)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

func (r *Renderer) write(ctx context.Context, key string, b []byte) error {
	w, err := r.Archive.Blobs.Create(ctx, key)
	if err != nil {
		return err
	}
	defer w.Abort()
	if _, err := w.Write(b); err != nil {
		return err
	}
	_, err = w.Commit()
	return err
}

// DeleteFor removes every cached thumbnail of the bytes with the given
// SHA-256 (the archive does this itself after a replace or delete).
func (r *Renderer) DeleteFor(ctx context.Context, sha string) error {
	var keys []string
	err := r.Archive.Blobs.List(ctx, storage.DerivedPrefix(sha), func(bi storage.BlobInfo) error {
		keys = append(keys, bi.Key)
		return nil
	})
	for _, k := range keys {
		err = errors.Join(err, r.Archive.Blobs.Delete(ctx, k))
	}
	return err
}
