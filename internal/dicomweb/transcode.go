package dicomweb

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/cloudpacs/pacs/internal/codec"
	"github.com/cloudpacs/pacs/internal/dcm"
	"github.com/cloudpacs/pacs/internal/render"
	"github.com/cloudpacs/pacs/internal/storage"
	"github.com/cloudpacs/pacs/internal/thumbs"
)

// Transcoding for WADO-RS (PS3.18 8.7.3.5): an instance stored compressed
// and asked for in Explicit VR Little Endian is decoded frame by frame
// (one decoded frame in memory at a time); frames can also be asked for
// as native bytes, or rendered as image/jpeg or image/png with the
// default window.
//
// The output follows what dcmtk's decompressors (dcmdjpeg, dcmdjpls,
// dcmdrle) write: native PixelData (OW when BitsAllocated > 8),
// PhotometricInterpretation RGB where the decoder converted colour (JPEG
// YBR_FULL_422/YBR_FULL, JPEG 2000 YBR_ICT/YBR_RCT), PlanarConfiguration
// 0, the Extended Offset Table dropped, and LossyImageCompression "01"
// kept (added for the always-lossy JPEG processes when missing).

// maxTranscodeFrameBytes bounds one stored frame read for decoding.
const maxTranscodeFrameBytes = 1 << 30

var (
	tagPhotometric         = dcm.Tag(0x00280004)
	tagPlanarConfiguration = dcm.Tag(0x00280006)
	tagLossyCompression    = dcm.Tag(0x00282110)
	tagExtendedOffsetTable = dcm.Tag(0x7FE00001)
	tagExtendedOffsetLens  = dcm.Tag(0x7FE00002)
)

// canTranscode reports whether inst, stored compressed, can be decoded to
// native pixel data in this build.
func canTranscode(inst *storage.Instance) bool {
	if !inst.Encapsulated || len(inst.Frames) == 0 {
		return false
	}
	_, ok := codec.Lookup(inst.TransferSyntaxUID)
	return ok
}

// transcodeInstanceToExplicitLE writes inst, stored in a compressed
// transfer syntax, as an Explicit VR Little Endian Part 10 object.
func transcodeInstanceToExplicitLE(ctx context.Context, w io.Writer, inst *storage.Instance, archive *storage.Archive) error {
	rc, err := archive.OpenInstance(ctx, inst)
	if err != nil {
		return err
	}
	defer rc.Close()
	return transcodeToExplicitLE(ctx, w, rc, inst, archive)
}

// transcodeToExplicitLE is transcodeInstanceToExplicitLE with the stored
// object already open (rc, read from its start): the header streams from
// rc, the frames are ranged reads of the archive.
func transcodeToExplicitLE(ctx context.Context, w io.Writer, rc io.Reader, inst *storage.Instance, archive *storage.Archive) error {
	info, err := pixelInfo(inst)
	if err != nil {
		return err
	}
	// Frame 1 is decoded first: its colour model decides the header.
	first, err := decodeStoredFrame(ctx, archive, inst, 1, info)
	if err != nil {
		return err
	}
	frameLen := nativeFrameLen(info)
	total := int64(frameLen) * int64(len(inst.Frames))
	if total%2 == 1 {
		total++
	}
	if total >= 0xFFFFFFFF {
		return fmt.Errorf("%w: %d bytes of native pixel data do not fit a PixelData value", codec.ErrUnsupported, total)
	}
	vr := "OB"
	if info.BitsAllocated > 8 {
		vr = "OW"
	}
	rw := dcm.Rewrite{
		Set:             map[dcm.Tag]dcm.Value{tagPhotometric: {VR: "CS", Bytes: []byte(first.PhotometricInterpretation)}},
		Delete:          []dcm.Tag{tagExtendedOffsetTable, tagExtendedOffsetLens},
		PixelDataVR:     vr,
		PixelDataLength: uint32(total),
	}
	if info.SamplesPerPixel == 3 {
		rw.Set[tagPlanarConfiguration] = dcm.Value{VR: "US", Bytes: []byte{0, 0}}
	}
	if alwaysLossy(inst.TransferSyntaxUID) && !bytes.Contains(inst.Metadata, []byte(`"00282110"`)) {
		rw.Set[tagLossyCompression] = dcm.Value{VR: "CS", Bytes: []byte("01")}
	}
	rw.PixelData = func(pw io.Writer) error {
		buf := make([]byte, frameLen)
		px := first
		for n := 1; n <= len(inst.Frames); n++ {
			if n > 1 {
				if err := ctx.Err(); err != nil {
					return err
				}
				if px, err = decodeStoredFrame(ctx, archive, inst, n, info); err != nil {
					return err
				}
			}
			if err := putNative(buf, px, info); err != nil {
				return fmt.Errorf("frame %d: %w", n, err)
			}
			if _, err := pw.Write(buf); err != nil {
				return err
			}
		}
		if int64(frameLen)*int64(len(inst.Frames))%2 == 1 {
			_, err := pw.Write([]byte{0})
			return err
		}
		return nil
	}
	return dcm.RewriteExplicitLE(w, rc, rw)
}

