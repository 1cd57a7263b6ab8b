package s3blob

import (
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/cloudpacs/pacs/internal/storage"
)

var errClosed = errors.New("writer closed")

// smallBufMax is the size up to which the first part's buffer grows by
// doubling before a full part buffer is taken from the pool.
const smallBufMax = 1 << 20

// Create starts a write of key. Nothing is sent until the first part is
// full or Commit is called; see the package doc.
func (s *Store) Create(ctx context.Context, key string) (storage.BlobWriter, error) {
	k, err := s.objectKey(key)
	if err != nil {
		return nil, fmt.Errorf("s3blob: create: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("s3blob: create %q: %w", key, err)
	}
	upCtx, cancel := context.WithCancelCause(ctx)
	w := &writer{s: s, ctx: ctx, upCtx: upCtx, cancel: cancel, key: key, objKey: k}
	// A cancelled ctx aborts the server-side upload even if the caller
	// never calls Abort.
	w.stop = context.AfterFunc(ctx, func() { _ = w.Abort() })
	return w, nil
}

// writer is a BlobWriter. Write, Commit and Abort hold mu, so the abort
// that a cancelled ctx triggers (from another goroutine) waits for a
// Write in progress; part uploads run in their own goroutines and report
// through pmu.
type writer struct {
	s      *Store
	ctx    context.Context // the caller's
	upCtx  context.Context // ctx, also cancelled by a failed part or Abort
	cancel context.CancelCauseFunc
	stop   func() bool // unregisters the AfterFunc
	key    string
	objKey *string

	mu       sync.Mutex
	done     bool
	buf      []byte // the part being filled
	size     int64  // bytes accepted so far
	uploadID *string
	nparts   int32          // parts started
	sem      chan struct{}  // one token per part in flight
	wg       sync.WaitGroup // part uploads in flight

	pmu   sync.Mutex
	parts []types.CompletedPart
	err   error // first part failure
}

func (w *writer) partErr() error {
	w.pmu.Lock()
	defer w.pmu.Unlock()
	return w.err
}

func (w *writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return 0, fmt.Errorf("s3blob: write %q: %w", w.key, errClosed)
	}
	if err := w.partErr(); err != nil {
		return 0, err
	}
	if err := w.ctx.Err(); err != nil {
		return 0, fmt.Errorf("s3blob: write %q: %w", w.key, err)
	}
	written := 0
	for len(p) > 0 {
		if int64(len(w.buf)) == w.s.partSize {
			if err := w.flushPart(); err != nil {
				return written, err
			}
		}
		n := min(len(p), int(w.s.partSize)-len(w.buf))
		if cap(w.buf)-len(w.buf) < n {
			// Only the first part grows: small objects (most instances)
			// get a small buffer; past smallBufMax, a recycled part buffer.
			if want := max(2*cap(w.buf), len(w.buf)+n); want <= smallBufMax {
				w.buf = slices.Grow(w.buf, want-len(w.buf))
			} else {
				w.buf = append(w.s.getPartBuf(), w.buf...)
			}
		}
		w.buf = append(w.buf, p[:n]...)
		p = p[n:]
		written += n
		w.size += int64(n)
	}
	return written, nil
}

// flushPart sends the full buffer as the next part, starting the
// multipart upload first if needed. It blocks while concurrency parts are
// in flight (backpressure on the writer). Called with mu held.
func (w *writer) flushPart() error {
	if w.uploadID == nil {
		out, err := w.s.client.CreateMultipartUpload(w.upCtx, &s3.CreateMultipartUploadInput{
			Bucket:               &w.s.bucket,
			Key:                  w.objKey,
			ChecksumAlgorithm:    types.ChecksumAlgorithmSha256,
			ServerSideEncryption: w.s.sse,
			SSEKMSKeyId:          w.s.kmsKeyID,
			SSECustomerAlgorithm: w.s.ssecAlg,
			SSECustomerKey:       w.s.ssecKey,
			SSECustomerKeyMD5:    w.s.ssecMD5,
			ContentType:          aws.String("application/octet-stream"),
		})
		if err != nil {
			return wrap("create multipart upload", w.key, err)
		}
		w.uploadID = out.UploadId
		w.sem = make(chan struct{}, w.s.conc)
	}
	if w.nparts == maxParts {
		return fmt.Errorf("s3blob: write %q: object exceeds %d parts of %d bytes; raise part_size", w.key, maxParts, w.s.partSize)
	}
	select {
	case w.sem <- struct{}{}:
	case <-w.upCtx.Done():
		return w.upErr()
	}
	if err := w.partErr(); err != nil {
		<-w.sem
		return err
	}
	w.nparts++
	num, body := w.nparts, w.buf
	w.buf = w.s.getPartBuf()
	w.wg.Go(func() {
		defer func() { <-w.sem }()
		defer w.s.putPartBuf(body)
		w.uploadPart(num, body)
	})
	return nil
}