// preflightTranscode checks, before a multipart retrieve commits its
// status, that in can be sent in transfer syntax ts: when that needs
// decoding, frame 1 is decoded (and decoded again when the instance is
// written), so that stored pixel data that do not decode answer 422
// rather than a 200 cut short. It returns in with its metadata, which
// decoding needs and the retrieve lookups leave out.
func (h *Handler) preflightTranscode(ctx context.Context, in *storage.Instance, ts string) (*storage.Instance, error) {
	if ts == in.TransferSyntaxUID || !in.Encapsulated || len(in.Frames) == 0 {
		return in, nil
	}
	if in.Metadata == nil {
		full, err := h.index.Instance(ctx, in.StudyInstanceUID, in.SeriesInstanceUID, in.SOPInstanceUID)
		if err != nil {
			return nil, err
		}
		in = full
	}
	info, err := pixelInfo(in)
	if err == nil {
		_, err = decodeStoredFrame(ctx, h.archive, in, 1, info)
	}
	if err != nil {
		return nil, transcodeError(err)
	}
	return in, nil
}

// transcodeFrame returns frame n (1-based) of inst as native Explicit VR
// Little Endian bytes (the layout of the transcoded instance's frames) and
// their PhotometricInterpretation.
func transcodeFrame(ctx context.Context, archive *storage.Archive, inst *storage.Instance, n int) ([]byte, string, error) {
	info, err := pixelInfo(inst)
	if err != nil {
		return nil, "", err
	}
	px, err := decodeStoredFrame(ctx, archive, inst, n, info)
	if err != nil {
		return nil, "", err
	}
	buf := make([]byte, nativeFrameLen(info))
	if err := putNative(buf, px, info); err != nil {
		return nil, "", err
	}
	return buf, px.PhotometricInterpretation, nil
}

// renderFrameImage renders frame n of inst with the default window
// (internal/render) and encodes it as image/jpeg or image/png (quality 0:
// the encoder's default).
func renderFrameImage(ctx context.Context, archive *storage.Archive, inst *storage.Instance, n int, mediaType string, quality int) ([]byte, error) {
	img, err := thumbs.New(archive).Frame(ctx, inst, n, render.Options{})
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := render.Encode(&buf, img, mediaType, quality); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// makeFrame produces frame n in the representation of t (t.made).
func (t frameChoice) makeFrame(ctx context.Context, archive *storage.Archive, in *storage.Instance, n int) ([]byte, error) {
	if t.partType == mtOctetStream {
		b, _, err := transcodeFrame(ctx, archive, in, n)
		return b, err
	}
	return renderFrameImage(ctx, archive, in, n, t.partType, 0)
}

// serveTranscodedFrames answers .../frames/{list} with frames made by
// t (t.made): one part, or multipart/related with one part per frame.
func (h *Handler) serveTranscodedFrames(c echo.Context, in *storage.Instance, list []int, t frameChoice) error {
	res := c.Response()
	req := c.Request()
	ctx := req.Context()
	parts := []string{in.SHA256, "transcoded", t.contentType()}
	for _, n := range list {
		parts = append(parts, strconv.Itoa(n))
	}
	etag := multipartETag(parts...)
	if notModified(c, etag) {
		return nil
	}
	// The first frame is made before the status is sent, so that a
	// decode error still gets its own status.
	first, err := t.makeFrame(ctx, h.archive, in, list[0])
	if err != nil {
		return transcodeError(err)
	}
	res.Header().Set("ETag", etag)
	if !in.Created.IsZero() {
		res.Header().Set("Last-Modified", in.Created.UTC().Format(http.TimeFormat))
	}
	if !t.multipart {
		return c.Blob(http.StatusOK, t.contentType(), first)
	}
	mw := multipart.NewWriter(res)
	res.Header().Set(echo.HeaderContentType, `multipart/related; type="`+t.partType+`"; boundary=`+mw.Boundary())
	res.WriteHeader(http.StatusOK)
	if req.Method == http.MethodHead {
		return nil
	}
	base := instanceURL(h.baseURL(c), in.StudyInstanceUID, in.SeriesInstanceUID, in.SOPInstanceUID)
	for i, n := range list {
		b := first
		first = nil
		if i > 0 {
			if b, err = t.makeFrame(ctx, h.archive, in, n); err != nil {
				return fmt.Errorf("frame %d: %w", n, err) // logged; the response lacks its closing boundary
			}
		}
		hdr := textproto.MIMEHeader{}
		hdr.Set(echo.HeaderContentType, t.contentType())
		hdr.Set(echo.HeaderContentLength, strconv.Itoa(len(b)))
		hdr.Set("Content-Location", base+"/frames/"+strconv.Itoa(n))
		pw, err := mw.CreatePart(hdr)
		if err == nil {
			_, err = pw.Write(b)
		}
		if err != nil {
			return fmt.Errorf("frame %d: %w", n, err)
		}
	}
	return mw.Close()
}

// transcodeError maps a decoder failure to a status: stored pixel data
// that do not decode → 422 (undecodable), no decoder → 406.
func transcodeError(err error) error {
	switch {
	case errors.Is(err, codec.ErrCorrupt):
		return undecodable("decode this instance to the representation asked for", err)
	case errors.Is(err, codec.ErrUnsupported):
		return notAcceptablef("cannot decode this instance: %v", err)
	}
	return err
}

// undecodable is the error of a request that needs the stored pixel data
// decoded (rendering, thumbnails, transcoding) when they do not decode:
// attributes that contradict the pixel data, or bytes that are not in
// the transfer syntax they are labelled with (codec.ErrCorrupt, which
// statusOf maps to 422). The message names the problem and the way to
// the bytes as stored, which stay retrievable.
func undecodable(verb string, err error) error {
	return fmt.Errorf("cannot %s: the stored pixel data do not decode "+
		"(the instance is still retrievable as stored: Accept: application/dicom; transfer-syntax=*): %w", verb, err)
}

// pixelInfo reads the Image Pixel module of inst from its metadata.
func pixelInfo(inst *storage.Instance) (codec.PixelInfo, error) {
	a, err := render.AttrsFromJSON(inst.Metadata, nil)
	if err != nil {
		return codec.PixelInfo{}, err
	}
	info := a.Pixel
	if info.SamplesPerPixel == 0 {
		info.SamplesPerPixel = 1
	}
	if info.BitsStored == 0 {
		info.BitsStored = info.BitsAllocated
	}
	if info.HighBit == 0 || info.HighBit < info.BitsStored-1 {
		info.HighBit = info.BitsStored - 1
	}
	switch info.BitsAllocated {
	case 8, 16, 32:
	default:
		return info, fmt.Errorf("%w: transcoding pixel data with BitsAllocated %d", codec.ErrUnsupported, info.BitsAllocated)
	}
	if info.Rows <= 0 || info.Columns <= 0 || info.SamplesPerPixel < 1 || info.SamplesPerPixel > 4 {
		return info, fmt.Errorf("%w: pixel module %dx%dx%d", codec.ErrCorrupt, info.Columns, info.Rows, info.SamplesPerPixel)
	}
	return info, nil
}

func alwaysLossy(ts string) bool {
	return ts == codec.JPEGBaseline8Bit || ts == codec.JPEGExtended12Bit
}

func nativeFrameLen(info codec.PixelInfo) int {
	return info.Rows * info.Columns * info.SamplesPerPixel * info.BitsAllocated / 8
}

// decodeStoredFrame reads frame n of inst and decodes it.
func decodeStoredFrame(ctx context.Context, archive *storage.Archive, inst *storage.Instance, n int, info codec.PixelInfo) (*codec.Pixels, error) {
	rc, size, err := archive.OpenFrame(ctx, inst, n)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	if size > maxTranscodeFrameBytes {
		return nil, fmt.Errorf("%w: stored frame of %d bytes", codec.ErrUnsupported, size)
	}
	buf := make([]byte, size)
	if _, err := io.ReadFull(rc, buf); err != nil {
		return nil, fmt.Errorf("read frame %d of %s: %w", n, inst.SOPInstanceUID, err)
	}
	px, err := codec.Decode(inst.TransferSyntaxUID, buf, info)
	if err != nil {
		return nil, frameError(inst, n, err)
	}
	return px, nil
}

// putNative writes px into dst as native little-endian words of
// info.BitsAllocated bits, colour-by-pixel, values placed at HighBit.
func putNative(dst []byte, px *codec.Pixels, info codec.PixelInfo) error {
	if len(px.Data)*info.BitsAllocated/8 != len(dst) || px.SamplesPerPixel != info.SamplesPerPixel {
		return fmt.Errorf("%w: decoded %d samples, the data set describes %d", codec.ErrCorrupt, len(px.Data), len(dst)*8/info.BitsAllocated)
	}
	shift := uint(info.HighBit + 1 - info.BitsStored)
	switch info.BitsAllocated {
	case 8:
		for i, v := range px.Data {
			dst[i] = byte(v << shift)
		}
	case 16:
		for i, v := range px.Data {
			binary.LittleEndian.PutUint16(dst[2*i:], uint16(v<<shift))
		}
	case 32:
		for i, v := range px.Data {
			binary.LittleEndian.PutUint32(dst[4*i:], uint32(v<<shift))
		}
	}
	return nil
}