func (w *writer) upErr() error {
	if err := w.partErr(); err != nil {
		return err
	}
	return fmt.Errorf("s3blob: write %q: %w", w.key, context.Cause(w.upCtx))
}

func (w *writer) uploadPart(num int32, body []byte) {
	sum := sha256Sum(body)
	out, err := w.s.client.UploadPart(w.upCtx, &s3.UploadPartInput{
		Bucket:               &w.s.bucket,
		Key:                  w.objKey,
		UploadId:             w.uploadID,
		PartNumber:           aws.Int32(num),
		Body:                 bytes.NewReader(body),
		ContentLength:        aws.Int64(int64(len(body))),
		ChecksumAlgorithm:    types.ChecksumAlgorithmSha256,
		ChecksumSHA256:       aws.String(base64.StdEncoding.EncodeToString(sum)),
		SSECustomerAlgorithm: w.s.ssecAlg,
		SSECustomerKey:       w.s.ssecKey,
		SSECustomerKeyMD5:    w.s.ssecMD5,
	}, withPayloadSHA256(sum))
	w.pmu.Lock()
	defer w.pmu.Unlock()
	if err != nil {
		if w.err == nil {
			w.err = wrap(fmt.Sprintf("upload part %d", num), w.key, err)
			w.cancel(w.err) // stop the other parts
		}
		return
	}
	w.parts = append(w.parts, types.CompletedPart{
		PartNumber:     aws.Int32(num),
		ETag:           out.ETag,
		ChecksumSHA256: aws.String(base64.StdEncoding.EncodeToString(sum)),
	})
}

// Commit sends what is buffered and publishes the object: one PutObject
// for an object of at most one part, else the last part and
// CompleteMultipartUpload. On failure the upload is aborted.
func (w *writer) Commit() (storage.BlobInfo, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return storage.BlobInfo{}, fmt.Errorf("s3blob: commit %q: %w", w.key, errClosed)
	}
	w.done = true
	defer w.stop()
	info, err := w.commit()
	if err != nil {
		w.abortLocked()
		return storage.BlobInfo{}, err
	}
	w.cancel(nil)
	return info, nil
}

func (w *writer) commit() (storage.BlobInfo, error) {
	if err := w.ctx.Err(); err != nil {
		return storage.BlobInfo{}, fmt.Errorf("s3blob: commit %q: %w", w.key, err)
	}
	if w.uploadID == nil {
		return w.putObject()
	}
	if len(w.buf) > 0 {
		if err := w.flushPart(); err != nil {
			return storage.BlobInfo{}, err
		}
	}
	w.wg.Wait()
	if err := w.partErr(); err != nil {
		return storage.BlobInfo{}, err
	}
	if err := w.ctx.Err(); err != nil { // last chance before publishing
		return storage.BlobInfo{}, fmt.Errorf("s3blob: commit %q: %w", w.key, err)
	}
	parts := slices.SortedFunc(slices.Values(w.parts), func(a, b types.CompletedPart) int {
		return cmp.Compare(aws.ToInt32(a.PartNumber), aws.ToInt32(b.PartNumber))
	})
	_, err := w.s.client.CompleteMultipartUpload(w.ctx, &s3.CompleteMultipartUploadInput{
		Bucket:               &w.s.bucket,
		Key:                  w.objKey,
		UploadId:             w.uploadID,
		MultipartUpload:      &types.CompletedMultipartUpload{Parts: parts},
		SSECustomerAlgorithm: w.s.ssecAlg,
		SSECustomerKey:       w.s.ssecKey,
		SSECustomerKeyMD5:    w.s.ssecMD5,
	})
	if err != nil {
		return storage.BlobInfo{}, wrap("complete multipart upload", w.key, err)
	}
	w.uploadID = nil // completed: nothing left to abort
	return storage.BlobInfo{Key: w.key, Size: w.size, ModTime: time.Now()}, nil
}

func (w *writer) putObject() (storage.BlobInfo, error) {
	sum := sha256Sum(w.buf)
	_, err := w.s.client.PutObject(w.ctx, &s3.PutObjectInput{
		Bucket:               &w.s.bucket,
		Key:                  w.objKey,
		Body:                 bytes.NewReader(w.buf),
		ContentLength:        aws.Int64(int64(len(w.buf))),
		ContentType:          aws.String("application/octet-stream"),
		ChecksumAlgorithm:    types.ChecksumAlgorithmSha256,
		ChecksumSHA256:       aws.String(base64.StdEncoding.EncodeToString(sum)),
		Metadata:             map[string]string{metaSHA256: hex.EncodeToString(sum)},
		ServerSideEncryption: w.s.sse,
		SSEKMSKeyId:          w.s.kmsKeyID,
		SSECustomerAlgorithm: w.s.ssecAlg,
		SSECustomerKey:       w.s.ssecKey,
		SSECustomerKeyMD5:    w.s.ssecMD5,
	}, withPayloadSHA256(sum))
	w.s.putPartBuf(w.buf)
	w.buf = nil
	if err != nil {
		return storage.BlobInfo{}, wrap("put", w.key, err)
	}
	return storage.BlobInfo{Key: w.key, Size: w.size, ModTime: time.Now()}, nil
}

// Abort discards the object and aborts the multipart upload on the
// server, if one was started. Idempotent; a no-op after Commit.
func (w *writer) Abort() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return nil
	}
	w.done = true
	w.stop()
	return w.abortLocked()
}

// abortLocked stops the part uploads, waits for them and aborts the
// upload, with a ctx that outlives a cancelled caller's.
func (w *writer) abortLocked() error {
	w.cancel(fmt.Errorf("s3blob: %q: %w", w.key, errClosed))
	w.wg.Wait()
	w.s.putPartBuf(w.buf)
	w.buf = nil
	if w.uploadID == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(w.ctx), cleanupTimeout)
	defer cancel()
	// A part upload the client gave up on may still be finishing on the
	// server and land after the abort. AWS's AbortMultipartUpload
	// documentation says as much: abort again until ListParts finds no
	// upload.
	for attempt := 1; ; attempt++ {
		_, err := w.s.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
			Bucket:   &w.s.bucket,
			Key:      w.objKey,
			UploadId: w.uploadID,
		})
		if err != nil && !isNoSuchUpload(err) {
			return wrap("abort multipart upload", w.key, err)
		}
		_, err = w.s.client.ListParts(ctx, &s3.ListPartsInput{
			Bucket:   &w.s.bucket,
			Key:      w.objKey,
			UploadId: w.uploadID,
		})
		if isNoSuchUpload(err) {
			break
		}
		if attempt == abortAttempts {
			if err == nil {
				err = errors.New("the upload is still listed")
			}
			return wrap("abort multipart upload", w.key, err)
		}
		select {
		case <-time.After(time.Duration(attempt) * 100 * time.Millisecond):
		case <-ctx.Done():
			return wrap("abort multipart upload", w.key, ctx.Err())
		}
	}
	w.uploadID = nil
	return nil
}

// abortAttempts bounds the aborts of one upload (abortLocked).
const abortAttempts = 5

func isNoSuchUpload(err error) bool {
	var nsu *types.NoSuchUpload
	var ae smithy.APIError
	return errors.As(err, &nsu) || (errors.As(err, &ae) && ae.ErrorCode() == "NoSuchUpload") ||
		errors.Is(classify(err), storage.ErrNotFound)
}
